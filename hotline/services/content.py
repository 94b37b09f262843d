"""The content studio: versions of what callers hear and read, recordings, review, publish, rollback.

A *version* is what `ivr_scripts/` plus `audio/` (with its manifest) would hold, stored as rows:
- one **draft** (status draft, no number) collects every change;
- **published** versions are numbered 1, 2, 3 ... and never change; the highest number is what
  callers hear. A rollback publishes a copy of an older version under the next number, so the
  history only grows and every step of it is in the audit log.

Rows (hotline.models): `ContentVersion`; `ContentItem` (kind, key, lang) per piece of a version:
    menu    ""            JSON: menu.yaml without its nodes
    node    <node id>     JSON: one node of menu.yaml (position keeps the order)
    pfile   <file name>   JSON: a voice prompt file's fields other than `prompts` (usually {})
    prompt  <prompt id>   JSON: {"file", "audio", "review"} (review: who must review the words)
    text    <prompt id>   the prompt's words in `lang`
    smsfile <file name>   JSON: sms/<lang>.yaml without its replies
    reply   <reply id>    the SMS reply in `lang`
    audio   <audio name>  JSON: {"take": id, "sha256", "duration_ms"}: the recording of that name in `lang`
    file    <path>        any other file under ivr_scripts/, kept as its text
and `ContentTake` per recording (prompt id, language, sha256, duration, source, review, who).
Recording files live in a `ContentStore`, named by their sha256 (the same take is one file).
Audio names without an `audio` item play the starter file in audio/<lang>/ (a placeholder).

API for the recording side (the browser recorder, record-by-phone, uploads):

    store = content.store_for(settings)          # the configured store (CONTENT_DIR)
    take = content.add_take(session, store, prompt_id="main_menu", language="km",
                            audio=path_or_bytes,  # already processed: telephone mono MP3
                            duration_ms=8200, source="browser", staff_id=staff.id)
        -> ContentTake (review "needs_review"); the draft's cell (the prompt's audio name in that
           language) now plays it. ContentError("unknown_prompt" | "unknown_language" | "bad_source").
           The caller commits (and audits nothing more: add_take writes the audit row).
    content.next_needing_recording(session, "km", after=None) -> Cell | None
        the next prompt, in matrix order, whose cell in the draft has no recording yet (a
        placeholder or nothing); `after` = a prompt id to continue after (the phone line's "skip").
    content.cell(session, prompt_id, "km") -> Cell: its text (what to read out), audio name, take.
    Playing: staff hear a take at `/staff/content/takes/<id>.mp3` (staff-only route); callers hear
    the PUBLISHED take as /audio/<lang>/<name>.<sha256>.mp3 (immutable, cached for good); the
    simulator plays the draft when its "draft" toggle is on (`ContentLive.draft`).

How the voice hot path gets its menu: `ContentLive.published()` returns a cached `Snapshot`
(script, SMS keywords, audio map) for the current published number. It looks the number up at
most once every `interval` seconds per process (a Redis GET, or one indexed SELECT when the key
is missing or Redis is away); only a new number costs a load, once per process. No step reads
the database for content.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hotline.db import utcnow
from hotline.menus import keywords
from hotline.menus.loader import MENU_FILE, Problem, ScriptError, load_script
from hotline.menus.schema import Script
from hotline.menus.textnorm import sms_segments, sms_units
from hotline.models import ContentItem, ContentReview, ContentStatus, ContentTake, ContentVersion, StaffUser
from hotline.services import staff as staff_service

log = logging.getLogger(__name__)

SOURCES = ("browser", "phone", "upload", "import")
TEXT_KINDS = ("text", "reply")  # what translators and reviewers work on
VOICE, SMS = "ivr_scripts/voice", "ivr_scripts/sms"
REDIS_KEY = "hotline:content:published"
REDIS_TTL = 60  # a lost SET (Redis restarted) costs at most this long before the database is asked
MANIFEST = "manifest.json"


class ContentError(Exception):
    """A request the studio refuses; `str()` is a key for the console's texts, `detail` the rest."""

    def __init__(self, key: str, **detail: Any):
        super().__init__(key)
        self.key = key
        self.detail = detail


class Conflict(ContentError):
    """Someone changed the item (or published the draft) since the editor opened it.

    `current` is what is stored now, `mine` what this editor sent: the form shows both, nothing is lost."""

    def __init__(self, current: str, mine: str, by: str | None):
        super().__init__("content_conflict", current=current, mine=mine, by=by)
        self.current, self.mine, self.by = current, mine, by


@dataclass(frozen=True)
class FieldProblem:
    """A loader's problem, placed: which item of the editor it belongs to (None: the whole version)."""

    kind: str | None
    key: str | None
    lang: str
    message: str


class ContentInvalid(ContentError):
    def __init__(self, problems: list[FieldProblem]):
        super().__init__("content_invalid", count=len(problems))
        self.problems = problems


# -- the store of recording files ---------------------------------------------------------------------

class ContentStore:
    """Recording files by sha256: <root>/<first two hex>/<sha256>.mp3. Writing one twice is free."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError("not a sha256")
        return self.root / sha256[:2] / f"{sha256}.mp3"

    def exists(self, sha256: str) -> bool:
        try:
            return self.path(sha256).is_file()
        except ValueError:
            return False

    def put(self, audio: Path | bytes) -> str:
        data = audio if isinstance(audio, bytes) else Path(audio).read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        dst = self.path(sha)
        if not dst.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            part = dst.with_suffix(f".{threading.get_ident()}.part")
            part.write_bytes(data)
            part.replace(dst)  # atomic: a reader never sees half a file
        return sha


def store_for(settings: Any) -> ContentStore:
    return ContentStore(settings.content_path)


# -- versions and items -----------------------------------------------------------------------------------

def latest(session: Session) -> ContentVersion | None:
    """The published version callers hear (None: nothing published yet, the starter files play)."""
    return session.scalar(sa.select(ContentVersion).where(ContentVersion.status == ContentStatus.PUBLISHED)
                          .order_by(ContentVersion.number.desc()).limit(1))


def latest_number(session: Session) -> int:
    return session.scalar(sa.select(sa.func.max(ContentVersion.number))) or 0


def find_draft(session: Session) -> ContentVersion | None:
    return session.scalar(sa.select(ContentVersion).where(ContentVersion.status == ContentStatus.DRAFT))


def draft(session: Session, staff_id: int | None = None, *, starter: Path | None = None) -> ContentVersion:
    """The draft, started from the latest published version (or the starter files) when there is none."""
    existing = find_draft(session)
    if existing is not None:
        return existing
    base = latest(session)
    try:
        with session.begin_nested():  # two editors starting the draft at once: one wins, both use it
            new = ContentVersion(status=ContentStatus.DRAFT, based_on=base.number if base else None,
                                 created_by_id=staff_id, revision=1)
            session.add(new)
            session.flush()
            if base is not None:
                _copy_items(session, base.id, new.id)
            else:
                # Nobody changed these yet: the rows name no editor (the draft row says who started it).
                _load_items(session, new, _read_tree(starter or repo_root()), store=None, staff_id=None)
    except IntegrityError:
        found = find_draft(session)
        assert found is not None
        return found
    return new


def _copy_items(session: Session, src: int, dst: int) -> None:
    cols = ("kind", "key", "lang", "position", "value", "review", "reviewed_by_id", "updated_at", "updated_by_id")
    t: sa.Table = ContentItem.__table__  # type: ignore[assignment]
    session.execute(sa.insert(t).from_select(["version_id", *cols],
                                           sa.select(sa.literal(dst), *(t.c[c] for c in cols))
                                           .where(t.c.version_id == src)))


def items(session: Session, version: ContentVersion, kind: str | None = None) -> list[ContentItem]:
    q = sa.select(ContentItem).where(ContentItem.version_id == version.id)
    if kind:
        q = q.where(ContentItem.kind == kind)
    return list(session.scalars(q.order_by(ContentItem.kind, ContentItem.position, ContentItem.key, ContentItem.lang)))


def item(session: Session, version: ContentVersion, kind: str, key: str, lang: str = "") -> ContentItem | None:
    return session.scalar(sa.select(ContentItem).where(ContentItem.version_id == version.id, ContentItem.kind == kind,
                                                       ContentItem.key == key, ContentItem.lang == lang))


def _bump_draft(session: Session, version: ContentVersion) -> None:
    """Every change starts here: the draft row is locked (PostgreSQL) and its revision moves on. A
    draft published meanwhile matches no row: the change is refused, never written to a published version."""
    n = session.execute(sa.update(ContentVersion).where(ContentVersion.id == version.id,
                                                        ContentVersion.status == ContentStatus.DRAFT)
                        .values(revision=ContentVersion.revision + 1)).rowcount  # type: ignore[attr-defined]
    if n != 1:
        raise ContentError("content_draft_gone")


def edit(session: Session, *, kind: str, key: str, lang: str = "", value: str, revision: int | None,
         staff_id: int | None, ip: str | None = None, review: ContentReview = ContentReview.NEEDS_REVIEW
         ) -> ContentItem:
    """Change one item of the draft. `revision` is the item's revision the editor started from
    (None: a new item); someone else's change since then raises Conflict with both texts."""
    d = draft(session, staff_id)
    _bump_draft(session, d)
    current = item(session, d, kind, key, lang)
    if current is None:
        if revision not in (None, 0):
            raise Conflict("", value, None)
        current = ContentItem(version_id=d.id, kind=kind, key=key, lang=lang, value=value, review=review,
                              updated_by_id=staff_id, position=_next_position(session, d, kind), revision=1)
        session.add(current)
        session.flush()
    else:
        if current.value == value and revision == current.revision:
            return current
        n = session.execute(sa.update(ContentItem).where(ContentItem.id == current.id,
                                                         ContentItem.revision == (revision or 0))
                            .values(value=value, review=review, reviewed_by_id=None, updated_at=utcnow(),
                                    updated_by_id=staff_id, revision=ContentItem.revision + 1)).rowcount  # type: ignore[attr-defined]
        if n != 1:
            session.refresh(current)
            by = session.get(StaffUser, current.updated_by_id) if current.updated_by_id else None
            raise Conflict(current.value, value, (by.name or by.email) if by else None)
        session.refresh(current)
    staff_service.audit(session, staff_id, "content.edit", "content_item", f"{kind}:{key}:{lang}"[:64], ip=ip,
                        draft=d.id, revision=current.revision)
    return current


def _next_position(session: Session, version: ContentVersion, kind: str) -> int:
    return (session.scalar(sa.select(sa.func.max(ContentItem.position))
                           .where(ContentItem.version_id == version.id, ContentItem.kind == kind)) or 0) + 1


def set_review(session: Session, *, kind: str, key: str, lang: str, state: ContentReview, staff_id: int,
               ip: str | None = None) -> None:
    """Mark a text (kind text/reply) or the draft's recording of a cell (kind audio) draft /
    needs review / reviewed (by `staff_id`). Review is not a content change: no revision moves."""
    d = draft(session, staff_id)
    reviewer = staff_id if state == ContentReview.REVIEWED else None
    if kind == "audio":
        row = item(session, d, "audio", key, lang)
        take = session.get(ContentTake, json.loads(row.value)["take"]) if row else None
        if take is None:
            raise ContentError("content_no_recording")
        take.review, take.reviewed_by_id = state, reviewer
        take.reviewed_at = utcnow() if reviewer else None
    else:
        row = item(session, d, kind, key, lang)
        if row is None:
            raise ContentError("content_unknown_item")
        row.review, row.reviewed_by_id = state, reviewer
    staff_service.audit(session, staff_id, "content.review", "content_item", f"{kind}:{key}:{lang}"[:64], ip=ip,
                        state=str(state))


# -- recordings -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Cell:
    prompt_id: str
    language: str
    text: str
    audio_name: str
    take: ContentTake | None


def _prompt_meta(session: Session, version: ContentVersion, prompt_id: str) -> dict[str, Any] | None:
    row = item(session, version, "prompt", prompt_id)
    return json.loads(row.value) if row else None


def audio_name(meta: Mapping[str, Any], prompt_id: str, lang: str) -> str:
    audio = meta.get("audio", prompt_id)
    return str(audio.get(lang, prompt_id) if isinstance(audio, dict) else audio)


def languages(session: Session, version: ContentVersion) -> tuple[str, ...]:
    row = item(session, version, "menu", "")
    langs = json.loads(row.value).get("languages", []) if row else []
    return tuple(str(x) for x in langs)


def add_take(session: Session, store: ContentStore, *, prompt_id: str, language: str, audio: Path | bytes,
             duration_ms: int, source: str, staff_id: int | None, ip: str | None = None) -> ContentTake:
    """Put a processed recording into the draft as the prompt's recording in `language` (see the module doc)."""
    if source not in SOURCES:
        raise ContentError("bad_source", source=source)
    d = draft(session, staff_id)
    meta = _prompt_meta(session, d, prompt_id)
    if meta is None:
        raise ContentError("unknown_prompt", prompt=prompt_id)
    if language not in languages(session, d):
        raise ContentError("unknown_language", language=language)
    name = audio_name(meta, prompt_id, language)
    sha = store.put(audio)
    take = ContentTake(prompt_id=prompt_id, audio_name=name, language=language, sha256=sha,
                       duration_ms=int(duration_ms), source=source, review=ContentReview.NEEDS_REVIEW,
                       recorded_by_id=staff_id)
    session.add(take)
    session.flush()
    _put_audio(session, d, name, language, take, staff_id)
    staff_service.audit(session, staff_id, "content.take_added", "content_take", take.id, ip=ip,
                        prompt=prompt_id, language=language, source=source, duration_ms=take.duration_ms)
    return take


def _put_audio(session: Session, d: ContentVersion, name: str, lang: str, take: ContentTake,
               staff_id: int | None) -> None:
    _bump_draft(session, d)
    value = json.dumps({"take": take.id, "sha256": take.sha256, "duration_ms": take.duration_ms})
    row = item(session, d, "audio", name, lang)
    if row is None:
        session.add(ContentItem(version_id=d.id, kind="audio", key=name, lang=lang, value=value,
                                review=ContentReview.NEEDS_REVIEW, updated_by_id=staff_id))
    else:
        row.value, row.updated_by_id, row.updated_at = value, staff_id, utcnow()
        row.revision += 1


def get_take(session: Session, take_id: int) -> ContentTake | None:
    return session.get(ContentTake, take_id)


def use_take(session: Session, take_id: int, staff_id: int, ip: str | None = None) -> ContentTake:
    """Make an earlier take of a cell the draft's recording again (e.g. after a worse re-take)."""
    take = session.get(ContentTake, take_id)
    if take is None:
        raise ContentError("content_no_recording")
    _put_audio(session, draft(session, staff_id), take.audio_name, take.language, take, staff_id)
    staff_service.audit(session, staff_id, "content.take_used", "content_take", take.id, ip=ip)
    return take


def prompt_ids(session: Session, version: ContentVersion) -> list[str]:
    return list(session.scalars(sa.select(ContentItem.key).where(ContentItem.version_id == version.id,
                                                                 ContentItem.kind == "prompt")
                                .order_by(ContentItem.position, ContentItem.key)))


def cell(session: Session, prompt_id: str, language: str, version: ContentVersion | None = None) -> Cell:
    v = version or draft(session)
    meta = _prompt_meta(session, v, prompt_id)
    if meta is None:
        raise ContentError("unknown_prompt", prompt=prompt_id)
    text = item(session, v, "text", prompt_id, language)
    name = audio_name(meta, prompt_id, language)
    audio = item(session, v, "audio", name, language)
    take = session.get(ContentTake, json.loads(audio.value)["take"]) if audio else None
    return Cell(prompt_id, language, text.value if text else "", name, take)


def next_needing_recording(session: Session, language: str, after: str | None = None) -> Cell | None:
    """The next prompt (matrix order) whose draft cell in `language` has no recording yet."""
    d = draft(session)
    recorded = set(session.scalars(sa.select(ContentItem.key).where(
        ContentItem.version_id == d.id, ContentItem.kind == "audio", ContentItem.lang == language)))
    metas = [(r.key, json.loads(r.value)) for r in items(session, d, "prompt")]  # matrix order
    ids = [pid for pid, _ in metas]
    if after in ids:
        metas = metas[ids.index(after) + 1:]
    for pid, meta in metas:
        if audio_name(meta, pid, language) not in recorded:
            return cell(session, pid, language, d)
    return None


# -- reading and writing the file tree ---------------------------------------------------------------------------

def repo_root() -> Path:
    """The folder holding the starter set: ivr_scripts/ and audio/."""
    return Path(__file__).resolve().parent.parent.parent


def _yaml(text: str, where: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ContentError("content_bad_file", file=where, reason=str(exc)[:300]) from None
    return data if isinstance(data, dict) else {}


@dataclass
class Tree:
    files: dict[str, str] = field(default_factory=dict)  # "ivr_scripts/..." -> text
    audio: dict[tuple[str, str], Path] = field(default_factory=dict)  # recorded (lang, name) -> file
    manifest: dict[str, Any] = field(default_factory=dict)


def _read_tree(root: Path) -> Tree:
    tree = Tree()
    scripts = root / "ivr_scripts"
    if not (scripts / "voice" / MENU_FILE).is_file():
        raise ContentError("content_no_scripts", folder=str(root))
    for path in sorted(scripts.rglob("*")):
        if path.is_file() and path.suffix in (".yaml", ".yml", ".md", ".txt", ".json"):
            tree.files[path.relative_to(root).as_posix()] = path.read_text(encoding="utf-8")
    manifest_path = root / "audio" / MANIFEST
    if manifest_path.is_file():
        tree.manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        for lang, entries in (tree.manifest.get("prompts") or {}).items():
            for name, entry in entries.items():
                path = root / "audio" / lang / f"{name}.mp3"
                if entry.get("status") == "recorded" and path.is_file():
                    tree.audio[(lang, name)] = path
    return tree


def _load_items(session: Session, version: ContentVersion, tree: Tree, *, store: ContentStore | None,
                staff_id: int | None) -> None:
    """Split a file tree into the version's items (recordings too, when a store is given)."""
    rows: list[dict[str, Any]] = []

    def add(kind: str, key: str, value: str, lang: str = "", position: int = 0) -> None:
        rows.append({"version_id": version.id, "kind": kind, "key": key, "lang": lang, "value": value,
                     "position": position, "review": ContentReview.NEEDS_REVIEW, "updated_by_id": staff_id,
                     "revision": 1})

    order = 0
    # prompts.yaml (the menus' own prompts) first: the matrix follows this order.
    for path, text in sorted(tree.files.items(), key=lambda kv: (kv[0] != f"{VOICE}/prompts.yaml", kv[0])):
        folder, _, name = path.rpartition("/")
        if folder == VOICE and name == MENU_FILE:
            menu = _yaml(text, path)
            nodes = menu.pop("nodes", None) or {}
            add("menu", "", json.dumps(menu, ensure_ascii=False, default=str))
            for i, (nid, spec) in enumerate(nodes.items()):
                add("node", str(nid), json.dumps(spec, ensure_ascii=False, default=str), position=i)
        elif folder == VOICE and name.endswith(".yaml") and isinstance(_yaml(text, path).get("prompts"), dict):
            data = _yaml(text, path)
            prompts = data.pop("prompts")
            add("pfile", name, json.dumps(data, ensure_ascii=False, default=str))
            for pid, spec in prompts.items():
                order += 1
                spec = spec if isinstance(spec, dict) else {}
                meta = {"file": name, "audio": spec.get("audio", str(pid)), "review": spec.get("review", "")}
                add("prompt", str(pid), json.dumps(meta, ensure_ascii=False), position=order)
                for lang, words in (spec.get("text") or {}).items():
                    add("text", str(pid), " ".join(str(words).split()), lang=str(lang), position=order)
        elif folder == SMS and isinstance(_yaml(text, path).get("replies"), dict):
            data = _yaml(text, path)
            replies = data.pop("replies")
            lang = str(data.get("language") or name.rsplit(".", 1)[0])
            add("smsfile", name, json.dumps(data, ensure_ascii=False, default=str), lang=lang)
            for i, (rid, words) in enumerate(replies.items()):
                add("reply", str(rid), " ".join(str(words).split()), lang=lang, position=i)
        else:
            add("file", path, text)
    if rows:
        session.execute(sa.insert(ContentItem), rows)
    if store is not None:
        for (lang, name), file in sorted(tree.audio.items()):
            entry = tree.manifest["prompts"][lang][name]
            take = ContentTake(prompt_id=name, audio_name=name, language=lang, sha256=store.put(file),
                               duration_ms=int(float(entry.get("duration") or 0) * 1000), source="import",
                               review=ContentReview.NEEDS_REVIEW, recorded_by_id=staff_id)
            session.add(take)
            session.flush()
            session.add(ContentItem(version_id=version.id, kind="audio", key=name, lang=lang, review=take.review,
                                    value=json.dumps({"take": take.id, "sha256": take.sha256,
                                                      "duration_ms": take.duration_ms}),
                                    updated_by_id=staff_id))
    session.flush()


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=110)


HEADER = ("# Written by `hotline content export` (content version {version}). The console's content studio\n"
          "# is where these are edited; `hotline content import` reads a folder like this one back.\n")


def render_tree(session: Session, version: ContentVersion) -> dict[str, str]:
    """The version's ivr_scripts/ files, path -> text: what the loaders read."""
    rows = items(session, version)
    by_kind: dict[str, list[ContentItem]] = {}
    for r in rows:
        by_kind.setdefault(r.kind, []).append(r)
    out: dict[str, str] = {}
    head = HEADER.format(version=version.number or f"draft {version.id}")
    for r in by_kind.get("file", []):
        out[r.key] = r.value
    menu: dict[str, Any] = next((json.loads(r.value) for r in by_kind.get("menu", [])), {})
    menu["nodes"] = {r.key: json.loads(r.value) for r in sorted(by_kind.get("node", []), key=lambda r: r.position)}
    out[f"{VOICE}/{MENU_FILE}"] = head + _dump(menu)
    texts: dict[str, dict[str, str]] = {}
    for r in by_kind.get("text", []):
        texts.setdefault(r.key, {})[r.lang] = r.value
    files: dict[str, dict[str, Any]] = {r.key: {**json.loads(r.value), "prompts": {}} for r in by_kind.get("pfile", [])}
    for r in sorted(by_kind.get("prompt", []), key=lambda r: r.position):
        meta = json.loads(r.value)
        spec: dict[str, Any] = {"audio": meta.get("audio", r.key), "review": meta.get("review", "")}
        spec["text"] = texts.get(r.key, {})
        files.setdefault(meta.get("file") or "prompts.yaml", {"prompts": {}})["prompts"][r.key] = spec
    for name, data in files.items():
        out[f"{VOICE}/{name}"] = head + _dump(data)
    replies: dict[str, dict[str, str]] = {}
    for r in sorted(by_kind.get("reply", []), key=lambda r: r.position):
        replies.setdefault(r.lang, {})[r.key] = r.value
    for r in by_kind.get("smsfile", []):
        out[f"{SMS}/{r.key}"] = head + _dump({**json.loads(r.value), "replies": replies.get(r.lang, {})})
    return out


def recorded_audio(session: Session, version: ContentVersion) -> dict[tuple[str, str], dict[str, Any]]:
    """(lang, audio name) -> {"take", "sha256", "duration_ms"} for every recording in the version."""
    return {(r.lang, r.key): json.loads(r.value) for r in items(session, version, "audio")}


def write_tree(session: Session, version: ContentVersion, dest: Path, store: ContentStore,
               starter_audio: Path | None = None) -> list[str]:
    """Export: ivr_scripts/ and audio/ (files + manifest) as this version would have them."""
    dest = Path(dest)
    written = []
    for path, text in render_tree(session, version).items():
        target = dest / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(path)
    starter = Path(starter_audio or repo_root() / "audio")
    old = json.loads((starter / MANIFEST).read_text(encoding="utf-8")) if (starter / MANIFEST).is_file() else {}
    manifest: dict[str, Any] = {"format": old.get("format", {}), "prompts": {}}
    recorded = recorded_audio(session, version)
    takes = {t.id: t for t in session.scalars(sa.select(ContentTake).where(
        ContentTake.id.in_([v["take"] for v in recorded.values()])))} if recorded else {}
    for lang, names in (old.get("prompts") or {}).items():
        for name, entry in names.items():
            if (lang, name) not in recorded and (starter / lang / f"{name}.mp3").is_file():
                _copy(starter / lang / f"{name}.mp3", dest / "audio" / lang / f"{name}.mp3")
                manifest["prompts"].setdefault(lang, {})[name] = entry
    for (lang, name), v in recorded.items():
        _copy(store.path(v["sha256"]), dest / "audio" / lang / f"{name}.mp3")
        take = takes.get(v["take"])
        manifest["prompts"].setdefault(lang, {})[name] = {
            "status": "recorded", "duration": round(v["duration_ms"] / 1000, 2), "sha256": v["sha256"],
            "source": f"content studio ({take.source if take else 'import'})",
            "updated": (take.created_at if take and take.created_at else utcnow()).strftime("%Y-%m-%dT%H:%M:%SZ")}
    manifest["prompts"] = {lang: dict(sorted(v.items())) for lang, v in sorted(manifest["prompts"].items())}
    (dest / "audio").mkdir(parents=True, exist_ok=True)
    (dest / "audio" / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return written


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


# -- validation, publishing, rollback ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Snapshot:
    """What one version serves: the checked voice script (audio names of recorded cells carry their
    sha256), the SMS keywords and replies, and the recordings map. Built once per version per process."""

    number: int  # 0: the starter files (nothing published yet)
    revision: int
    script: Script
    keywords: keywords.KeywordSet
    audio: Mapping[tuple[str, str], str] = field(default_factory=dict)  # (lang, name) -> sha256

    def audio_sha(self, lang: str, name: str) -> str | None:
        return self.audio.get((lang, name))


def place(problem: Problem, texts: Mapping[str, str]) -> FieldProblem:
    """Which editor field a voice loader Problem belongs to."""
    fld = problem.field or ""
    if fld.startswith("prompt '"):
        pid, _, rest = fld[len("prompt '"):].partition("'")
        parts = rest.lstrip(".").split(".")
        if parts[0] == "text" and len(parts) > 1:
            return FieldProblem("text", pid, parts[1], str(problem))
        return FieldProblem("prompt", pid, "", str(problem))
    if problem.node:
        return FieldProblem("node", problem.node, "", str(problem))
    return FieldProblem("menu", "", "", str(problem))


def _place_sms(message: str) -> FieldProblem:
    head = message.split(":", 2)
    if len(head) >= 2 and head[0].endswith(".yaml") and head[1].strip().startswith("replies."):
        lang = head[0][:-len(".yaml")]
        rid = head[1].strip()[len("replies."):]
        return FieldProblem("reply", rid, lang, message)
    return FieldProblem("smsfile", head[0] if head[0].endswith(".yaml") else None, "", message)


def check_tree(files: Mapping[str, str]) -> tuple[list[FieldProblem], Script | None, keywords.KeywordSet | None]:
    """Run the start-up loaders on a rendered tree: the same checks `hotline scripts check` makes."""
    problems: list[FieldProblem] = []
    script = ks = None
    with tempfile.TemporaryDirectory(prefix="hotline-content-") as t:
        root = Path(t)
        for path, text in files.items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_text(text, encoding="utf-8")
        try:
            script = load_script(root / VOICE)
        except ScriptError as exc:
            problems += [place(p, {}) for p in exc.problems]
        try:
            ks = keywords.load(root / SMS)
        except keywords.ScriptError as exc:
            problems.append(_place_sms(str(exc)))
    return problems, script, ks


_checked: dict[str, list[FieldProblem]] = {}
_checked_lock = threading.Lock()


def validate(session: Session, version: ContentVersion) -> list[FieldProblem]:
    """The loaders' problems with the version. Cached by the rendered files' hash: the console asks
    on every page, and reading the rows is cheap where the loaders are not (~0.3 s)."""
    files = render_tree(session, version)
    key = hashlib.sha256(json.dumps(sorted(files.items()), ensure_ascii=False).encode()).hexdigest()
    with _checked_lock:
        hit = _checked.get(key)
    if hit is None:
        hit = check_tree(files)[0]
        with _checked_lock:
            if len(_checked) > 64:
                _checked.clear()
            _checked[key] = hit
    return list(hit)


def snapshot(session: Session, version: ContentVersion) -> Snapshot:
    problems, script, ks = check_tree(render_tree(session, version))
    if problems or script is None or ks is None:
        raise ContentInvalid(problems)
    audio = {k: v["sha256"] for k, v in recorded_audio(session, version).items()}
    return Snapshot(version.number or 0, version.revision, with_recordings(script, audio), ks, audio)


def with_recordings(script: Script, audio: Mapping[tuple[str, str], str]) -> Script:
    """Recorded cells play `<name>.<sha256>`: a new recording is a new URL, so no cache holds an old one."""
    if not audio:
        return script
    prompts = {}
    for pid, p in script.prompts.items():
        texts = {lang: replace(t, audio=f"{t.audio}.{audio[(lang, t.audio)]}") if (lang, t.audio) in audio else t
                 for lang, t in p.texts.items()}
        prompts[pid] = replace(p, texts=texts)
    return replace(script, prompts=prompts)


def publish(session: Session, staff_id: int | None, *, revision: int | None = None, note: str = "",
            ip: str | None = None) -> ContentVersion:
    """Publish the draft, in the caller's transaction: checked by the start-up loaders first (an
    invalid draft raises ContentInvalid and nothing changes). `revision`: the draft revision the
    publisher reviewed; a change since then raises ContentError("content_draft_changed")."""
    d = find_draft(session)
    if d is None:
        raise ContentError("content_nothing_to_publish")
    # Lock the draft row first (edits lock it too): nothing can change between the check and the switch.
    q = sa.update(ContentVersion).where(ContentVersion.id == d.id, ContentVersion.status == ContentStatus.DRAFT)
    if revision is not None:
        q = q.where(ContentVersion.revision == revision)
    if session.execute(q.values(note=note[:255])).rowcount != 1:  # type: ignore[attr-defined]
        raise ContentError("content_draft_changed")
    session.refresh(d)
    problems = validate(session, d)
    if problems:
        raise ContentInvalid(problems)
    number = latest_number(session) + 1
    before = latest(session)
    changes = len(changed_keys(session, before, d)) if before else None
    d.status, d.number, d.published_at, d.published_by_id = ContentStatus.PUBLISHED, number, utcnow(), staff_id
    session.flush()  # the unique number: a concurrent publish or rollback fails here, not silently
    staff_service.audit(session, staff_id, "content.publish", "content_version", number, ip=ip, draft=d.id,
                        based_on=d.based_on, changes=changes, note=note[:255] or None)
    return d


def rollback(session: Session, to_number: int, staff_id: int | None, ip: str | None = None) -> ContentVersion:
    """Publish a copy of published version `to_number` as the next number (the draft is left alone)."""
    old = session.scalar(sa.select(ContentVersion).where(ContentVersion.number == to_number,
                                                         ContentVersion.status == ContentStatus.PUBLISHED))
    if old is None:
        raise ContentError("content_no_version", number=to_number)
    number = latest_number(session) + 1
    new = ContentVersion(status=ContentStatus.PUBLISHED, number=number, based_on=to_number, revision=1,
                         note=f"rollback to version {to_number}", created_by_id=staff_id, published_at=utcnow(),
                         published_by_id=staff_id)
    session.add(new)
    session.flush()
    _copy_items(session, old.id, new.id)
    staff_service.audit(session, staff_id, "content.rollback", "content_version", number, ip=ip,
                        restored=to_number)
    return new


def import_tree(session: Session, root: Path, store: ContentStore, staff_id: int | None = None, *,
                publish_it: bool = True, note: str = "") -> ContentVersion:
    """`hotline content import DIR`: replace the draft with DIR's ivr_scripts/ and audio/, then
    publish it (checked like any publish) unless `publish_it` is False."""
    tree = _read_tree(Path(root))
    d = find_draft(session)
    if d is not None:
        session.delete(d)
        session.flush()
    base = latest(session)
    d = ContentVersion(status=ContentStatus.DRAFT, based_on=base.number if base else None, created_by_id=staff_id)
    session.add(d)
    session.flush()
    _load_items(session, d, tree, store=store, staff_id=staff_id)
    staff_service.audit(session, staff_id, "content.import", "content_version", d.id, folder=str(root)[:200])
    return publish(session, staff_id, note=note or f"imported from {root}") if publish_it else d


# -- translators: CSV round trip ------------------------------------------------------------------------------

CSV_FIELDS = ("kind", "key", "lang", "text", "review", "revision")


def export_csv(session: Session, version: ContentVersion) -> str:
    """Every text and SMS reply of the version, one row each (UTF-8 with BOM: spreadsheets read Khmer)."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(CSV_FIELDS)
    for r in items(session, version):
        if r.kind in TEXT_KINDS:
            w.writerow((r.kind, r.key, r.lang, r.value, str(r.review), r.revision))
    return "\ufeff" + out.getvalue()


@dataclass
class CsvReport:
    changed: list[tuple[str, str, str]] = field(default_factory=list)
    unchanged: int = 0
    refused: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)
    conflicts: list[tuple[str, str, str]] = field(default_factory=list)


def import_csv(session: Session, data: str, staff_id: int | None, ip: str | None = None) -> CsvReport:
    """Translators' CSV back into the draft: changed texts become "needs review". A row whose
    `revision` is older than the draft's (someone edited it meanwhile) is a conflict, not applied."""
    report = CsvReport()
    d = draft(session, staff_id)
    reader = csv.DictReader(io.StringIO(data.lstrip("\ufeff")))
    if not reader.fieldnames or not {"kind", "key", "lang", "text"} <= set(reader.fieldnames):
        raise ContentError("content_csv_columns")
    for line, row in enumerate(reader, start=2):
        kind, key, lang = ((row.get(c) or "").strip() for c in ("kind", "key", "lang"))
        if kind not in TEXT_KINDS:
            report.refused.append((line, f"kind must be one of {', '.join(TEXT_KINDS)}"))
            continue
        current = item(session, d, kind, key, lang)
        if current is None:
            report.refused.append((line, f"no {kind} {key!r} in {lang!r}"))
            continue
        text = " ".join((row.get("text") or "").split())
        if text == current.value:
            report.unchanged += 1
            continue
        rev = row.get("revision") or ""
        try:
            edit(session, kind=kind, key=key, lang=lang, value=text,
                 revision=int(rev) if rev.isdigit() else current.revision, staff_id=staff_id, ip=ip)
        except Conflict:
            report.conflicts.append((kind, key, lang))
            continue
        report.changed.append((kind, key, lang))
    return report


# -- the matrix --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MatrixCell:
    kind: str  # text (a voice prompt) or reply (an SMS reply)
    key: str
    lang: str
    text: str
    revision: int
    review: str
    reviewer: str | None
    audio: str  # recorded | placeholder | missing | "" (SMS)
    duration_ms: int | None
    take_id: int | None
    take_review: str | None
    changed_at: datetime | None
    changed_by: str | None
    sms_parts: int | None
    audio_name: str = ""

    @property
    def unreviewed(self) -> bool:
        """Callers would hear or read something no native speaker has checked."""
        return self.review != ContentReview.REVIEWED or (self.audio == "recorded" and
                                                         self.take_review != ContentReview.REVIEWED)


def sms_part_count(text: str) -> tuple[int, str]:
    """(parts, encoding) as the loader counts them."""
    return sms_segments(text), sms_units(text)[0]


def matrix(session: Session, version: ContentVersion, starter_audio: Path | None = None) -> list[MatrixCell]:
    """Every voice prompt and SMS reply in every language: words, recording state, review, last change."""
    audio_dir = Path(starter_audio or repo_root() / "audio")
    manifest = {}
    if (audio_dir / MANIFEST).is_file():
        manifest = json.loads((audio_dir / MANIFEST).read_text(encoding="utf-8")).get("prompts", {})
    rows = items(session, version)
    metas = {r.key: json.loads(r.value) for r in rows if r.kind == "prompt"}
    positions = {r.key: r.position for r in rows if r.kind == "prompt"}
    recorded = {(r.lang, r.key): json.loads(r.value) for r in rows if r.kind == "audio"}
    takes = {t.id: t for t in session.scalars(sa.select(ContentTake).where(
        ContentTake.id.in_([v["take"] for v in recorded.values()])))} if recorded else {}
    names = {s.id: s.name or s.email for s in session.scalars(sa.select(StaffUser))}
    out = []
    for r in rows:
        if r.kind not in TEXT_KINDS:
            continue
        audio, duration, take, name = "", None, None, ""
        if r.kind == "text":
            name = audio_name(metas.get(r.key, {}), r.key, r.lang)
            rec = recorded.get((r.lang, name))
            if rec:
                audio, duration, take = "recorded", rec["duration_ms"], takes.get(rec["take"])
            elif (audio_dir / r.lang / f"{name}.mp3").is_file():
                entry = manifest.get(r.lang, {}).get(name, {})
                audio = "recorded" if entry.get("status") == "recorded" else "placeholder"
                duration = int(float(entry.get("duration") or 0) * 1000) or None
            else:
                audio = "missing"
        out.append(MatrixCell(r.kind, r.key, r.lang, r.value, r.revision, str(r.review),
                              names.get(r.reviewed_by_id) if r.reviewed_by_id else None, audio, duration,
                              take.id if take else None, str(take.review) if take else None, r.updated_at,
                              names.get(r.updated_by_id) if r.updated_by_id else None,
                              sms_segments(r.value) if r.kind == "reply" else None, name))
    out.sort(key=lambda c: (c.kind != "text", positions.get(c.key, 0), c.key, c.lang))
    return out


def versions(session: Session, limit: int = 50) -> list[ContentVersion]:
    return list(session.scalars(sa.select(ContentVersion).order_by(ContentVersion.number.desc().nulls_first(),
                                                                   ContentVersion.id.desc()).limit(limit)))


def changed_keys(session: Session, a: ContentVersion, b: ContentVersion) -> list[tuple[str, str, str]]:
    """(kind, key, lang) whose value differs between two versions: what a publish would change."""
    def values(v: ContentVersion) -> dict[tuple[str, str, str], str]:
        return {(r.kind, r.key, r.lang): r.value for r in items(session, v)}
    va, vb = values(a), values(b)
    return sorted(k for k in va.keys() | vb.keys() if va.get(k) != vb.get(k))


# -- what every process serves ---------------------------------------------------------------------------------

class ContentLive:
    """Per process: the published Snapshot, refreshed when the published number moves.

    `published()` is called on every voice step and SMS: it costs a clock read, and at most once
    every `interval` seconds a Redis GET (REDIS_KEY; one SELECT when the key is missing or Redis is
    away). A new number is loaded once, in a background thread (the loaders take 0.3-1.5 s); until
    it is ready every request keeps the previous snapshot, never a half-built one. A version that
    fails to load is logged and not retried until the next number (or `refresh()`).
    """

    def __init__(self, starter: Snapshot, session_factory: Callable[[], Session],
                 redis: Callable[[], Any] | None = None, *, interval: float = 2.0,
                 clock: Callable[[], float] = time.monotonic):
        self.current = starter
        self.starter = starter
        self.session_factory = session_factory
        self.redis = redis
        self.interval = interval
        self.clock = clock
        self._checked = float("-inf")
        self._loading = threading.Lock()
        self._draft: Snapshot | None = None
        self._draft_key: tuple[int, int] | None = None
        self.failed: int | None = None  # a published number that did not load (logged; retried)

    def published(self, *, wait: bool = False) -> Snapshot:
        now = self.clock()
        if now - self._checked < self.interval:
            return self.current
        self._checked = now
        try:
            number = self._number()
        except Exception:  # noqa: BLE001 - a content check must never break a call
            log.exception("content version check failed; serving version %s", self.current.number)
            return self.current
        # Numbers only grow (a rollback publishes a new one): a smaller one is a stale key, ignored.
        if number > self.current.number and number != self.failed and self._loading.acquire(blocking=False):
            if wait:
                self._load_and_release(number)
            else:
                # A load takes 0.3-1.5 s: no caller waits for it; this request and the next ones
                # keep the previous version until the new one is ready.
                threading.Thread(target=self._load_and_release, args=(number,), daemon=True,
                                 name=f"content-load-{number}").start()
        return self.current

    def _load_and_release(self, number: int) -> None:
        try:
            self._load(number)
        finally:
            self._loading.release()

    def _number(self) -> int:
        if self.redis is not None:
            try:
                raw = self.redis().get(REDIS_KEY)
                if raw is not None:
                    return int(raw)
            except Exception:  # noqa: BLE001 - Redis away: the database answers (still once per interval)
                log.warning("content: Redis unavailable for the version check; asking the database")
                return self._number_from_db(announce=False)
        return self._number_from_db(announce=self.redis is not None)

    def _number_from_db(self, *, announce: bool) -> int:
        with self.session_factory() as s:
            number = latest_number(s)
        if announce and self.redis is not None:
            # NX: a publisher's SET (after its commit) always wins over what a reader saw before it.
            try:
                self.redis().set(REDIS_KEY, number, ex=REDIS_TTL, nx=True)
            except Exception:  # noqa: BLE001
                log.warning("content: could not cache version %s in Redis", number)
        return number

    def _load(self, number: int) -> None:
        try:
            with self.session_factory() as s:
                v = s.scalar(sa.select(ContentVersion).where(ContentVersion.number == number))
                if v is None:
                    return
                self.current = snapshot(s, v)
                self.failed = None
            log.info("content version %s now served", number)
        except Exception:  # noqa: BLE001 - keep serving what worked; say so loudly
            self.failed = number
            log.exception("content version %s could not be loaded; still serving version %s",
                          number, self.current.number)

    def refresh(self) -> Snapshot:
        """Check now and load a new version before returning (after this process published, in tests)."""
        self._checked = float("-inf")
        self.failed = None
        with self._loading:  # a background load under way: wait for it
            pass
        return self.published(wait=True)

    def draft(self, session: Session) -> Snapshot:
        """The draft as it would play (the simulator's draft toggle); cached by (draft id, revision).
        An invalid draft plays the published version (the studio shows its problems)."""
        d = find_draft(session)
        if d is None:
            return self.published()
        key = (d.id, d.revision)
        if self._draft is not None and self._draft_key == key:
            return self._draft
        try:
            snap = replace(snapshot(session, d), number=-d.id)
        except ContentInvalid:
            return self.published()
        self._draft, self._draft_key = snap, key
        return snap


def announce_number(redis: Callable[[], Any] | None, number: int) -> None:
    """After a publish or rollback is COMMITTED: tell every process (they read it within `interval`)."""
    if redis is None:
        return
    try:
        redis().set(REDIS_KEY, number, ex=REDIS_TTL)
    except Exception:  # noqa: BLE001 - the key expires or is missing: processes ask the database
        log.warning("content: could not announce version %s in Redis; processes will read the database", number)


def iter_problems(problems: Iterable[FieldProblem], kind: str, key: str, lang: str = "") -> Iterator[str]:
    for p in problems:
        if p.kind == kind and p.key == key and p.lang == lang:
            yield p.message


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
