"""The staff console's gettext catalogs (hotline/translations): Khmer from dict-style strings, compiled.

msgid is the English text (i18n.EN[key]); a msgid that two keys share with different Khmer (e.g.
"To" as a status change's target and a report's end date) gets the key as its msgctxt. Every
Khmer draft carries the flag `needs-review` and a translator comment until a native speaker has
read it in the console and removed the flag (i18n.KM_REVIEWED is True only when none is left).

One command converts strings written in the old dict style (keys added to EN and KM in an
i18n.py, `t(key, lang)` calls) into catalog entries:

    python -m hotline.catalog                      # EN + i18n.KM_PENDING -> messages.po/.pot
    python -m hotline.catalog --from-dicts OLD.py  # also KM/REPORT_KM dicts in another file
    python -m hotline.catalog --check              # exit 1 if a key has no Khmer entry

Existing translations in the .po are kept (a reviewed entry is never overwritten by a draft).
"""

from __future__ import annotations

import argparse
import ast
import io
import os
import sys
import tokenize
from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

TRANSLATIONS = Path(__file__).resolve().parent / "translations"
DOMAIN = "messages"
REVIEW_FLAG = "needs-review"
REVIEW_COMMENT = "NEEDS NATIVE-SPEAKER REVIEW: a first draft by a non-native writer."
LANGS = ("km",)


def po_path(lang: str, root: Path = TRANSLATIONS) -> Path:
    return root / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def read_catalog(lang: str, root: Path = TRANSLATIONS) -> Catalog:
    path = po_path(lang, root)
    if not path.is_file():
        return Catalog(locale=lang, domain=DOMAIN)
    with path.open("rb") as f:
        return read_po(f, locale=lang, domain=DOMAIN)


def compiled(lang: str, root: Path = TRANSLATIONS) -> bytes:
    """The .mo bytes of a catalog (fuzzy entries left out, as msgfmt does); no network, no files written."""
    buf = io.BytesIO()
    write_mo(buf, read_catalog(lang, root))
    return buf.getvalue()


def compile_to(target: Path, root: Path = TRANSLATIONS) -> Path:
    """Write <target>/<lang>/LC_MESSAGES/messages.mo for every catalog, when missing or older than its .po."""
    for lang in LANGS:
        source, mo = po_path(lang, root), target / lang / "LC_MESSAGES" / f"{DOMAIN}.mo"
        if source.is_file() and (not mo.is_file() or mo.stat().st_mtime < source.stat().st_mtime):
            mo.parent.mkdir(parents=True, exist_ok=True)
            tmp = mo.with_suffix(f".{os.getpid()}.tmp")  # one per process: workers may start together
            tmp.write_bytes(compiled(lang, root))
            tmp.replace(mo)  # atomic: another worker starting at the same time never reads half a file
    return target


def contexts(en: Mapping[str, str], translated: Mapping[str, str]) -> dict[str, str | None]:
    """The msgctxt of each key: None, unless its English is shared by keys translated differently."""
    by_text: dict[str, set[str]] = defaultdict(set)
    for key, text in en.items():
        by_text[text].add(key)
    out: dict[str, str | None] = {}
    for key, text in en.items():
        variants = {translated.get(k) for k in by_text[text] if translated.get(k)}
        out[key] = key if len(variants) > 1 else None
    return out


def dicts_in(path: Path, names: tuple[str, ...] = ("KM", "REPORT_KM")) -> tuple[dict[str, str], set[str]]:
    """The string entries of dict literals `names` in a Python file (an i18n.py of any branch), and
    the keys whose line carries a `# review` comment."""
    source = path.read_text(encoding="utf-8")
    comments = {tok.start[0] for tok in tokenize.generate_tokens(io.StringIO(source).readline)
                if tok.type == tokenize.COMMENT and "review" in tok.string.lower()}
    found: dict[str, str] = {}
    flagged: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        target = node.target if isinstance(node, ast.AnnAssign) else (
            node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None)
        value = node.value if isinstance(node, ast.AnnAssign | ast.Assign) else None
        if not (isinstance(target, ast.Name) and target.id in names and isinstance(value, ast.Dict)):
            continue
        for k, v in zip(value.keys, value.values, strict=True):
            if isinstance(k, ast.Constant) and isinstance(v, ast.Constant) and isinstance(v.value, str):
                found[str(k.value)] = v.value
                if any(line in comments for line in range(k.lineno, (v.end_lineno or v.lineno) + 1)):
                    flagged.add(str(k.value))
    return found, flagged


def _where(key: str) -> tuple[str, int]:
    """The entry's "#:" line: the key it is for (Babel writes a location with no line number as is)."""
    return (f"key:{key}", None)  # type: ignore[return-value]


def build(en: Mapping[str, str], drafts: Mapping[str, str], flagged: set[str], lang: str = "km",
          root: Path = TRANSLATIONS) -> tuple[Catalog, list[str]]:
    """The catalog for `lang`: what the .po has, plus drafts for keys it lacks. Returns (catalog, added keys)."""
    old = read_catalog(lang, root)

    def existing(key: str, ctx: str | None) -> Message | None:
        msg = old.get(en[key], context=ctx) if ctx else None
        return msg or old.get(en[key])

    translated = {k: (str(m.string) if (m := existing(k, k)) and m.string else drafts.get(k, "")) for k in en}
    ctx_of = contexts(en, translated)
    cat = Catalog(locale=lang, domain=DOMAIN, project="Safe Migration Hotline staff console",
                  copyright_holder="the hotline's NGO", creation_date=old.creation_date,
                  revision_date=datetime.now(UTC), fuzzy=False)
    added: list[str] = []
    for key, text in en.items():
        ctx = ctx_of[key]
        same = cat.get(text, context=ctx)
        if same is not None:  # one English text, several keys, one Khmer: one entry
            same.locations.append(_where(key))
            continue
        prior = existing(key, ctx)
        if prior is not None and prior.string:
            msg = Message(text, prior.string, context=ctx, flags=set(prior.flags), auto_comments=prior.auto_comments,
                          user_comments=prior.user_comments, locations=[_where(key)])
        else:
            comments = [REVIEW_COMMENT] + (["The dict marked this line for review."] if key in flagged else [])
            msg = Message(text, drafts.get(key, ""), context=ctx, flags={REVIEW_FLAG} if drafts.get(key) else set(),
                          user_comments=comments if drafts.get(key) else [], locations=[_where(key)])
            if drafts.get(key):
                added.append(key)
        if "{" in text:
            msg.flags.add("python-brace-format")
        cat[text] = msg
    if not added and old.revision_date:
        cat.revision_date = old.revision_date  # nothing new: re-running leaves the file as it was
    return cat, added


def write(cat: Catalog, lang: str = "km", root: Path = TRANSLATIONS) -> Path:
    path = po_path(lang, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        write_po(f, cat, width=100, sort_output=False, include_previous=False)
    template = Catalog(domain=DOMAIN, project=cat.project, fuzzy=False)
    for msg in cat:
        if msg.id:
            template.add(msg.id, context=msg.context, locations=msg.locations, flags=msg.flags - {REVIEW_FLAG})
    with (root / f"{DOMAIN}.pot").open("wb") as f:
        write_po(f, template, width=100, sort_output=False)
    return path


def missing(en: Mapping[str, str], lang: str = "km", root: Path = TRANSLATIONS) -> list[str]:
    """Keys with no translation in the catalog."""
    cat = read_catalog(lang, root)
    ctx_keys = {m.context for m in cat if m.context}
    return [k for k, text in en.items()
            if not ((m := cat.get(text, context=k if k in ctx_keys else None)) and m.string)]


def main(argv: list[str] | None = None) -> int:
    from hotline.web.staff import i18n

    parser = argparse.ArgumentParser(prog="python -m hotline.catalog", description=__doc__.split("\n\n")[0])
    parser.add_argument("--from-dicts", type=Path, action="append", default=[],
                        help="a Python file with KM / REPORT_KM dict literals (dict-style strings) to convert")
    parser.add_argument("--check", action="store_true", help="only report keys without a Khmer entry")
    args = parser.parse_args(argv)
    if args.check:
        gaps = missing(i18n.EN)
        print("\n".join(gaps) or "every key has a Khmer entry")
        return 1 if gaps else 0
    drafts, flagged = dict(i18n.KM_PENDING), set()
    for path in args.from_dicts:
        more, marks = dicts_in(path)
        drafts.update(more)
        flagged |= marks
    cat, added = build(i18n.EN, drafts, flagged)
    path = write(cat)
    print(f"{path}: {len(cat)} entries, {len(added)} added from dict-style strings")
    gaps = missing(i18n.EN)
    if gaps:
        print("no Khmer yet for: " + ", ".join(gaps), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
