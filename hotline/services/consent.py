"""Consent over SMS: the urgent text of a family member ("my son ...") opens a case for someone else
and asks, one text at a time, may we contact that person and may we share the details with a
partner organisation. Replies 8 (yes) / 9 (no) fill the case in; no answer leaves it unknown.

Costs nothing on an ordinary text: the pure checks in hotline.menus.consent come first, and only a
bare yes/no reply reads the database (one SELECT). The caller commits.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from hotline.menus import consent
from hotline.models import Case

ANSWER_WITHIN = timedelta(hours=24)  # a yes/no later than this after the report is an ordinary text


def about_someone_else(body: str) -> bool:
    return consent.load().about_someone_else(body)


def first_question(language: str) -> str:
    return consent.load().reply("ask_contact", language)


def take_answer(session: Session, caller_id: int | None, body: str, language: str,
                now: datetime) -> tuple[int, str] | None:
    """If `body` answers the open consent question of this texter's latest report for someone else,
    store it; returns (case id, the next question or the thanks). None: not such an answer."""
    texts = consent.load()
    answer = texts.answer(body)
    if answer is None or caller_id is None:
        return None
    case = session.scalar(
        sa.select(Case).where(Case.caller_id == caller_id, Case.reported_by_other.is_(True),
                              Case.source != "voice", Case.created_at > now - ANSWER_WITHIN,
                              sa.or_(Case.consent_contact.is_(None), Case.consent_share.is_(None)))
        .order_by(Case.id.desc()).limit(1))
    if case is None:
        return None
    if case.consent_contact is None:
        case.consent_contact = answer
        return case.id, texts.reply("ask_share", language)
    case.consent_share = answer
    return case.id, texts.reply("noted", language)
