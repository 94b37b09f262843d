"""Who may claim, reassign, close and reopen a case, by role, through the console's own routes.

The rules live in hotline.services.cases; a page that offers a button wrongly, or a forged form,
still meets them (answered 403, audited as "case.refused").
"""

from __future__ import annotations

import functools

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from test_console import PASSWORD, audit_actions, login, make_case, post

from hotline.db import utcnow
from hotline.models import AuditEvent, Case, CaseStatus, Role, StaffUser
from hotline.services import cases

STAFF = {"admin": "admin", "lawyer": "lawyer", "lawyer2": "lawyer", "op": "operator", "op2": "operator"}


@functools.cache
def _hash() -> str:
    return PasswordHasher().hash(PASSWORD)  # one argon2 hash for every account here: the suite stays fast


@pytest.fixture
def people(db) -> dict[str, int]:
    users = {name: StaffUser(email=f"{name}@example.org", name=name, role=Role(role), password_hash=_hash())
             for name, role in STAFF.items()}
    db.add_all(users.values())
    db.commit()
    return {name: u.id for name, u in users.items()}


def arrange(db, people: dict[str, int], status: str, holder: str | None) -> Case:
    case = make_case(db)
    case.status = CaseStatus(status)
    case.claimed_by_id = people[holder] if holder else None
    case.closed_at = utcnow() if status == "closed" else None
    db.commit()
    return case


# (who acts, who holds the case, its status, the status asked for, allowed?)
STATUS_RULES = [
    # The attack from the penetration test: release a lawyer's case, then claim it; or close it.
    ("op", "lawyer", "claimed", "new", False),
    ("op", "lawyer", "in_progress", "closed", False),
    ("op", "lawyer", "claimed", "in_progress", False),
    ("op", "op2", "claimed", "referred", False),
    # An operator works on what nobody holds or they hold, and may hand their own back.
    ("op", None, "new", "in_progress", True),
    ("op", "op", "claimed", "in_progress", True),
    ("op", "op", "in_progress", "new", True),
    ("op", "op", "in_progress", "closed", False),  # closing is for lawyers and admins
    # Lawyers and admins close and move any open case.
    ("lawyer", "lawyer2", "in_progress", "closed", True),
    ("lawyer", "op", "claimed", "new", True),
    ("admin", "lawyer", "claimed", "closed", True),
    # Reopening a closed case: an admin, or whoever held it.
    ("lawyer", "lawyer", "closed", "in_progress", True),
    ("lawyer2", "lawyer", "closed", "in_progress", False),
    ("op", "lawyer", "closed", "new", False),
    ("admin", "lawyer", "closed", "new", True),
]


@pytest.mark.parametrize(("actor", "holder", "status", "to", "allowed"), STATUS_RULES)
def test_status_changes_follow_the_role_rules(client, db, people, actor, holder, status, to, allowed) -> None:
    case = arrange(db, people, status, holder)
    login(client, f"{actor}@example.org")
    resp = post(client, f"/staff/cases/{case.id}/status", {"status": to})
    db.expire_all()
    after = db.get(Case, case.id)
    if allowed:
        assert resp.status_code == 302 and after.status == to
        assert audit_actions(db, "case")[-1] == "case.status"
    else:
        assert resp.status_code == 403
        assert (after.status, after.claimed_by_id) == (status, people[holder] if holder else None)
        refused = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "case.refused")).one()
        assert refused.staff_id == people[actor] and refused.object_id == str(case.id)


def test_an_operator_cannot_take_over_a_lawyers_case_by_release_and_claim(client, db, people) -> None:
    case = arrange(db, people, "claimed", "lawyer")
    login(client, "op@example.org")
    assert post(client, f"/staff/cases/{case.id}/status", {"status": "new"}).status_code == 403
    post(client, f"/staff/cases/{case.id}/claim")
    db.expire_all()
    assert db.get(Case, case.id).claimed_by_id == people["lawyer"]
    # The page offers neither the status change nor assignment to them.
    html = client.get(f"/staff/cases/{case.id}").get_data(as_text=True)
    assert 'name="status"' not in html and 'name="staff_id"' not in html


@pytest.mark.parametrize(("actor", "allowed"), [("op", False), ("lawyer2", True), ("admin", True)])
def test_reassigning_is_for_lawyers_and_admins(client, db, people, actor, allowed) -> None:
    case = arrange(db, people, "in_progress", "lawyer")
    login(client, f"{actor}@example.org")
    resp = post(client, f"/staff/cases/{case.id}/assign", {"staff_id": str(people["lawyer2"])})
    db.expire_all()
    assert resp.status_code == (302 if allowed else 403)
    assert db.get(Case, case.id).claimed_by_id == people["lawyer2" if allowed else "lawyer"]


def test_the_service_refuses_whatever_the_page_offered(db, people) -> None:
    case = arrange(db, people, "claimed", "lawyer")
    with pytest.raises(cases.CaseForbidden):
        cases.set_status(db, case, "closed", people["op"], role=Role.OPERATOR)
    with pytest.raises(cases.CaseForbidden):
        cases.assign(db, case, people["op"], people["op"], role=Role.OPERATOR)
    assert cases.allowed_statuses(case, people["op"], Role.OPERATOR) == []
    assert CaseStatus.CLOSED not in cases.allowed_statuses(arrange(db, people, "claimed", "op"), people["op"],
                                                           Role.OPERATOR)
