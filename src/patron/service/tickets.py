"""Ticket use cases: open, reply, assign, resolve (a dispute through the adjustment flow),
the queue, and the SLA breach sweep. Flushes, never commits."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from patron.audit import service as audit
from patron.auth.models import StaffUser
from patron.auth.principal import Principal
from patron.errors import Conflict, Invalid, NotFound
from patron.ledger import flows
from patron.ledger.models import PointsAdjustment, PointsPosting
from patron.ledger.service import Ctx
from patron.members.models import Member
from patron.messaging.models import MessageTemplate
from patron.orders.models import LINES_AND_PAYMENTS, Order
from patron.program import service as program
from patron.service import domain
from patron.service.models import Ticket, TicketEvent
from patron.tiers import service as tiers
from patron.webhooks import events

MAX_BODY = 4000


def settings(session: Session) -> domain.ServiceSettings:
    return program.get_section(session, domain.SECTION, domain.ServiceSettings)


def save_settings(
    session: Session, actor: Principal, value: domain.ServiceSettings, *, now: datetime
) -> domain.ServiceSettings:
    """Save the section once the names it holds exist: the survey's message template and the
    VIP advisor (a saved name that does not exist would fail every round and every VIP ticket
    later, far from the operator who made the mistake)."""
    template = value.nps_schedule.template
    if template is not None and (
        session.scalar(select(MessageTemplate.id).where(MessageTemplate.code == template)) is None
    ):
        raise Invalid(
            "nps_template_not_found",
            f"No message template has the code {template}: create it first, or leave the "
            "template empty to send Patron's own text.",
            details={"field": "nps_schedule.template"},
        )
    advisor = value.vip_advisor
    if advisor is not None and (
        session.scalar(
            select(StaffUser.id).where(StaffUser.username == advisor, StaffUser.is_active.is_(True))
        )
        is None
    ):
        raise Invalid(
            "vip_advisor_not_found",
            f"No active staff user is called {advisor}: choose one who can take VIP tickets.",
            details={"field": "vip_advisor"},
        )
    program.put_section(session, actor, domain.SECTION, value, now=now)
    return value


def member_tier(session: Session, member_id: int) -> str:
    base = tiers.get_ladder(session).base.code
    return tiers.codes_of(session, [member_id], base).get(member_id, base)


def _new_ticket_no(session: Session) -> str:
    while True:  # 10^8 numbers: a clash is rare, and then we draw again
        no = f"T{secrets.randbelow(10**8):08d}"
        if session.scalar(select(Ticket.id).where(Ticket.ticket_no == no)) is None:
            return no


def member_order(
    session: Session, member_id: int, *, order_id: int | None = None, ref: str | None = None
) -> Order:
    """One of the member's own orders, by row id (portal form) or ``source:external_id``."""
    stmt = select(Order).options(*LINES_AND_PAYMENTS).where(Order.member_id == member_id)
    if order_id is not None:
        stmt = stmt.where(Order.id == order_id)
    elif ref and ref.strip():
        source, _, external_id = ref.strip().rpartition(":")
        # the number printed on the receipt alone is enough: it is unique per member in practice
        stmt = stmt.where(Order.external_id == external_id)
        if source:
            stmt = stmt.where(Order.source == source)
        stmt = stmt.order_by(Order.ordered_at.desc()).limit(1)
    else:
        raise Invalid(
            "dispute_order_required",
            "A missing-points dispute names the order: choose it from the member's orders.",
        )
    found = session.scalar(stmt)
    if found is None:
        raise NotFound("dispute_order_not_found", "That order is not one of this member's orders.")
    return found


def _event(
    session: Session,
    ticket: Ticket,
    actor: Principal,
    kind: str,
    now: datetime,
    body: str = "",
    data: dict[str, Any] | None = None,
) -> None:
    session.add(
        TicketEvent(
            ticket_id=ticket.id,
            at=now,
            kind=kind,
            actor_type=actor.kind,
            actor_label=actor.label[:120],
            body=body,
            data=data or {},
        )
    )


def _payload(session: Session, t: Ticket) -> dict[str, Any]:
    member_no = session.scalar(select(Member.member_no).where(Member.id == t.member_id))
    return {
        "ticket_no": t.ticket_no,
        "member_no": member_no,
        "category": t.category,
        "priority": t.priority,
        "status": t.status,
        "queue": t.queue,
        "response_due_at": t.response_due_at.isoformat(),
    }


def _text(value: str, field: str, limit: int) -> str:
    """The text stripped; empty is refused (literal codes: the error catalogue reads them)."""
    value = value.strip()
    if value:
        return value[:limit]
    if field == "subject":
        raise Invalid("ticket_subject_required", "Write the subject of the ticket.")
    if field == "description":
        raise Invalid("ticket_description_required", "Describe the request.")
    if field == "reply":
        raise Invalid("ticket_reply_required", "Write the reply.")
    raise Invalid("ticket_resolution_required", "Write what was done for the member.")


def open_ticket(
    session: Session,
    actor: Principal,
    member: Member,
    *,
    category: str,
    subject: str,
    body: str,
    channel: str,
    now: datetime,
    priority: str = "normal",
    store_code: str | None = None,
    order: Order | None = None,
) -> Ticket:
    if category not in domain.CATEGORIES:
        raise Invalid("ticket_category_invalid", "Choose one of the ticket categories.")
    if priority not in domain.PRIORITIES:
        raise Invalid("ticket_priority_invalid", "Choose low, normal, high or urgent.")
    if category == "missing_points" and order is None:
        raise Invalid(
            "dispute_order_required",
            "A missing-points dispute names the order: choose it from the member's orders.",
        )
    subject = _text(subject, "subject", 200)
    body = _text(body, "description", MAX_BODY)
    conf = settings(session)
    tier = member_tier(session, member.id)
    queue = domain.queue_of(conf, tier)
    ticket = Ticket(
        ticket_no=_new_ticket_no(session),
        member_id=member.id,
        category=category,
        priority=priority,
        status="open",
        channel=channel,
        queue=queue,
        tier_code=tier,
        store_code=store_code or (order.store_code if order else None),
        subject=subject,
        body=body,
        assignee=conf.vip_advisor if queue == "vip" else None,
        opened_by=actor.label[:120],
        created_at=now,
        updated_at=now,
        response_due_at=domain.response_due(conf, category, tier, priority, now),
        order_id=order.id if order else None,
    )
    session.add(ticket)
    session.flush()
    _event(session, ticket, actor, "opened", now, body, {"channel": channel})
    if ticket.assignee:
        _event(session, ticket, actor, "assigned", now, data={"assignee": ticket.assignee})
    audit.record(
        session,
        actor,
        "service.ticket_open",
        "service_ticket",
        ticket.ticket_no,
        None,
        {"category": category, "priority": priority, "queue": queue, "channel": channel},
        at=now,
    )
    events.emit(
        session, "service.ticket.opened", _payload(session, ticket), now, member_id=member.id
    )
    session.flush()
    return ticket


def get(session: Session, ticket_no: str, *, lock: bool = False) -> Ticket:
    stmt = select(Ticket).where(Ticket.ticket_no == ticket_no)
    found = session.scalar(stmt.with_for_update() if lock else stmt)
    if found is None:
        raise NotFound("ticket_not_found", f"No ticket {ticket_no}.")
    return found


def _open_for_change(session: Session, ticket_no: str) -> Ticket:
    t = get(session, ticket_no, lock=True)
    if t.status == "resolved":
        raise Conflict("ticket_resolved", f"Ticket {ticket_no} is resolved; open a new one.")
    return t


def reply(session: Session, actor: Principal, ticket_no: str, body: str, now: datetime) -> Ticket:
    """A message on the ticket. The first reply of staff is the response the SLA measures."""
    t = _open_for_change(session, ticket_no)
    text = _text(body, "reply", MAX_BODY)
    staff = actor.kind != "member"
    _event(session, t, actor, "reply" if staff else "member_reply", now, text)
    if staff and t.first_response_at is None:
        t.first_response_at = now
        t.status = "in_progress"
    t.updated_at = now
    session.flush()
    if staff:
        audit.record(
            session,
            actor,
            "service.ticket_reply",
            "service_ticket",
            t.ticket_no,
            None,
            {"first_response": t.first_response_at == now},
            at=now,
        )
    return t


def assign(
    session: Session, actor: Principal, ticket_no: str, username: str | None, now: datetime
) -> Ticket:
    t = _open_for_change(session, ticket_no)
    if username:
        user = session.scalar(select(StaffUser).where(StaffUser.username == username))
        if user is None or not user.is_active:
            raise Invalid("assignee_not_found", f"No active staff user {username}.")
    before = t.assignee
    t.assignee = username or None
    t.updated_at = now
    _event(session, t, actor, "assigned", now, data={"assignee": t.assignee, "before": before})
    session.flush()
    audit.record(
        session,
        actor,
        "service.ticket_assign",
        "service_ticket",
        t.ticket_no,
        {"assignee": before},
        {"assignee": t.assignee},
        at=now,
    )
    return t


def resolve(
    session: Session,
    ctx: Ctx,
    ticket_no: str,
    *,
    resolution: str,
    correction_points: int = 0,
) -> Ticket:
    """Resolve with a note to the member. A missing-points dispute's correction is requested
    through the adjustment flow (applied within the limits, otherwise waiting for approval),
    never posted here."""
    t = _open_for_change(session, ticket_no)
    note = _text(resolution, "resolution", MAX_BODY)
    if correction_points < 0 or correction_points > 10_000_000:
        raise Invalid("correction_invalid", "A correction is a number of points from 1 up.")
    if correction_points and t.category != "missing_points":
        raise Invalid(
            "correction_not_dispute", "Only a missing-points dispute can carry a correction."
        )
    data: dict[str, Any] = {}
    if correction_points:
        order = session.get(Order, t.order_id) if t.order_id else None
        ref = f"{order.source}:{order.external_id}" if order else "?"
        adj = flows.request_adjustment(
            session,
            ctx,
            t.member_id,
            ledger="points",
            amount=correction_points,
            reason=f"Ticket {t.ticket_no}: missing points for order {ref}",
        )
        t.adjustment_id = adj.id
        data = {"points": correction_points, "adjustment": adj.id, "adjustment_status": adj.status}
    if t.first_response_at is None:
        t.first_response_at = ctx.now
    t.status = "resolved"
    t.resolution = note
    t.resolved_at = t.updated_at = ctx.now
    _event(session, t, ctx.actor, "resolved", ctx.now, note, data)
    session.flush()
    audit.record(
        session,
        ctx.actor,
        "service.ticket_resolve",
        "service_ticket",
        t.ticket_no,
        None,
        {"correction_points": correction_points, **data},
        at=ctx.now,
    )
    events.emit(
        session,
        "service.ticket.resolved",
        {**_payload(session, t), **data},
        ctx.now,
        member_id=t.member_id,
    )
    return t


def timeline(session: Session, ticket: Ticket) -> list[TicketEvent]:
    return list(
        session.scalars(
            select(TicketEvent).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.id)
        )
    )


@dataclass(frozen=True, slots=True)
class Dispute:
    order: Order
    postings: list[PointsPosting]
    adjustment: PointsAdjustment | None


def dispute(session: Session, ticket: Ticket) -> Dispute | None:
    """The order a dispute is about with every points posting it caused (earned, paid, clawed
    back), and the correction requested for it."""
    if ticket.order_id is None:
        return None
    order = session.get(Order, ticket.order_id, options=LINES_AND_PAYMENTS)
    if order is None:  # pragma: no cover - a foreign key
        return None
    postings = list(
        session.scalars(
            select(PointsPosting)
            .where(
                PointsPosting.member_id == ticket.member_id,
                PointsPosting.source_type == "order",
                PointsPosting.source_id == f"{order.source}:{order.external_id}",
            )
            .order_by(PointsPosting.id)
        )
    )
    adj = session.get(PointsAdjustment, ticket.adjustment_id) if ticket.adjustment_id else None
    return Dispute(order, postings, adj)


@dataclass(frozen=True, slots=True)
class QueueFilter:
    queue: str | None = None
    status: str | None = None  # None: every unresolved ticket
    assignee: str | None = None
    breached: bool = False
    member_id: int | None = None


#: the queue's orders: name → columns before the ticket's id, which breaks ties in the same
#: direction (pages never overlap). "pressing": breached first, then by response due time.
QUEUE_SORTS: Final[dict[str, tuple[Any, ...]]] = {
    "pressing": (Ticket.breached_at.is_(None), Ticket.response_due_at),
    "opened": (),  # the id: the order tickets were opened in
    "due": (Ticket.response_due_at,),
    "priority": (case({p: i for i, p in enumerate(domain.PRIORITIES)}, value=Ticket.priority),),
    "category": (Ticket.category,),
    # tickets nobody has taken come last A→Z (first Z→A), on SQLite as on PostgreSQL
    "assignee": (Ticket.assignee.is_(None), Ticket.assignee),
}


def queue(
    session: Session,
    f: QueueFilter,
    *,
    limit: int,
    offset: int,
    sort: str = "pressing",
    descending: bool = False,
) -> tuple[list[Ticket], int]:
    """Most pressing first: breached, then by response due time; or by ``sort`` (one of
    ``QUEUE_SORTS``)."""
    where: list[Any] = []
    if f.status:
        where.append(Ticket.status == f.status)
    else:
        where.append(Ticket.status != "resolved")
    if f.queue:
        where.append(Ticket.queue == f.queue)
    if f.assignee:
        where.append(Ticket.assignee == f.assignee)
    if f.breached:
        where.append(Ticket.breached_at.is_not(None))
    if f.member_id is not None:
        where.append(Ticket.member_id == f.member_id)
    total = session.scalar(select(func.count()).select_from(Ticket).where(*where)) or 0
    rows = session.scalars(
        select(Ticket)
        .where(*where)
        .order_by(
            *(
                c.desc() if descending else c.asc()
                for c in (*QUEUE_SORTS.get(sort, QUEUE_SORTS["pressing"]), Ticket.id)
            )
        )
        .limit(limit)
        .offset(offset)
    )
    return list(rows), int(total)


def of_member(session: Session, member_id: int, *, limit: int = 50) -> list[Ticket]:
    return list(
        session.scalars(
            select(Ticket)
            .where(Ticket.member_id == member_id)
            .order_by(Ticket.created_at.desc(), Ticket.id.desc())
            .limit(limit)
        )
    )


def breached_open(session: Session) -> int:
    """The console's badge: unanswered tickets past their response target."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(Ticket)
            .where(Ticket.breached_at.is_not(None), Ticket.first_response_at.is_(None))
            .where(Ticket.status != "resolved")
        )
        or 0
    )


def mark_breaches(session: Session, now: datetime) -> int:
    """Stamp every unanswered ticket past its target once (running again changes nothing),
    with a timeline entry, an audit record and a ``service.ticket.sla_breached`` event."""
    due = list(
        session.scalars(
            select(Ticket)
            .where(
                Ticket.breached_at.is_(None),
                Ticket.first_response_at.is_(None),
                Ticket.status != "resolved",
                Ticket.response_due_at < now,
            )
            .order_by(Ticket.id)
            .with_for_update(skip_locked=True)
        )
    )
    if not due:
        return 0
    system = Principal.system("sla")
    batch: list[events.NewEvent] = []
    for t in due:
        t.breached_at = now
        late = int((now - t.response_due_at).total_seconds() // 60)
        _event(session, t, system, "breached", now, data={"minutes_late": late})
        audit.record(
            session,
            system,
            "service.sla_breach",
            "service_ticket",
            t.ticket_no,
            None,
            {"due": t.response_due_at.isoformat(), "minutes_late": late},
            at=now,
        )
        batch.append(
            events.NewEvent(
                "service.ticket.sla_breached",
                {**_payload(session, t), "minutes_late": late},
                t.member_id,
            )
        )
    events.emit_many(session, batch, now)
    session.flush()
    return len(due)


def recent_orders(session: Session, member_id: int, *, limit: int = 20) -> list[Order]:
    """The member's latest orders, for the portal's dispute form to choose from."""
    return list(
        session.scalars(
            select(Order)
            .options(*LINES_AND_PAYMENTS)
            .where(Order.member_id == member_id)
            .order_by(Order.ordered_at.desc(), Order.id.desc())
            .limit(limit)
        )
    )
