"""Load a voice script from ivr_scripts/voice/ and check it, naming the file, node and field of each problem.

`menu.yaml` holds the settings and nodes; every other *.yaml file in the folder holds `prompts:`
(the words per language, the audio file name, and who must review them). Everything is checked
before anything runs: an NGO editor learns about a typo from `hotline scripts check`, not from a
caller hearing silence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Any

import yaml

from hotline.menus.schema import (
    NODE_TYPES,
    REPEAT,
    WEEKDAYS,
    Exhaust,
    Node,
    OfficeHours,
    Prompt,
    PromptText,
    Route,
    Script,
)

MENU_FILE = "menu.yaml"
CONTINUE = "$continue"  # a resume node's key target: back into the message where the last call stopped
KEYS = set("0123456789*#")
# What the urgent node's category question may set (hotline.models.CaseCategory; "other" is the default).
CASE_CATEGORIES = ("trafficking", "violence", "locked_in", "detention", "missing", "documents", "unpaid_wages")
REQUIRED_COMMON = ("key_not_used", "goodbye", "system_error")
# The fallback in hotline.web.errors plays these audio names directly, in any language.
FIXED_AUDIO = {"goodbye": "goodbye", "system_error": "system_error"}
ROLE_PROMPTS = {
    "urgent": ("connecting", "record", "whisper"),  # whisper: heard by the on-call person, not the caller
    "callback": ("confirm", "enter_number", "invalid_number", "when", "done"),
}
# Asked only when given: a callback node without them simply asks no consent questions.
OPTIONAL_ROLE_PROMPTS = {"callback": ("consent_contact", "consent_share")}
NODE_FIELDS = {
    "common": {"type", "timeout", "no_input", "wrong_key", "globals"},
    "menu": {"prompt", "keys", "all_languages", "every_language"},
    "message": {"parts", "parts_by_country", "after", "keys"},
    "urgent": {"prompts", "next", "dial_timeout", "record_max_seconds", "record_timeout", "categories",
               "numbers_by_country"},
    "callback": {"prompts", "next", "number_timeout"},
    "resume": {"prompt", "keys"},
    "hangup": {"prompt"},
    "province": {"prompt", "provinces"},
}
INHERITED = ("timeout", "no_input", "wrong_key")  # node fields `defaults` may set
TOP_FIELDS = {"languages", "default_language", "start", "main", "global_keys", "office_hours", "resume",
              "common_prompts", "defaults", "nodes", "province_question"}


@dataclass(frozen=True)
class Problem:
    file: str
    node: str | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = [self.file]
        if self.node:
            where.append(f"node '{self.node}'")
        if self.field:
            where.append(f"field '{self.field}'")
        return ", ".join(where) + ": " + self.message


class ScriptError(Exception):
    """A script that must not be served; `problems` lists every one found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("the voice script is not valid:\n  - " + "\n  - ".join(str(p) for p in problems))


def _duplicates(file: str, node: yaml.Node, path: tuple[str, ...], problems: list[Problem]) -> None:
    """PyYAML keeps the last of two equal keys silently; a menu with two `"3":` entries is an error."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value in node.value:
            key = str(key_node.value)
            if key in seen:
                in_node = path[1] if len(path) > 1 and path[0] == "nodes" else None
                field = ".".join((path[2:] if in_node else path) + (key,))
                lines = f"lines {seen[key] + 1} and {key_node.start_mark.line + 1}"
                problems.append(Problem(file, in_node, field, f"duplicate key {key!r} ({lines})"))
            seen[key] = key_node.start_mark.line
            _duplicates(file, value, (*path, key), problems)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _duplicates(file, item, (*path, str(i)), problems)


def _read_yaml(path: Path, problems: list[Problem]) -> dict[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
        before = len(problems)
        tree = yaml.compose(text, Loader=yaml.SafeLoader)
        if tree is not None:
            _duplicates(path.name, tree, (), problems)
        if len(problems) > before:
            return None
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        problems.append(Problem(path.name, None, None, f"not valid YAML: {exc}"))
        return None
    if not isinstance(data, dict):
        problems.append(Problem(path.name, None, None, "must be a mapping at the top level"))
        return None
    return data


def load_script(folder: Path | str) -> Script:
    """Read and check every file of a voice script; raise ScriptError listing all problems."""
    folder = Path(folder)
    problems: list[Problem] = []
    menu_path = folder / MENU_FILE
    if not menu_path.is_file():
        raise ScriptError([Problem(str(menu_path), None, None, "file not found")])
    menu = _read_yaml(menu_path, problems)
    if menu is None:
        raise ScriptError(problems)
    prompts: dict[str, Prompt] = {}
    files = [MENU_FILE]
    for path in sorted(folder.glob("*.yaml")):
        if path.name == MENU_FILE:
            continue
        files.append(path.name)
        data = _read_yaml(path, problems)
        if data is not None:
            _parse_prompts(path.name, data, prompts, problems, _languages(menu))
    script = _Builder(menu, prompts, problems).build(tuple(files))
    if problems or script is None:
        raise ScriptError(problems)
    return script


def _languages(menu: dict[str, Any]) -> tuple[str, ...]:
    langs = menu.get("languages")
    return tuple(str(x) for x in langs) if isinstance(langs, list) else ()


def _parse_prompts(file: str, data: dict[str, Any], out: dict[str, Prompt], problems: list[Problem],
                   languages: tuple[str, ...]) -> None:
    section = data.get("prompts")
    if not isinstance(section, dict):
        problems.append(Problem(file, None, "prompts", "a prompt file needs a `prompts:` mapping"))
        return
    for pid, spec in section.items():
        pid = str(pid)
        where = f"prompt '{pid}'"
        if pid in out:
            problems.append(Problem(file, None, where, "defined twice (also in another prompt file)"))
            continue
        if not isinstance(spec, dict):
            problems.append(Problem(file, None, where, "must be a mapping with audio, review and text"))
            continue
        unknown = set(spec) - {"audio", "review", "text"}
        if unknown:
            problems.append(Problem(file, None, where, f"unknown field(s): {', '.join(sorted(map(str, unknown)))}"))
        review, texts, audio = spec.get("review"), spec.get("text"), spec.get("audio", pid)
        if not isinstance(review, str) or not review.strip():
            problems.append(Problem(file, None, f"{where}.review",
                                    "missing: every text says who must review it (e.g. native-speaker)"))
            review = ""
        if not isinstance(texts, dict):
            problems.append(Problem(file, None, f"{where}.text", "missing: a text per language"))
            continue
        parsed: dict[str, PromptText] = {}
        for lang in languages:
            text = texts.get(lang)
            name = audio.get(lang) if isinstance(audio, dict) else audio
            if not isinstance(text, str) or not text.strip():
                problems.append(Problem(file, None, f"{where}.text.{lang}", f"missing the {lang} text"))
                continue
            if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
                problems.append(Problem(file, None, f"{where}.audio", f"missing or bad audio name for {lang}"))
                continue
            parsed[lang] = PromptText(" ".join(text.split()), name, str(review))
        extra = set(map(str, texts)) - set(languages)
        if extra:
            problems.append(Problem(file, None, f"{where}.text",
                                    f"language(s) not declared in menu.yaml: {', '.join(sorted(extra))}"))
        out[pid] = Prompt(pid, parsed)


class _Builder:
    """Turns menu.yaml into a Script, collecting problems instead of stopping at the first."""

    def __init__(self, menu: dict[str, Any], prompts: dict[str, Prompt], problems: list[Problem]):
        self.menu, self.prompts, self.problems = menu, prompts, problems
        self.used_prompts: set[str] = set()

    def err(self, node: str | None, field: str | None, message: str) -> None:
        self.problems.append(Problem(MENU_FILE, node, field, message))

    def build(self, files: tuple[str, ...]) -> Script | None:
        m = self.menu
        unknown = set(m) - TOP_FIELDS
        if unknown:
            self.err(None, ", ".join(sorted(map(str, unknown))), "unknown top-level field(s)")
        languages = _languages(m)
        if not languages:
            self.err(None, "languages", "missing: a list such as [km, th, en]")
        self.languages = languages
        default_language = str(m.get("default_language", ""))
        if default_language not in languages:
            self.err(None, "default_language", f"{default_language!r} is not one of the languages")
        raw_nodes = m.get("nodes")
        if not isinstance(raw_nodes, dict) or not raw_nodes:
            self.err(None, "nodes", "missing: the menu's nodes")
            return None
        self.node_ids = {str(k) for k in raw_nodes}
        start, main = str(m.get("start", "")), str(m.get("main", ""))
        for name, value in (("start", start), ("main", main)):
            if value not in self.node_ids:
                self.err(None, name, f"unknown target {value!r}")
        global_keys = self._global_keys(m.get("global_keys"))
        self.global_keys = global_keys
        defaults = self._defaults(m.get("defaults"))
        parsed = {str(nid): self._node(str(nid), spec, defaults) for nid, spec in raw_nodes.items()}
        nodes = {k: v for k, v in parsed.items() if v is not None}
        common = self._common(m.get("common_prompts"))
        resume_node, resume_hours = self._resume(m.get("resume"), nodes)
        office = self._office_hours(m.get("office_hours"))
        province_node = self._province_question(m.get("province_question"), nodes)
        if self.problems:
            return None
        roots = [start, main, *(t for t in global_keys.values() if t != REPEAT)]
        if resume_node:
            roots.append(resume_node)
        if province_node:
            roots.append(province_node)
        self._check_reachable(nodes, roots)
        self._check_silent_paths(nodes)
        self._check_prompts()
        if self.problems or office is None:
            return None
        return Script(languages=languages, default_language=default_language, start=start, main=main,
                      resume_node=resume_node, resume_within_hours=resume_hours, global_keys=global_keys,
                      office_hours=office, common=common, nodes=nodes, prompts=self.prompts, files=files,
                      province_node=province_node)

    # -- pieces -------------------------------------------------------------------------------------

    def _global_keys(self, raw: Any) -> dict[str, str]:
        if not isinstance(raw, dict):
            self.err(None, "global_keys", "missing: e.g. {'9': urgent, '8': callback, '*': repeat, '0': main}")
            return {}
        out = {}
        for key, target in raw.items():
            key, target = str(key), str(target)
            if key not in KEYS:
                self.err(None, f"global_keys.{key}", "not a phone key (0-9, * or #)")
            elif target != REPEAT and target not in self.node_ids:
                self.err(None, f"global_keys.{key}", f"unknown target {target!r}")
            out[key] = target
        return out

    def _prompt_ref(self, node: str, field: str, pid: Any) -> str | None:
        if not isinstance(pid, str) or not pid:
            self.err(node, field, "missing prompt")
            return None
        if pid not in self.prompts:
            self.err(node, field, f"unknown prompt {pid!r} (not in any prompt file)")
            return None
        self.used_prompts.add(pid)
        return pid

    def _route(self, node: str | None, field: str, raw: Any) -> Route | None:
        if isinstance(raw, dict):
            target, language = raw.get("goto"), raw.get("language")
            unknown = set(raw) - {"goto", "language"}
            if unknown:
                self.err(node, field, f"unknown field(s): {', '.join(sorted(map(str, unknown)))}")
        else:
            target, language = raw, None
        target = str(target) if target is not None else ""
        if target not in self.node_ids and target != CONTINUE:
            self.err(node, field, f"unknown target {target!r}")
            return None
        if language is not None and str(language) not in self.languages:
            self.err(node, f"{field}.language", f"{language!r} is not one of the languages")
            return None
        return Route(target, str(language) if language is not None else None)

    def _int(self, node: str | None, field: str, value: Any, lo: int, hi: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            self.err(node, field, f"must be a whole number from {lo} to {hi}, not {value!r}")
            return lo
        return value

    def _exhaust(self, node: str | None, field: str, raw: Any) -> Exhaust | None:
        if not isinstance(raw, dict):
            self.err(node, field, "missing: {retries: N, then: node} (set it here or under defaults)")
            return None
        unknown = set(raw) - {"retries", "then", "language"}
        if unknown:
            self.err(node, field, f"unknown field(s): {', '.join(sorted(map(str, unknown)))}")
        retries = self._int(node, f"{field}.retries", raw.get("retries"), 0, 10)
        route = self._route(node, f"{field}.then", {"goto": raw.get("then"), "language": raw.get("language")})
        if route is not None and route.target == CONTINUE:
            self.err(node, f"{field}.then", f"{CONTINUE} only works as a key of a resume node")
            return None
        return Exhaust(retries, route) if route else None

    def _defaults(self, raw: Any) -> dict[str, Any]:
        """Check `defaults` once, so a bad default is one problem rather than one per node using it;
        nodes that inherit a bad default then skip that field (`bad_defaults`)."""
        self.bad_defaults: set[str] = set()
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            self.err(None, "defaults", "must be a mapping such as {timeout: 5, no_input: {retries: 2, then: node}}")
            return {}
        for key in INHERITED:
            if key not in raw:
                continue
            before = len(self.problems)
            if key == "timeout":
                self._int(None, "defaults.timeout", raw[key], 1, 30)
            else:
                self._exhaust(None, f"defaults.{key}", raw[key])
            if len(self.problems) > before:
                self.bad_defaults.add(key)
        return raw

    def _node(self, nid: str, spec: Any, defaults: dict[str, Any]) -> Node | None:
        if not isinstance(spec, dict):
            self.err(nid, None, "must be a mapping with at least `type`")
            return None
        ntype = spec.get("type")
        if ntype not in NODE_TYPES:
            self.err(nid, "type", f"must be one of {', '.join(NODE_TYPES)}, not {ntype!r}")
            return None
        before = len(self.problems)
        allowed = NODE_FIELDS["common"] | NODE_FIELDS[ntype]
        unknown = set(spec) - allowed
        if unknown:
            self.err(nid, ", ".join(sorted(map(str, unknown))), f"unknown field(s) for a {ntype} node")
        merged = {**{k: v for k, v in defaults.items() if k in INHERITED}, **spec}
        # Inherited from a default already reported as bad: say nothing more here.
        bad = {k for k in self.bad_defaults if k not in spec}
        kw: dict[str, Any] = {"id": nid, "type": ntype}
        kw["timeout"] = 5 if "timeout" in bad else self._int(nid, "timeout", merged.get("timeout", 5), 1, 30)
        kw["globals"] = bool(merged.get("globals", True))
        if ntype != "hangup":
            for key in ("no_input", "wrong_key"):
                kw[key] = None if key in bad else self._exhaust(nid, key, merged.get(key))
        if ntype in ("menu", "resume", "hangup", "province"):
            kw["prompt"] = self._prompt_ref(nid, "prompt", spec.get("prompt"))
        kw["all_languages"] = bool(spec.get("all_languages", False))
        if spec.get("every_language") is not None:
            kw["every_language"] = self._prompt_ref(nid, "every_language", spec.get("every_language"))
        kw["keys"] = self._keys(nid, ntype, spec.get("keys") or {}, kw["globals"])
        if ntype == "message":
            kw["parts_by_country"] = self._parts(nid, spec)
            kw["after"] = self._prompt_ref(nid, "after", spec.get("after"))
        if ntype in ROLE_PROMPTS:
            raw_roles = spec.get("prompts")
            roles: dict[str, Any] = raw_roles if isinstance(raw_roles, dict) else {}
            kw["prompts"] = {r: self._prompt_ref(nid, f"prompts.{r}", roles.get(r)) for r in ROLE_PROMPTS[ntype]}
            optional = OPTIONAL_ROLE_PROMPTS.get(ntype, ())
            kw["prompts"].update({r: self._prompt_ref(nid, f"prompts.{r}", roles[r]) for r in optional if r in roles})
            unknown_roles = set(map(str, roles)) - set(ROLE_PROMPTS[ntype]) - set(optional)
            if unknown_roles:
                self.err(nid, "prompts", f"unknown prompt role(s): {', '.join(sorted(unknown_roles))}")
            kw["next"] = (self._route(nid, "next", spec.get("next")) or Route("")).target
        if ntype == "urgent":
            kw["dial_timeout"] = self._int(nid, "dial_timeout", spec.get("dial_timeout", 25), 5, 60)
            kw["record_max_seconds"] = self._int(nid, "record_max_seconds", spec.get("record_max_seconds", 120),
                                                 10, 600)
            kw["record_timeout"] = self._int(nid, "record_timeout", spec.get("record_timeout", 5), 1, 30)
            if "categories" in spec:
                kw["categories"] = self._categories(nid, spec["categories"], kw["prompts"])
            if "numbers_by_country" in spec:
                kw["numbers_by_country"] = self._numbers(nid, spec["numbers_by_country"])
        if ntype == "province":
            kw["provinces"] = self._provinces(nid, spec.get("provinces"))
        if ntype == "callback":
            kw["number_timeout"] = self._int(nid, "number_timeout", spec.get("number_timeout", 10), 3, 30)
        if ntype == "resume" and CONTINUE not in {r.target for r in kw["keys"].values()}:
            self.err(nid, "keys", f"a resume node needs a key whose target is {CONTINUE}")
        if len(self.problems) > before:
            return None
        return Node(**kw)

    def _categories(self, nid: str, raw: Any, prompts: dict[str, str | None]) -> dict[str, str]:
        """`categories: {prompt: <prompt id>, keys: {"1": locked_in, ...}}`: asked after the recording."""
        if not isinstance(raw, dict) or not isinstance(raw.get("keys"), dict) or not raw["keys"]:
            self.err(nid, "categories", "must have a prompt and keys: {'1': locked_in, ...}")
            return {}
        prompts["category"] = self._prompt_ref(nid, "categories.prompt", raw.get("prompt"))
        out = {}
        for key, category in raw["keys"].items():
            if str(key) not in KEYS or category not in CASE_CATEGORIES:
                self.err(nid, f"categories.keys.{key}", f"must be a key 0-9 naming one of {', '.join(CASE_CATEGORIES)}")
                continue
            out[str(key)] = str(category)
        return out

    def _provinces(self, nid: str, raw: Any) -> dict[str, str]:
        """`provinces: {"1": "01", ...}`: keys (not the global ones) naming province codes (01-25)."""
        if not isinstance(raw, dict) or not raw:
            self.err(nid, "provinces", "must map keys to province codes: {'1': '01', ...}")
            return {}
        out = {}
        for key, code in raw.items():
            text = str(code)
            if str(key) not in KEYS or str(key) in self.global_keys or not (
                    len(text) == 2 and text.isdigit() and 1 <= int(text) <= 25):
                self.err(nid, f"provinces.{key}", "must be a key that is not a global key, naming a province "
                                                  "code from '01' to '25' (ISO 3166-2:KH)")
                continue
            out[str(key)] = text
        return out

    def _province_question(self, raw: Any, nodes: Mapping[str, Node | None]) -> str | None:
        if raw is None:
            return None
        target = nodes.get(str(raw))
        if target is None and str(raw) in self.node_ids:
            return None  # the node itself is invalid, and named already
        if target is None or target.type != "province":
            self.err(None, "province_question", f"{raw!r} is not a node of type province")
            return None
        return str(raw)

    def _numbers(self, nid: str, raw: Any) -> dict[str, str]:
        """`numbers_by_country: {TH: prompt, KH: prompt, default: prompt}`: said before the recording."""
        if not isinstance(raw, dict) or "default" not in raw:
            self.err(nid, "numbers_by_country", "needs a `default` prompt (a withheld number, another country)")
            return {}
        out = {}
        for country, pid in raw.items():
            ref = self._prompt_ref(nid, f"numbers_by_country.{country}", pid)
            if ref:
                out[str(country)] = ref
        return out

    def _keys(self, nid: str, ntype: str, raw: Any, globals_on: bool) -> dict[str, Route]:
        if not isinstance(raw, dict):
            self.err(nid, "keys", "must be a mapping of key -> target")
            return {}
        out = {}
        for key, target in raw.items():
            key = str(key)
            field = f"keys.{key}"
            if key not in KEYS:
                self.err(nid, field, "not a phone key (0-9, * or #)")
                continue
            if globals_on and key in self.global_keys:
                self.err(nid, field, f"duplicate key {key!r}: it is a global key here "
                                     f"(-> {self.global_keys[key]}); set `globals: false` or use another key")
                continue
            route = self._route(nid, field, target)
            if route is not None and route.target == CONTINUE and ntype != "resume":
                self.err(nid, field, f"{CONTINUE} only works in a resume node")
                continue
            if route is not None:
                out[key] = route
        return out

    def _parts(self, nid: str, spec: dict[str, Any]) -> dict[str, tuple[str, ...]]:
        raw = spec.get("parts_by_country")
        if raw is None:
            raw = {"default": spec.get("parts")}
        elif "parts" in spec:
            self.err(nid, "parts", "give either parts or parts_by_country, not both")
        if not isinstance(raw, dict) or "default" not in raw:
            self.err(nid, "parts_by_country", "needs a `default` list (used for callers from other countries)")
            return {}
        out = {}
        for country, parts in raw.items():
            field = "parts" if country == "default" and "parts" in spec else f"parts_by_country.{country}"
            if not isinstance(parts, list) or not parts:
                self.err(nid, field, "must be a non-empty list of prompts")
                continue
            refs = [self._prompt_ref(nid, f"{field}[{i}]", p) for i, p in enumerate(parts)]
            out[str(country)] = tuple(r for r in refs if r)
        return out

    def _common(self, raw: Any) -> dict[str, str]:
        raw = raw if isinstance(raw, dict) else {}
        out = {}
        for role in REQUIRED_COMMON:
            pid = self._prompt_ref("", f"common_prompts.{role}", raw.get(role))
            if pid:
                out[role] = pid
        return out

    def _resume(self, raw: Any, nodes: Mapping[str, Node | None]) -> tuple[str | None, float]:
        if raw is None:
            return None, 0.0
        if not isinstance(raw, dict):
            self.err(None, "resume", "must be {node: ..., within_hours: ...}")
            return None, 0.0
        node = str(raw.get("node", ""))
        target = nodes.get(node)
        if target is None or target.type != "resume":
            self.err(None, "resume.node", f"{node!r} is not a node of type resume")
        hours = raw.get("within_hours")
        if not isinstance(hours, int | float) or not 0 < hours <= 48:
            self.err(None, "resume.within_hours", "must be a number of hours from 0 to 48")
            hours = 0
        return node, float(hours)

    def _office_hours(self, raw: Any) -> OfficeHours | None:
        if not isinstance(raw, dict):
            self.err(None, "office_hours", "missing: {days: [mon, ...], open: '08:00', close: '17:00'}")
            return None
        days = raw.get("days")
        if not isinstance(days, list) or not all(str(d) in WEEKDAYS for d in days):
            self.err(None, "office_hours.days", f"must be a list of {', '.join(WEEKDAYS)}")
            return None
        try:
            opens, closes = time.fromisoformat(str(raw.get("open"))), time.fromisoformat(str(raw.get("close")))
        except ValueError:
            self.err(None, "office_hours.open", "open and close must be times like '08:00'")
            return None
        if opens >= closes:
            self.err(None, "office_hours.close", "must be later than open")
        return OfficeHours(frozenset(WEEKDAYS.index(str(d)) for d in days), opens, closes)

    # -- whole-script checks ------------------------------------------------------------------------

    @staticmethod
    def _edges(node: Node) -> list[str]:
        out = [r.target for r in node.keys.values() if r.target != CONTINUE]
        out += [e.then.target for e in (node.no_input, node.wrong_key) if node.type != "hangup"]
        if node.next:
            out.append(node.next)
        return out

    def _check_reachable(self, nodes: Mapping[str, Node], roots: list[str]) -> None:
        seen: set[str] = set()
        todo = [r for r in roots if r in nodes]
        while todo:
            nid = todo.pop()
            if nid in seen:
                continue
            seen.add(nid)
            todo.extend(t for t in self._edges(nodes[nid]) if t in nodes)
        for nid in nodes:
            if nid not in seen:
                self.err(nid, None, "unreachable node: no key, timeout or global key leads here")

    def _check_silent_paths(self, nodes: Mapping[str, Node]) -> None:
        """A caller who presses nothing must reach a hang-up, never circle for ever."""
        for start in nodes:
            path, nid = [start], start
            while nodes[nid].type != "hangup":
                node = nodes[nid]
                nid = node.next if node.type == "urgent" and node.next else node.no_input.then.target
                if nid in path:
                    loop = " -> ".join([*path[path.index(nid):], nid])
                    self.err(start, "no_input.then", f"a loop with no way out: a caller who presses nothing "
                                                     f"goes {loop} for ever; end it at a hangup node")
                    return
                path.append(nid)

    def _check_prompts(self) -> None:
        for role, name in FIXED_AUDIO.items():
            pid = (self.menu.get("common_prompts") or {}).get(role)
            prompt = self.prompts.get(pid) if isinstance(pid, str) else None
            for lang, t in (prompt.texts.items() if prompt else ()):
                if t.audio != name:
                    self.err(None, f"common_prompts.{role}",
                             f"the {lang} audio must be named {name!r}: the error fallback plays it by that name")
