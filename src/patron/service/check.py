"""``patron check`` for the service desk: what a dispute's correction and a ticket's clock say
agrees with the rest of the database.

1. A ticket's correction is a points adjustment of the ticket's own member.
2. A resolved ticket has a resolution time and a first response; an answered one was
   answered no earlier than it was opened.
3. A ticket stamped as breached was not answered before its response target.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from patron.ledger.models import PointsAdjustment
from patron.service.models import Ticket

LIMIT = 100


def run_check(
    session: Session,
    *,
    now: datetime | None = None,  # noqa: ARG001 - every domain check has this signature
    member_id: int | None = None,
) -> list[str]:
    scope = [Ticket.member_id == member_id] if member_id is not None else []
    out: list[str] = []
    for no, t_member, a_member, ledger in session.execute(
        select(
            Ticket.ticket_no, Ticket.member_id, PointsAdjustment.member_id, PointsAdjustment.ledger
        )
        .join(PointsAdjustment, PointsAdjustment.id == Ticket.adjustment_id)
        .where(
            or_(
                PointsAdjustment.member_id != Ticket.member_id, PointsAdjustment.ledger != "points"
            ),
            *scope,
        )
        .limit(LIMIT)
    ):
        out.append(
            f"ticket {no}: its correction is a {ledger} adjustment of member id {a_member}, "
            f"not a points adjustment of its member id {t_member}"
        )
    for (no,) in session.execute(
        select(Ticket.ticket_no)
        .where(
            or_(
                Ticket.status == "resolved",
                Ticket.first_response_at.is_not(None),
            ),
            or_(
                (Ticket.status == "resolved")
                & (Ticket.resolved_at.is_(None) | Ticket.first_response_at.is_(None)),
                Ticket.first_response_at < Ticket.created_at,
            ),
            *scope,
        )
        .limit(LIMIT)
    ):
        out.append(f"ticket {no}: its response or resolution times do not add up")
    for (no,) in session.execute(
        select(Ticket.ticket_no)
        .where(
            Ticket.breached_at.is_not(None),
            Ticket.first_response_at.is_not(None),
            Ticket.first_response_at <= Ticket.response_due_at,
            *scope,
        )
        .limit(LIMIT)
    ):
        out.append(f"ticket {no}: stamped as late although answered in time")
    return out
