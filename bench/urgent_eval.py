"""Urgent detection measured on the labelled set: recall, false pages, the misses, and speed.

    python bench/urgent_eval.py                 # both splits, per language and per category
    python bench/urgent_eval.py --split test    # only the split the keyword lists were not tuned on
    python bench/urgent_eval.py --quiet         # figures only, no list of wrong examples

The set is tests/data/urgent_eval.yaml (see its header: written by the team, not real messages).
Bands: "urgent" pages a lawyer; "possible" opens a review case and asks the sender; anything else
(a topic, help, thanks) is "not_urgent".
- recall: urgent texts that page a lawyer;
- reached: urgent texts that page or at least reach staff review (possible band);
- false pages: possible and not-urgent texts that page a lawyer;
- category: urgent texts paged with the category of the label.
Then the time per message of `KeywordSet.match` over the set and over adversarial bodies (empty,
emoji, 1600 characters, control characters, mixed scripts), as a median and the worst of repeats.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hotline.menus import keywords  # noqa: E402
from hotline.menus.keywords import Intent, Match  # noqa: E402

EVAL_SET = ROOT / "tests" / "data" / "urgent_eval.yaml"
SCRIPTS = ROOT / "ivr_scripts" / "sms"


def load_set(path: Path = EVAL_SET) -> list[dict]:
    return list(yaml.safe_load(path.read_text(encoding="utf-8"))["items"])


def band(match: Match) -> str:
    if match.intent == Intent.URGENT:
        return "urgent"
    if match.intent.value == "possible":  # the middle band (absent from older matchers)
        return "possible"
    return "not_urgent"


def score(items: Iterable[dict], classify: Callable[[str], Match]) -> tuple[dict, list[tuple[dict, Match]]]:
    """Counts per group key -> {"urgent", "paged", "reached", "cat_ok", "other", "false"}; and the wrong ones."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    wrong = []
    for item in items:
        m = classify(item["text"])
        got = band(m)
        keys = ("all", f"lang:{item['lang']}", f"split:{item['split']}", f"{item['split']}:{item['lang']}")
        if item["label"] == "urgent":
            keys += (f"cat:{item['category']}",)
        for key in keys:
            c = counts[key]
            if item["label"] == "urgent":
                c["urgent"] += 1
                c["paged"] += got == "urgent"
                c["reached"] += got in ("urgent", "possible")
                c["cat_ok"] += got == "urgent" and m.category == item["category"]
            else:
                c["other"] += 1
                c["false"] += got == "urgent"
                c["possible"] += item["label"] == "possible"
                c["possible_ok"] += item["label"] == "possible" and got == "possible"
        ok = got == item["label"] and (got != "urgent" or m.category == item["category"])
        if not ok:
            wrong.append((item, m))
    return counts, wrong


def _pct(n: int, d: int) -> str:
    return f"{100 * n / d:5.1f}%" if d else "   - "


def print_table(counts: dict, keys: list[str], title: str) -> None:
    print(f"\n{title}")
    print(f"  {'group':18} {'urgent':>6} {'recall':>7} {'reached':>8} {'category':>9} {'others':>7} "
          f"{'false pages':>12} {'possible asked':>15}")
    for key in keys:
        c = counts.get(key)
        if not c:
            continue
        print(f"  {key:18} {c['urgent']:6d} {_pct(c['paged'], c['urgent']):>7} {_pct(c['reached'], c['urgent']):>8} "
              f"{_pct(c['cat_ok'], c['paged']):>9} {c['other']:7d} "
              f"{_pct(c['false'], c['other']):>7} ({c['false']:2d}) "
              f"{_pct(c['possible_ok'], c['possible']):>8} of {c['possible']:2d}")


ADVERSARIAL = {
    "empty": "",
    "MMS, no body": "   ",
    "emoji x 400": "🙂🆘" * 200,
    "control characters": "".join(chr(c) for c in range(32)) * 50,
    "1600 x 'a'": "a" * 1600,
    "1600 random words": None,  # built below
    "1600 Khmer, no spaces": ("ថៅកែមិនបើកប្រាក់ខែឱ្យខ្ញុំទេ" * 80)[:1600],
    "1600 Thai": ("ไม่ได้รับเงินเดือนสามเดือนแล้ว" * 60)[:1600],
    "1600 mixed scripts": ("boss យក passport ខ្ញុំ ไม่จ่าย salary 🙂 " * 50)[:1600],
    "1600 near-keywords": ("lock look block cant want best beat pasport polise " * 40)[:1600],
    "100k characters": "x" * 100_000,
}


def _random_words(n: int = 1600) -> str:
    rng = random.Random(15)
    words = []
    while sum(len(w) + 1 for w in words) < n:
        words.append("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))))
    return " ".join(words)[:n]


def timing(ks: keywords.KeywordSet, texts: list[str], repeat: int = 5) -> tuple[float, float]:
    """(median, worst) microseconds per message over `repeat` passes of `texts`."""
    per = []
    for text in texts:
        ks.match(text)  # warm caches (the token cache, a segmenter's model)
        runs = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            ks.match(text)
            runs.append(time.perf_counter() - t0)
        per.append(min(runs))
    worst = max(per) * 1e6
    return statistics.median(per) * 1e6, worst


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=("dev", "test", "all"), default="all")
    ap.add_argument("--quiet", action="store_true", help="figures only")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    ks = keywords.load(SCRIPTS)
    load_ms = (time.perf_counter() - t0) * 1e3
    items = [i for i in load_set() if args.split == "all" or i["split"] == args.split]
    counts, wrong = score(items, ks.match)
    langs = sorted({i["lang"] for i in items})
    print(f"{len(items)} texts from {EVAL_SET.relative_to(ROOT)} (split: {args.split})")
    print_table(counts, ["all", *(f"lang:{lg}" for lg in langs)], "Per language (both splits)")
    for split in ("dev", "test"):
        if args.split in (split, "all"):
            print_table(counts, [f"split:{split}", *(f"{split}:{lg}" for lg in langs)], f"Split {split}")
    cats = sorted({i["category"] for i in items if i["label"] == "urgent"})
    print_table(counts, [f"cat:{c}" for c in cats], "Per category (urgent texts)")
    if not args.quiet:
        print(f"\nWrong ({len(wrong)}): expected -> got")
        for item, m in wrong:
            exp = item["label"] + (f"/{item['category']}" if item["label"] == "urgent" else "")
            got = band(m) + (f"/{m.category}" if band(m) == "urgent" else f" ({m.label})")
            print(f"  {item['id']:12} {item['split']:4} {exp:22} -> {got:26} {item['text'][:90]!r}")
    print(f"\nTime per message (KeywordSet.match, µs; load {load_ms:.0f} ms)")
    by_lang: dict[str, list[str]] = defaultdict(list)
    for item in items:
        by_lang[item["lang"]].append(item["text"])
    for lg in langs:
        med, worst = timing(ks, by_lang[lg])
        print(f"  {'set ' + lg:24} median {med:8.1f}   worst {worst:9.1f}")
    for name, text in ADVERSARIAL.items():
        med, worst = timing(ks, [text if text is not None else _random_words()])
        print(f"  {name:24} median {med:8.1f}   worst {worst:9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
