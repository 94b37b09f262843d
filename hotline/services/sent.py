"""What the hotline sent out on its own (alerts, callbacks), newest first: the simulator's outbox pane."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from hotline.models import Call, Direction, Message


def recent_outbound(session: Session, limit: int = 50) -> tuple[list[Message], list[Call]]:
    """Outbound texts that are not replies, and outbound calls, newest first.

    Replies to a text travel back in the webhook's TwiML (the simulator's texting pane shows them),
    not through the transport, so they are left out."""
    messages = session.scalars(sa.select(Message).where(
        Message.direction == Direction.OUTBOUND, sa.or_(Message.purpose.is_(None), Message.purpose != "reply"))
        .order_by(Message.id.desc()).limit(limit)).all()
    calls = session.scalars(sa.select(Call).where(Call.direction == Direction.OUTBOUND)
                            .order_by(Call.id.desc()).limit(limit)).all()
    return list(messages), list(calls)
