"""Dependencies point one way, web -> services -> models: no web module imports SQLAlchemy or the
outbox, nor queries or changes rows through the request's session itself (it passes the session
to a hotline.services function). A type-only import under `if TYPE_CHECKING:` is allowed."""

from __future__ import annotations

import ast
from pathlib import Path

WEB = Path(__file__).resolve().parent.parent / "hotline" / "web"
SESSION_METHODS = {"get", "scalar", "scalars", "execute", "add", "add_all", "delete", "query", "merge"}
FORBIDDEN_MODULES = ("sqlalchemy", "hotline.background.outbox", "hotline.background.queues")


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _is_session_call(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "session"


def _session_names(func: ast.AST) -> set[str]:
    """Local names bound to `session()`, also in tuple assignments (`s, now = session(), utcnow()`)."""
    names: set[str] = set()
    for node in ast.walk(func):
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            pairs = (zip(target.elts, node.value.elts, strict=False)
                     if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple) else [(target, node.value)])
            names.update(t.id for t, v in pairs if isinstance(t, ast.Name) and _is_session_call(v))
    return names


def problems(source: str, name: str = "<module>") -> list[str]:
    tree = ast.parse(source)
    typing_only = _type_checking_lines(tree)
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom) and node.lineno not in typing_only:
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if isinstance(node, ast.ImportFrom) and node.module == "hotline.background":
                modules += [f"hotline.background.{a.name}" for a in node.names]
            for module in modules:
                if module.startswith(FORBIDDEN_MODULES):
                    found.append(f"{name}:{node.lineno} imports {module}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_job":
            found.append(f"{name}:{node.lineno} adds an outbox job itself")
    for func in ast.walk(tree):
        if not isinstance(func, ast.FunctionDef):
            continue
        local = _session_names(func)
        for node in ast.walk(func):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in SESSION_METHODS:
                receiver = node.func.value
                if _is_session_call(receiver) or (isinstance(receiver, ast.Name) and receiver.id in local):
                    found.append(f"{name}:{node.lineno} {ast.unparse(node.func)}(...) on the request's session")
    return found


def test_no_web_module_imports_sqlalchemy_or_the_outbox_or_queries_the_session_itself() -> None:
    files = sorted(WEB.rglob("*.py"))
    assert len(files) >= 15 and WEB / "staff" / "cases.py" in files
    found = [p for path in files for p in problems(path.read_text(encoding="utf-8"), str(path.relative_to(WEB)))]
    assert found == []


def test_the_layer_check_catches_each_kind_of_shortcut() -> None:
    bad = '''
import sqlalchemy as sa
from sqlalchemy.orm import Session
from hotline.background import outbox
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    from sqlalchemy.orm import Query

def view():
    case = session().get(Case, 1)
    s, now = session(), utcnow()
    s.scalars(sa.select(Case))
    outbox.add_job(s, "x", {})
    other = {}
    other.get("fine")
'''
    found = problems(bad)
    assert [f.split(" ", 1)[1] for f in found] == [
        "imports sqlalchemy", "imports sqlalchemy.orm", "imports hotline.background.outbox",
        "adds an outbox job itself", "session().get(...) on the request's session",
        "s.scalars(...) on the request's session"]
