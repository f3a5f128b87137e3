"""Member events with capacity (SPEC A4): registration by tier, a waiting list promoted when a
place frees, points paid through the ledger, check-in by code, no-shows.

Capacity holds under concurrency without reading before writing: a place is taken by
``UPDATE member_events SET registered = registered + 1 WHERE id = :id AND registered <
capacity``; a member the guard refuses joins the waiting list. Cancelling gives the place back
in the same way and promotes the longest-waiting member (the event row's lock, taken by the
UPDATE, serialises the promotion). Points are paid at registration, waiting list included, and
given back on cancellation by an earning that names the spend it restores.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import CursorResult, case, func, select, update
from sqlalchemy.orm import Session

from patron.audit import service as audit
from patron.auth.principal import Principal
from patron.campaigns.domain import CodeStr, TierCode
from patron.campaigns.models import EventRegistration, MemberEvent
from patron.errors import Conflict, NotFound
from patron.ledger import flows
from patron.ledger.service import Ctx
from patron.members.models import Member
from patron.tiers import service as tiers
from patron.webhooks import events

SOURCE_TYPE = "event"
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: CodeStr
    name: str = Field(min_length=1, max_length=100)
    starts_at: AwareDatetime
    tiers: tuple[TierCode, ...] = Field(default=(), max_length=50)
    capacity: int = Field(ge=1, le=100_000)
    points_cost: int = Field(default=0, ge=0, le=1_000_000)
    fee_fen: int = Field(default=0, ge=0, le=100_000_000)


def get_event(session: Session, code: str) -> MemberEvent:
    row = session.scalar(select(MemberEvent).where(MemberEvent.code == code))
    if row is None:
        raise NotFound("event_not_found", f"No event has the code {code!r}.")
    return row


def create_event(
    session: Session, actor: Principal, data: EventIn, *, now: datetime
) -> MemberEvent:
    if session.scalar(select(MemberEvent.id).where(MemberEvent.code == data.code)):
        raise Conflict("event_code_taken", f"An event with the code {data.code!r} exists.")
    e = MemberEvent(
        code=data.code,
        name=data.name,
        starts_at=data.starts_at,
        tiers=list(data.tiers),
        capacity=data.capacity,
        registered=0,
        points_cost=data.points_cost,
        fee_fen=data.fee_fen,
        created_at=now,
    )
    session.add(e)
    session.flush()
    audit.record(
        session, actor, "event.create", "event", e.code, None, data.model_dump(mode="json"), at=now
    )
    return e


def _rowcount(result: Any) -> int:
    return cast(CursorResult[Any], result).rowcount


def _take_place(session: Session, event_id: int) -> bool:
    res = session.execute(
        update(MemberEvent)
        .where(MemberEvent.id == event_id, MemberEvent.registered < MemberEvent.capacity)
        .values(registered=MemberEvent.registered + 1)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(res) == 1


def _announce(session: Session, e: MemberEvent, r: EventRegistration, now: datetime) -> None:
    events.emit(
        session,
        "event.registration_changed",
        {"event": e.code, "status": r.status, "registration_id": r.id},
        now,
        member_id=r.member_id,
    )


@dataclass(frozen=True, slots=True)
class Registered:
    registration: EventRegistration
    replayed: bool


def register(session: Session, ctx: Ctx, code: str, member_id: int) -> Registered:
    """A place, or a place on the waiting list; a second registration replays the first."""
    e = get_event(session, code)
    if e.closed_at is not None or ctx.now >= e.starts_at:
        raise Conflict("event_closed", f"Registration for {e.name!r} is closed.")
    existing = session.scalar(
        select(EventRegistration).where(
            EventRegistration.event_id == e.id, EventRegistration.member_id == member_id
        )
    )
    if existing is not None and existing.status != "cancelled":
        return Registered(existing, replayed=True)
    if e.tiers:
        base = tiers.get_ladder(session).base.code
        tier = tiers.codes_of(session, [member_id], base).get(member_id, base)
        if tier not in e.tiers:
            raise Conflict(
                "event_tier_not_allowed", f"{e.name!r} is for members of {', '.join(e.tiers)}."
            )
    r = existing or EventRegistration(
        event_id=e.id,
        member_id=member_id,
        status="new",
        checkin_code="".join(secrets.choice(_ALPHABET) for _ in range(8)),
        created_at=ctx.now,
        updated_at=ctx.now,
    )
    if existing is None:
        session.add(r)
        session.flush()
    if e.points_cost:
        # one spend per registration attempt (a member who cancelled may register again)
        spent = flows.spend(
            session,
            ctx,
            member_id,
            points=e.points_cost,
            source_type=SOURCE_TYPE,
            source_id=f"{r.id}:{ctx.now.isoformat()}",
            reason=f"event {e.name}",
        )
        r.spend_posting_id = spent.posting_id
    r.status = "registered" if _take_place(session, e.id) else "waitlisted"
    r.updated_at = ctx.now
    session.flush()
    audit.record(
        session,
        ctx.actor,
        "event.registered" if r.status == "registered" else "event.waitlisted",
        "event",
        e.code,
        None,
        {"member_id": member_id, "registration_id": r.id},
        at=ctx.now,
    )
    _announce(session, e, r, ctx.now)
    return Registered(r, replayed=False)


def cancel(session: Session, ctx: Ctx, code: str, member_id: int) -> EventRegistration:
    """Cancel a registration (points come back); a freed place goes to the waiting list."""
    e = get_event(session, code)
    r = session.scalar(
        select(EventRegistration).where(
            EventRegistration.event_id == e.id, EventRegistration.member_id == member_id
        )
    )
    if r is None or r.status not in ("registered", "waitlisted"):
        raise Conflict("registration_not_active", "There is no registration to cancel.")
    had_place = r.status == "registered"
    if r.spend_posting_id is not None:
        # the ledger's way to give back a spend made by a Patron flow: an earning that names
        # the spend it restores (its reversals can never exceed it)
        flows.earn(
            session,
            ctx,
            member_id,
            points=e.points_cost,
            source_type=SOURCE_TYPE,
            source_id=f"refund:{r.spend_posting_id}",
            reason=f"event {e.name} cancelled",
            pending_days=0,
            restores_id=r.spend_posting_id,
        )
        r.spend_posting_id = None
    r.status, r.updated_at = "cancelled", ctx.now
    session.flush()
    audit.record(
        session,
        ctx.actor,
        "event.cancelled",
        "event",
        e.code,
        None,
        {"member_id": member_id, "registration_id": r.id},
        at=ctx.now,
    )
    _announce(session, e, r, ctx.now)
    if had_place:
        # the decrement locks the event row: promotions cannot interleave
        session.execute(
            update(MemberEvent)
            .where(MemberEvent.id == e.id)
            .values(registered=MemberEvent.registered - 1)
            .execution_options(synchronize_session=False)
        )
        _promote(session, ctx, e)
    return r


def _promote(session: Session, ctx: Ctx, e: MemberEvent) -> None:
    nxt = session.scalar(
        select(EventRegistration)
        .where(EventRegistration.event_id == e.id, EventRegistration.status == "waitlisted")
        .order_by(EventRegistration.updated_at, EventRegistration.id)
        .limit(1)
    )
    if nxt is not None and _take_place(session, e.id):
        nxt.status, nxt.updated_at = "registered", ctx.now
        session.flush()
        audit.record(
            session,
            ctx.actor,
            "event.promoted",
            "event",
            e.code,
            None,
            {"member_id": nxt.member_id, "registration_id": nxt.id},
            at=ctx.now,
        )
        _announce(session, e, nxt, ctx.now)


def check_in(session: Session, ctx: Ctx, code: str, checkin_code: str) -> EventRegistration:
    """At the door: the member's code (shown as a QR in the portal) marks them attended."""
    e = get_event(session, code)
    r = session.scalar(
        select(EventRegistration).where(
            EventRegistration.event_id == e.id,
            EventRegistration.checkin_code == checkin_code.upper(),
        )
    )
    if r is None:
        raise NotFound("checkin_code_not_found", "This code is not a registration for the event.")
    if r.status == "attended":
        return r
    if r.status != "registered":
        raise Conflict("registration_not_active", f"This registration is {r.status}.")
    r.status, r.updated_at = "attended", ctx.now
    session.flush()
    _announce(session, e, r, ctx.now)
    return r


def close(session: Session, ctx: Ctx, code: str) -> int:
    """After the event: registered members who did not check in are no-shows (returned)."""
    e = get_event(session, code)
    if e.closed_at is not None:
        return 0
    res = session.execute(
        update(EventRegistration)
        .where(EventRegistration.event_id == e.id, EventRegistration.status == "registered")
        .values(status="no_show", updated_at=ctx.now)
        .execution_options(synchronize_session=False)
    )
    e.closed_at = ctx.now
    session.flush()
    n = _rowcount(res)
    audit.record(
        session, ctx.actor, "event.close", "event", e.code, None, {"no_shows": n}, at=ctx.now
    )
    events.emit(session, "event.closed", {"event": e.code, "no_shows": n}, ctx.now)
    return n


def no_shows(session: Session, member_id: int) -> int:
    return int(
        session.scalar(
            select(func.count(EventRegistration.id)).where(
                EventRegistration.member_id == member_id, EventRegistration.status == "no_show"
            )
        )
        or 0
    )


def waitlisted(session: Session, event_id: int) -> int:
    return int(
        session.scalar(
            select(func.count(EventRegistration.id)).where(
                EventRegistration.event_id == event_id, EventRegistration.status == "waitlisted"
            )
        )
        or 0
    )


def open_for(
    session: Session, member_id: int, *, now: datetime
) -> list[tuple[MemberEvent, EventRegistration | None]]:
    """Events still taking registrations, with the member's registration if any."""
    rows = session.execute(
        select(MemberEvent, EventRegistration)
        .outerjoin(
            EventRegistration,
            (EventRegistration.event_id == MemberEvent.id)
            & (EventRegistration.member_id == member_id),
        )
        .where(MemberEvent.closed_at.is_(None), MemberEvent.starts_at > now)
        .order_by(MemberEvent.starts_at)
    ).all()
    return [(e, r) for e, r in rows]


@dataclass(frozen=True, slots=True)
class EventFigures:
    event: MemberEvent
    registered: int
    waitlisted: int
    attended: int
    no_show: int
    cancelled: int


def overview(session: Session) -> list[EventFigures]:
    """Every event, newest first, with its registrations counted by status (one grouped read)."""
    counts: dict[int, dict[str, int]] = {}
    for event_id, status, n in session.execute(
        select(EventRegistration.event_id, EventRegistration.status, func.count()).group_by(
            EventRegistration.event_id, EventRegistration.status
        )
    ):
        counts.setdefault(event_id, {})[status] = int(n)
    out = []
    for e in session.scalars(select(MemberEvent).order_by(MemberEvent.starts_at.desc())):
        c = counts.get(e.id, {})
        out.append(
            EventFigures(
                event=e,
                registered=c.get("registered", 0),
                waitlisted=c.get("waitlisted", 0),
                attended=c.get("attended", 0),
                no_show=c.get("no_show", 0),
                cancelled=c.get("cancelled", 0),
            )
        )
    return out


def attendance(session: Session, event_id: int) -> list[tuple[EventRegistration, str]]:
    """The check-in list: registrations with the member number, places first, then the
    waiting list in its order."""
    order = case(
        (EventRegistration.status.in_(("registered", "attended", "no_show")), 0),
        (EventRegistration.status == "waitlisted", 1),
        else_=2,
    )
    rows = session.execute(
        select(EventRegistration, Member.member_no)
        .join(Member, Member.id == EventRegistration.member_id)
        .where(EventRegistration.event_id == event_id)
        .order_by(order, EventRegistration.id)
    ).all()
    return [(r, no) for r, no in rows]
