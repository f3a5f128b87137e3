"""``patron check`` for journeys and messaging: each query returns the offending rows only.

1. Every points posting a journey made is recorded on the path of an entry of the same
   member, and every "earned" step of a path names such a posting (no points without a
   recorded step, no recorded step without its points).
2. A message that left Patron records the consent it relied on, on the channel it went on.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, and_, cast, literal, select
from sqlalchemy.orm import Session

from patron.journeys.models import JourneyEntry, JourneyPathStep
from patron.ledger.models import PointsPosting
from patron.members.models import ConsentEvent
from patron.messaging.models import Message

LIMIT = 100


def run_check(
    session: Session,
    *,
    now: datetime | None = None,  # noqa: ARG001 - the registry's signature
    member_id: int | None = None,
) -> list[str]:
    out: list[str] = []

    def only(col: Any) -> Any:
        return col == member_id if member_id is not None else literal(True)

    recorded = (
        select(JourneyPathStep.id)
        .join(JourneyEntry, JourneyEntry.id == JourneyPathStep.entry_id)
        .where(
            JourneyPathStep.kind == "points",
            JourneyPathStep.ref == cast(PointsPosting.id, String),
            JourneyEntry.member_id == PointsPosting.member_id,
        )
        .exists()
    )
    for pid, mid in session.execute(
        select(PointsPosting.id, PointsPosting.member_id)
        .where(only(PointsPosting.member_id), PointsPosting.source_type == "journey", ~recorded)
        .limit(LIMIT)
    ):
        out.append(f"points posting {pid} of member {mid} was made by a journey no path records")

    posting = (
        select(PointsPosting.id)
        .where(
            cast(PointsPosting.id, String) == JourneyPathStep.ref,
            PointsPosting.member_id == JourneyEntry.member_id,
            PointsPosting.source_type == "journey",
        )
        .exists()
    )
    for entry_id, step in session.execute(
        select(JourneyPathStep.entry_id, JourneyPathStep.step)
        .join(JourneyEntry, JourneyEntry.id == JourneyPathStep.entry_id)
        .where(
            only(JourneyEntry.member_id),
            JourneyPathStep.kind == "points",
            JourneyPathStep.outcome == "earned",
            ~posting,
        )
        .limit(LIMIT)
    ):
        out.append(
            f"journey entry {entry_id} records points at step {step + 1} with no such posting"
        )

    consent = (
        select(ConsentEvent.id)
        .where(
            and_(
                ConsentEvent.id == Message.consent_event_id,
                ConsentEvent.member_id == Message.member_id,
                ConsentEvent.channel == Message.channel,
                ConsentEvent.granted.is_(True),
            )
        )
        .exists()
    )
    for msg_id, channel in session.execute(
        select(Message.id, Message.channel)
        .where(
            only(Message.member_id),
            Message.status.in_(("sending", "sent", "delivered", "failed")),
            ~consent,
        )
        .limit(LIMIT)
    ):
        out.append(f"message {msg_id} went by {channel} without a recorded consent")
    return out
