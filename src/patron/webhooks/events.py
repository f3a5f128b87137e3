"""The event log (outbox): what happened, written in the transaction that made it happen.

Every event is kept, subscribed or not, so a receiver can page through ``GET /api/v1/events``
to recover what it missed; each subscribed endpoint also gets a pending delivery row. The points
and growth ledgers emit one event per posting where postings are written (``ledger.service``,
``ledger.growth``, the set-based expiry job), tiers one per change of tier (``tiers.service``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, Final, Protocol

from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.orm import Session

from patron.members.models import Member
from patron.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent

#: points posting kind → event type
POINTS_EVENTS: Final = {
    "earn": "points.earned",
    "release": "points.released",
    "redeem": "points.spent",
    "reversal": "points.spend_cancelled",
    "expire": "points.expired",
    "repay": "points.debt_repaid",
    "clawback": "points.clawed_back",
    "adjust": "points.adjusted",
}
#: growth posting kind → event type
GROWTH_EVENTS: Final = {
    "earn": "growth.earned",
    "clawback": "growth.clawed_back",
    "adjust": "growth.adjusted",
}
#: the points mall: one per state change of a redemption, stock movement and lottery draw
MALL_EVENTS: Final = (
    "mall.redemption.reserved",
    "mall.redemption.fulfilled",
    "mall.redemption.shipped",
    "mall.redemption.received",
    "mall.redemption.cancelled",
    "mall.redemption.returned",
    "mall.redemption.unclaimed",
    "mall.stock.moved",
    "mall.stock.low",
    "mall.lottery.drawn",
)
#: a coupon's changes of status (patron.coupons)
COUPON_EVENTS: Final = (
    "coupon.issued",
    "coupon.redeemed",
    "coupon.restored",
    "coupon.expired",
    "coupon.voided",
    "coupon.expiring",
)
EVENT_TYPES: Final = (
    "order.recorded",
    "order.returned",
    *POINTS_EVENTS.values(),
    *GROWTH_EVENTS.values(),
    "tier.changed",
    *MALL_EVENTS,
    *COUPON_EVENTS,
    # campaigns (patron.campaigns)
    "campaign.created",
    "campaign.updated",
    "campaign.status_changed",
    "campaign.budget_reached",
    "campaign.joined",
    "campaign.action_rewarded",
    "referral.changed",
    # UGC contests (patron.campaigns.contests)
    "contest.changed",
    "contest.entry_submitted",
    "contest.entry_moderated",
    "contest.winner_rewarded",
    "event.registration_changed",
    "event.closed",
    # analytics (patron.analytics.alerts): a daily metric outside its expected range
    "analytics.alert",
    # the service desk (patron.service) and risk review (patron.risk)
    "service.ticket.opened",
    "service.ticket.resolved",
    "service.ticket.sla_breached",
    "service.survey.answered",
    "risk.review.opened",
    "risk.review.decided",
    "privacy.erasure_completed",
    "privacy.erasure_rejected",
)


@dataclass(frozen=True, slots=True)
class NewEvent:
    event_type: str
    payload: dict[str, Any]
    #: the member the event is about; its number is stored with the event (no extra read)
    member_id: int | None = None
    member_no: str | None = None


_ENDPOINTS = "patron.webhooks.active_endpoints"


def forget_endpoints(session: Session) -> None:
    """Endpoint changes drop the per-transaction cache of subscriptions."""
    session.info.pop(_ENDPOINTS, None)


def subscriptions_column(session: Session) -> Any:
    """A scalar subquery of the active subscriptions as one JSON array of [id, events], for a
    caller to read with the other facts of its request (``prime_subscriptions``) instead of
    one more statement when it emits."""
    return subscriptions_subquery(session.get_bind().dialect.name)


def subscriptions_subquery(dialect_name: str) -> Any:
    pg = dialect_name == "postgresql"
    pair = (
        func.json_build_array(WebhookEndpoint.id, WebhookEndpoint.events)
        if pg
        else func.json_array(WebhookEndpoint.id, func.json(WebhookEndpoint.events))
    )
    agg = func.json_agg(pair) if pg else func.json_group_array(pair)
    return select(agg).where(WebhookEndpoint.is_active).scalar_subquery()


def prime_subscriptions(session: Session, value: Any) -> None:
    """Keep what ``subscriptions_column`` read (unless this transaction already knows them)."""
    if _ENDPOINTS in session.info:
        return
    if isinstance(value, str):  # SQLite returns the JSON text
        value = json.loads(value)
    session.info[_ENDPOINTS] = [(int(i), frozenset(types)) for i, types in value or ()]


def subscriptions(session: Session) -> list[tuple[int, frozenset[str]]]:
    """The active endpoints and the event types each subscribes to (read once a session)."""
    return _subscriptions(session)


def _subscriptions(session: Session) -> list[tuple[int, frozenset[str]]]:
    active: list[tuple[int, frozenset[str]]] | None = session.info.get(_ENDPOINTS)
    if active is None:  # one read per session; endpoint changes drop it
        active = session.info[_ENDPOINTS] = [
            (int(r.id), frozenset(r.events))
            for r in session.execute(
                select(WebhookEndpoint.id, WebhookEndpoint.events).where(WebhookEndpoint.is_active)
            )
        ]
    return active


def subscribed(session: Session, event_type: str) -> list[int]:
    """Ids of the active endpoints subscribed to an event type (for set-based writers that
    insert their deliveries themselves)."""
    return [ep for ep, types in _subscriptions(session) if event_type in types]


def emit(
    session: Session,
    event_type: str,
    payload: dict[str, Any],
    now: datetime,
    *,
    member_id: int | None = None,
) -> None:
    """Record one event (and its deliveries) in the caller's transaction."""
    emit_many(session, [NewEvent(event_type, payload, member_id)], now)


def event_rows(events: Sequence[NewEvent], now: datetime) -> list[dict[str, Any]]:
    """The events' rows (``member_id`` is not a column: it finds a missing member number)."""
    for ev in events:
        if ev.event_type not in EVENT_TYPES:  # pragma: no cover - programming error
            raise ValueError(ev.event_type)
    return [
        {
            "event_type": ev.event_type,
            "payload": ev.payload,
            "created_at": now,
            "member_id": ev.member_id,
            "member_no": ev.member_no if ev.member_no is not None else ev.payload.get("member_no"),
        }
        for ev in events
    ]


@cache
def _event_insert(*, with_member_lookup: bool) -> Any:
    """The events' INSERT, built once per form. A Core insert of the table: the ORM's bulk
    path adds nothing here and costs CPU per order. Deliveries need only (id, type), so the
    rows may come back in any order: that keeps the multi-row VALUES form on SQLite (a
    guaranteed order would send one row at a time)."""
    table: Any = WebhookEvent.__table__
    stmt = insert(table).returning(table.c.id, table.c.event_type)
    if not with_member_lookup:
        return stmt
    # The number comes from members in the same statement (no read before the insert). A
    # subquery defeats the multi-row VALUES form, so batches pass the number instead.
    given = bindparam("member_no", type_=WebhookEvent.member_no.type)
    return stmt.values(
        member_no=func.coalesce(
            given,
            select(Member.member_no).where(Member.id == bindparam("member_id")).scalar_subquery(),
        )
    )


def emit_many(session: Session, events: Sequence[NewEvent], now: datetime) -> None:
    """Record events with one INSERT (executemany) plus one for the deliveries, if any."""
    if not events:
        return
    rows = event_rows(events, now)
    if any(r["member_no"] is None and r["member_id"] is not None for r in rows):
        stmt = _event_insert(with_member_lookup=True)
    else:
        stmt = _event_insert(with_member_lookup=False)
        for r in rows:
            del r["member_id"]
    created = session.execute(stmt, rows).all()
    subs = _subscriptions(session)
    deliveries = [
        {
            "endpoint_id": ep_id,
            "event_id": ev_id,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
        }
        for ev_id, ev_type in sorted(created)
        for ep_id, types in subs
        if ev_type in types
    ]
    if deliveries:
        session.execute(insert(WebhookDelivery), deliveries)


# ---- payloads ---------------------------------------------------------------------------------


class RecordedOrder(Protocol):
    source: str
    external_id: str
    ordered_at: datetime
    store_code: str | None
    total_fen: int
    paid_fen: int
    points_used: int
    points_earned: int
    growth_earned: int


def order_recorded_payload(member_no: str, order: RecordedOrder) -> dict[str, Any]:
    return {
        "member_no": member_no,
        "source": order.source,
        "external_id": order.external_id,
        "ordered_at": order.ordered_at.isoformat(),
        "store_code": order.store_code,
        "total_fen": order.total_fen,
        "paid_fen": order.paid_fen,
        "points_used": order.points_used,
        "points_earned": order.points_earned,
        "growth_earned": order.growth_earned,
    }


def posting_payload(
    *,
    posting_id: int,
    kind: str,
    available_delta: int,
    pending_delta: int = 0,
    debt_delta: int = 0,
    source_type: str | None,
    source_id: str | None,
    reverses_id: int | None = None,
    occurred_at: datetime,
) -> dict[str, Any]:
    return {
        "posting_id": posting_id,
        "kind": kind,
        "points": available_delta + pending_delta,
        "available_delta": available_delta,
        "pending_delta": pending_delta,
        "debt_delta": debt_delta,
        "source_type": source_type,
        "source_id": source_id,
        "reverses_id": reverses_id,
        "occurred_at": occurred_at.isoformat(),
    }


def points_posted(
    session: Session,
    member_id: int,
    *,
    posting_id: int,
    kind: str,
    available_delta: int,
    pending_delta: int,
    debt_delta: int,
    source_type: str | None,
    source_id: str | None,
    reverses_id: int | None,
    now: datetime,
) -> None:
    """The event of one points posting (called where the posting is written)."""
    emit(
        session,
        POINTS_EVENTS[kind],
        posting_payload(
            posting_id=posting_id,
            kind=kind,
            available_delta=available_delta,
            pending_delta=pending_delta,
            debt_delta=debt_delta,
            source_type=source_type,
            source_id=source_id,
            reverses_id=reverses_id,
            occurred_at=now,
        ),
        now,
        member_id=member_id,
    )


def expiries_posted(
    session: Session, postings: Iterable[tuple[int, int, int, str]], now: datetime
) -> None:
    """Events of a batch of expiry postings ``(posting id, member id, delta, member_no)``."""
    emit_many(
        session,
        [
            NewEvent(
                POINTS_EVENTS["expire"],
                posting_payload(
                    posting_id=pid,
                    kind="expire",
                    available_delta=delta,
                    source_type=None,
                    source_id=None,
                    occurred_at=now,
                ),
                member_id=mid,
                member_no=no,
            )
            for pid, mid, delta, no in postings
        ],
        now,
    )


def growth_posted(
    session: Session,
    member_id: int,
    *,
    posting_id: int,
    kind: str,
    amount: int,
    source_type: str | None,
    source_id: str | None,
    now: datetime,
) -> None:
    emit(
        session,
        GROWTH_EVENTS[kind],
        growth_payload(
            posting_id=posting_id,
            kind=kind,
            amount=amount,
            source_type=source_type,
            source_id=source_id,
            occurred_at=now,
        ),
        now,
        member_id=member_id,
    )


def growth_payload(
    *,
    posting_id: int,
    kind: str,
    amount: int,
    source_type: str | None,
    source_id: str | None,
    occurred_at: datetime,
) -> dict[str, Any]:
    return {
        "posting_id": posting_id,
        "kind": kind,
        "growth": amount,
        "source_type": source_type,
        "source_id": source_id,
        "occurred_at": occurred_at.isoformat(),
    }


def tier_changed(
    session: Session,
    member_id: int,
    *,
    from_tier: str,
    to_tier: str,
    cause: str,
    growth: int,
    now: datetime,
) -> None:
    emit(
        session,
        "tier.changed",
        tier_payload(from_tier=from_tier, to_tier=to_tier, cause=cause, growth=growth, now=now),
        now,
        member_id=member_id,
    )


def tier_payload(
    *, from_tier: str, to_tier: str, cause: str, growth: int, now: datetime
) -> dict[str, Any]:
    return {
        "tier": to_tier,
        "from_tier": from_tier,
        "cause": cause,
        "window_growth": growth,
        "occurred_at": now.isoformat(),
    }


# ---- reading the log -------------------------------------------------------------------------


def page(
    session: Session,
    *,
    after: int,
    limit: int,
    types: Sequence[str] = (),
    member_no: str | None = None,
) -> list[WebhookEvent]:
    """Events with id > ``after`` in id order (the cursor is the last id a reader has seen)."""
    stmt = select(WebhookEvent).where(WebhookEvent.id > after)
    if types:
        stmt = stmt.where(WebhookEvent.event_type.in_(list(types)))
    if member_no is not None:
        stmt = stmt.where(WebhookEvent.member_no == member_no)
    return list(session.scalars(stmt.order_by(WebhookEvent.id).limit(limit)))


def document(ev: WebhookEvent) -> dict[str, Any]:
    """What a receiver gets: the same document in a delivery and in ``GET /events``."""
    data = dict(ev.payload)
    if ev.member_no is not None:
        data["member_no"] = ev.member_no
    return {
        "id": ev.id,
        "type": ev.event_type,
        "created_at": ev.created_at.isoformat(),
        "data": data,
    }
