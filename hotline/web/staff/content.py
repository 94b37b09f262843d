"""Console: the content studio (`/staff/content`, the `content` role and admins).

The prompt x language matrix (voice prompts, outbound prompts, SMS replies), editing words and
menu nodes in the draft, review, publish, rollback, and the translators' CSV. Every change goes
through hotline.services.content; a publish is checked by the same loaders as start-up, and the
problems are shown next to the field they belong to. Recording lives in its own page
(`/staff/content/<prompt>/<lang>/record`, the recording side's module): the matrix links to it.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Response, abort, flash, redirect, render_template, request, send_file, url_for

from hotline.models import ContentReview, Role
from hotline.services import content
from hotline.web import resources, session
from hotline.web.staff.base import _lang, client_ip, me, staff_required
from hotline.web.staff.base import bp as staff_bp
from hotline.web.staff.i18n import t

CONTENT_ROLES = (Role.ADMIN, Role.CONTENT)
FILTERS = ("all", "needs_recording", "placeholder", "unreviewed", "problems")
MAX_CSV = 2 * 1024 * 1024


def _store() -> content.ContentStore:
    return content.store_for(resources().settings)


def _draft() -> Any:
    return content.draft(session(), me().id)


def _problems() -> list[content.FieldProblem]:
    return content.validate(session(), _draft())


def _record_url(prompt_id: str, lang: str) -> str:
    """The recording side's page; a plain path so the matrix does not depend on its endpoint name."""
    return f"{url_for('staff.content_home')}/{prompt_id}/{lang}/record"


def _conflict_text(exc: content.Conflict) -> str:
    return t("content_conflict", _lang(), by=exc.by or "?")


@staff_bp.get("/content")
@staff_required(roles=CONTENT_ROLES)
def content_home() -> Any:
    """The matrix: every prompt and reply in every language, filtered ("what still needs Khmer")."""
    s = session()
    d = _draft()
    langs = content.languages(s, d)
    lang = request.args.get("lang", "")
    shown = request.args.get("show", "all")
    kind = request.args.get("kind", "")
    cells = content.matrix(s, d)
    problems = content.validate(s, d)
    bad = {(p.kind, p.key, p.lang) for p in problems}
    rows: dict[tuple[str, str], dict[str, content.MatrixCell]] = {}
    for c in cells:
        rows.setdefault((c.kind, c.key), {})[c.lang] = c

    def keep(c: content.MatrixCell) -> bool:
        if shown == "needs_recording":
            return c.kind == "text" and c.audio != "recorded"
        if shown == "placeholder":
            return c.kind == "text" and c.audio == "placeholder"
        if shown == "unreviewed":
            return c.unreviewed
        if shown == "problems":
            return (c.kind, c.key, c.lang) in bad
        return True

    visible = []
    for (k, key), by_lang in rows.items():
        if kind and k != kind:
            continue
        check = [by_lang[lg] for lg in ([lang] if lang else langs) if lg in by_lang]
        if any(keep(c) for c in check):
            visible.append((k, key, by_lang))
    published = content.latest(s)
    files = {r.key: json.loads(r.value).get("file", "") for r in content.items(s, d, "prompt")}
    # What callers hear now without a native speaker's check (the published version, not the draft).
    live_unreviewed = sum(c.unreviewed for c in content.matrix(s, published)) if published else None
    s.commit()  # the draft, when this visit started it
    return render_template("staff/content.html", rows=visible, langs=langs, filter_lang=lang, shown=shown, kind=kind,
                           files=files, states=list(ContentReview), live_unreviewed=live_unreviewed,
                           filters=FILTERS, draft=d, published=published, problems=problems, bad=bad,
                           record_url=_record_url, total=len(rows),
                           changed=content.changed_keys(s, published, d) if published else None)


@staff_bp.route("/content/edit/<kind>/<key>/<lang>", methods=["GET", "POST"])
@staff_required(roles=CONTENT_ROLES)
def content_edit(kind: str, key: str, lang: str) -> Any:
    """Edit one text or SMS reply in the draft (optimistic: the form carries the revision it showed)."""
    if kind not in content.TEXT_KINDS:
        abort(404)
    s, d = session(), _draft()
    row = content.item(s, d, kind, key, lang)
    if row is None:
        abort(404)
    error = conflict = None
    value = row.value
    if request.method == "POST":
        value = " ".join(request.form.get("value", "").split())
        rev = request.form.get("revision", "")
        if not value:
            error = t("content_empty", _lang())
        else:
            try:
                content.edit(s, kind=kind, key=key, lang=lang, value=value,
                             revision=int(rev) if rev.isdigit() else None, staff_id=me().id, ip=client_ip())
                s.commit()
            except content.Conflict as exc:
                s.rollback()
                conflict = exc
                error = _conflict_text(exc)
            except content.ContentError as exc:
                s.rollback()
                error = t(exc.key, _lang())
            else:
                messages = list(content.iter_problems(content.validate(s, content.draft(s)), kind, key, lang))
                if not messages:
                    flash(t("content_saved", _lang()), "ok")
                    return redirect(url_for("staff.content_home", lang=lang) + f"#{kind}-{key}")
                row = content.item(s, content.draft(s), kind, key, lang)
        row = content.item(s, content.draft(s), kind, key, lang) or row
    problems = list(content.iter_problems(content.validate(s, content.draft(s)), kind, key, lang))
    parts, encoding = content.sms_part_count(value)
    status = 409 if conflict else (400 if error or (problems and request.method == "POST") else 200)
    s.commit()
    from hotline.menus.textnorm import GSM_BASIC, GSM_EXTENSION
    from hotline.web.content_live import snapshot

    return render_template("staff/content_edit.html", kind=kind, key=key, item_lang=lang, row=row, value=value,
                           error=error, conflict=conflict, problems=problems, parts=parts,
                           encoding="GSM-7" if encoding == "gsm7" else "UCS-2", record_url=_record_url,
                           gsm_basic="".join(sorted(GSM_BASIC - {"\x1b"})), gsm_ext="".join(sorted(GSM_EXTENSION)),
                           max_parts=snapshot().keywords.max_reply_parts), status


@staff_bp.post("/content/review")
@staff_required(roles=CONTENT_ROLES)
def content_review() -> Any:
    """Mark words or a recording draft / needs review / reviewed (by me); a recording's key is its prompt."""
    form = request.form
    kind, key, lang = form.get("kind", ""), form.get("key", ""), form.get("lang", "")
    try:
        state = ContentReview(form.get("state", ""))
        if kind == "audio":
            key = content.cell(session(), key, lang).audio_name
        content.set_review(session(), kind=kind, key=key, lang=lang, state=state, staff_id=me().id, ip=client_ip())
    except (ValueError, content.ContentError):
        session().rollback()
        abort(400)
    session().commit()
    anchor = f"#{'text' if kind == 'audio' else kind}-{form.get('key', '')}"
    return redirect(url_for("staff.content_home", lang=lang or None) + anchor)


# -- the menu tree -----------------------------------------------------------------------------------

def _node_form(spec: dict[str, Any]) -> dict[str, str]:
    keys = spec.get("keys") or {}
    lines = []
    for k, target in keys.items():
        lines.append(f"{k} = {target['goto'] if isinstance(target, dict) else target}"
                     + (f" ({target['language']})" if isinstance(target, dict) and target.get("language") else ""))
    out = {"keys": "\n".join(lines), "timeout": str(spec.get("timeout", ""))}
    for field in ("no_input", "wrong_key"):
        ex = spec.get(field) or {}
        out[f"{field}_retries"] = str(ex.get("retries", ""))
        out[f"{field}_then"] = str(ex.get("then", ""))
    return out


def _parse_node_form(spec: dict[str, Any], form: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """The form back into the node's YAML shape; errors here are about the form's own syntax."""
    errors: dict[str, str] = {}
    new = dict(spec)
    keys: dict[str, Any] = {}
    for n, line in enumerate(form.get("keys", "").splitlines(), start=1):
        if not line.strip():
            continue
        k, sep, rest = line.partition("=")
        target, _, language = rest.strip().partition("(")
        if not sep or not k.strip() or not target.strip():
            errors["keys"] = t("content_keys_syntax", _lang(), line=n)
            continue
        value: Any = target.strip()
        if language.strip(" )"):
            value = {"goto": target.strip(), "language": language.strip(" )")}
        keys[k.strip()] = value
    if keys or "keys" in spec:
        new["keys"] = keys
    timeout = form.get("timeout", "").strip()
    if timeout:
        new["timeout"] = int(timeout) if timeout.isdigit() else timeout
    elif "timeout" in new:
        del new["timeout"]
    for field in ("no_input", "wrong_key"):
        retries, then = form.get(f"{field}_retries", "").strip(), form.get(f"{field}_then", "").strip()
        if retries or then:
            ex = dict(spec.get(field) or {})
            ex["retries"] = int(retries) if retries.isdigit() else retries
            ex["then"] = then
            new[field] = ex
        else:
            new.pop(field, None)
    return new, errors


@staff_bp.route("/content/menu", methods=["GET"])
@staff_required(roles=CONTENT_ROLES)
def content_menu() -> Any:
    s, d = session(), _draft()
    nodes = [(r.key, json.loads(r.value)) for r in content.items(s, d, "node")]
    problems = content.validate(s, d)
    s.commit()
    return render_template("staff/content_menu.html", nodes=nodes, problems=problems)


@staff_bp.route("/content/menu/<node_id>", methods=["GET", "POST"])
@staff_required(roles=CONTENT_ROLES)
def content_node(node_id: str) -> Any:
    """A menu node's keys, targets and timeouts; checked by the loader at once, shown by the field."""
    s, d = session(), _draft()
    row = content.item(s, d, "node", node_id)
    if row is None:
        abort(404)
    spec = json.loads(row.value)
    form = _node_form(spec)
    errors: dict[str, str] = {}
    error = None
    status = 200
    if request.method == "POST":
        form = {k: request.form.get(k, "") for k in form}
        new, errors = _parse_node_form(spec, request.form)
        rev = request.form.get("revision", "")
        if not errors:
            try:
                content.edit(s, kind="node", key=node_id, value=json.dumps(new, ensure_ascii=False),
                             revision=int(rev) if rev.isdigit() else None, staff_id=me().id, ip=client_ip())
                s.commit()
            except content.Conflict as exc:
                s.rollback()
                error, status = _conflict_text(exc), 409
            else:
                row = content.item(s, content.draft(s), "node", node_id) or row
                if not list(content.iter_problems(content.validate(s, content.draft(s)), "node", node_id)):
                    flash(t("content_saved", _lang()), "ok")
                    return redirect(url_for("staff.content_menu") + f"#node-{node_id}")
        else:
            status = 400
    problems = list(content.iter_problems(content.validate(s, content.draft(s)), "node", node_id))
    if problems and status == 200 and request.method == "POST":
        status = 400
    s.commit()
    return render_template("staff/content_node.html", node_id=node_id, row=row, spec=spec, form=form, errors=errors,
                           error=error, problems=problems), status


# -- versions: publish and rollback ------------------------------------------------------------------

@staff_bp.get("/content/versions")
@staff_required(roles=CONTENT_ROLES)
def content_versions() -> Any:
    s = session()
    d = _draft()
    problems = content.validate(s, d)
    published = content.latest(s)
    s.commit()
    return render_template("staff/content_versions.html", versions=content.versions(s), draft=d, problems=problems,
                           published=published,
                           changed=content.changed_keys(s, published, d) if published else None)


@staff_bp.post("/content/publish")
@staff_required(roles=CONTENT_ROLES)
def content_publish() -> Any:
    """Publish the draft in one transaction; an invalid draft is refused and nothing changes."""
    s = session()
    rev = request.form.get("revision", "")
    try:
        v = content.publish(s, me().id, revision=int(rev) if rev.isdigit() else None,
                            note=request.form.get("note", "").strip(), ip=client_ip())
        s.commit()
    except content.ContentInvalid as exc:
        s.rollback()
        flash(t("content_invalid", _lang(), count=len(exc.problems)), "error")
        return redirect(url_for("staff.content_home", show="problems"))
    except content.ContentError as exc:
        s.rollback()
        flash(t(exc.key, _lang()), "error")
        return redirect(url_for("staff.content_versions"))
    from hotline.web.content_live import announce

    announce(v.number or 0)
    flash(t("content_published", _lang(), number=v.number), "ok")
    return redirect(url_for("staff.content_versions"))


@staff_bp.post("/content/rollback/<int:number>")
@staff_required(roles=CONTENT_ROLES)
def content_rollback(number: int) -> Any:
    s = session()
    try:
        v = content.rollback(s, number, me().id, ip=client_ip())
        s.commit()
    except content.ContentError as exc:
        s.rollback()
        flash(t(exc.key, _lang()), "error")
        return redirect(url_for("staff.content_versions"))
    from hotline.web.content_live import announce

    announce(v.number or 0)
    flash(t("content_rolled_back", _lang(), number=number, new=v.number), "ok")
    return redirect(url_for("staff.content_versions"))


# -- recordings and translators ------------------------------------------------------------------------

@staff_bp.get("/content/takes/<int:take_id>.mp3")
@staff_required(roles=CONTENT_ROLES)
def content_take(take_id: int) -> Any:
    """A recording, for staff only (drafts and unreviewed takes included)."""
    take = content.get_take(session(), take_id)
    store = _store()
    if take is None or not store.exists(take.sha256):
        abort(404)
    return send_file(store.path(take.sha256), mimetype="audio/mpeg", max_age=0, conditional=True)


@staff_bp.get("/content/texts.csv")
@staff_required(roles=CONTENT_ROLES)
def content_export_csv() -> Any:
    body = content.export_csv(session(), _draft())
    session().commit()
    return Response(body, mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": "attachment; filename=hotline-texts.csv"})


@staff_bp.post("/content/texts.csv")
@staff_required(roles=CONTENT_ROLES)
def content_import_csv() -> Any:
    upload = request.files.get("file")
    raw = upload.read(MAX_CSV + 1) if upload else b""
    if not raw or len(raw) > MAX_CSV:
        flash(t("content_csv_bad", _lang()), "error")
        return redirect(url_for("staff.content_home"))
    s = session()
    try:
        report = content.import_csv(s, raw.decode("utf-8-sig", errors="replace"), me().id, ip=client_ip())
        s.commit()
    except content.ContentError as exc:
        s.rollback()
        flash(t(exc.key, _lang()), "error")
        return redirect(url_for("staff.content_home"))
    flash(t("content_csv_done", _lang(), changed=len(report.changed), unchanged=report.unchanged,
            refused=len(report.refused), conflicts=len(report.conflicts)),
          "ok" if not (report.refused or report.conflicts) else "error")
    return redirect(url_for("staff.content_home", show="unreviewed"))
