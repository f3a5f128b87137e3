"""Apply a batch of order plans on PostgreSQL without shipping ids back and forth row by row.

An import batch writes thousands of rows of each kind. Multi-row INSERTs with RETURNING cost
more to build, send and parse (client and server) than the rows are worth, so here:

1. the ids the rows refer to each other by (postings, growth postings, orders, events) are taken
   from their sequences in one statement for the whole batch;
2. every table is then filled by ``COPY`` with those ids written out (postings, lots, growth,
   orders, lines, payments, audit records, events and their deliveries);
3. balances (points and growth accounts) are upserted in one statement each, from arrays.

The rules are the general writer's (``orders.writer``): the caller holds the members' ledger
locks and the rule budget rows; lots taken by a points payment and spending accounts keep the
guarded one-row updates (an import plans no points payment, so this is rare here).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from types import SimpleNamespace
from typing import Any

from sqlalchemy import JSON, text
from sqlalchemy.orm import Session

from patron.audit import service as audit
from patron.audit.models import AuditRecord
from patron.auth.principal import Principal
from patron.db import copy_in
from patron.ledger.models import GrowthPosting, PointsAllocation, PointsLot, PointsPosting
from patron.orders import rows, writer
from patron.orders.models import Order, OrderLine, OrderPayment
from patron.orders.plan import OrderPlan
from patron.webhooks import events
from patron.webhooks.models import WebhookDelivery, WebhookEvent

# One statement takes every id the batch needs, from each table's own sequence (so rows written
# later by any other path keep getting fresh ones; the sequences are the SERIAL columns' own).
_IDS = text(
    """
    SELECT array(SELECT nextval('points_postings_id_seq')
                 FROM generate_series(1, :postings)),
           array(SELECT nextval('points_lots_id_seq')
                 FROM generate_series(1, :lots)),
           array(SELECT nextval('growth_postings_id_seq')
                 FROM generate_series(1, :growth)),
           array(SELECT nextval('orders_id_seq')
                 FROM generate_series(1, :orders)),
           array(SELECT nextval('webhook_events_id_seq')
                 FROM generate_series(1, :events))
    """
)

_EARNED = text(
    """
    INSERT INTO points_accounts (member_id, available, pending, debt, lifetime_earned,
                                 lifetime_redeemed, lifetime_expired, version, updated_at)
    SELECT m, n - x, 0, 0, n, 0, x, 0, :now
    FROM unnest(CAST(:members AS bigint[]), CAST(:points AS bigint[]),
                CAST(:expired AS bigint[])) AS u(m, n, x)
    ON CONFLICT (member_id) DO UPDATE
    SET available = points_accounts.available + excluded.available,
        lifetime_earned = points_accounts.lifetime_earned + excluded.lifetime_earned,
        lifetime_expired = points_accounts.lifetime_expired + excluded.lifetime_expired
    """
)

_GROWN = text(
    """
    INSERT INTO growth_accounts (member_id, balance, lifetime_earned, updated_at)
    SELECT m, g, g, at
    FROM unnest(CAST(:members AS bigint[]), CAST(:growth AS bigint[]),
                CAST(:at AS timestamptz[])) AS u(m, g, at)
    ON CONFLICT (member_id) DO UPDATE
    SET balance = growth_accounts.balance + excluded.balance,
        lifetime_earned = growth_accounts.lifetime_earned + excluded.lifetime_earned,
        updated_at = excluded.updated_at
    """
)


def copy_rows(session: Session, model: Any, new: Sequence[dict[str, Any]]) -> None:
    """COPY dict rows (all with the same keys) into the model's table; JSON values are sent as
    their JSON text, the rest as plain values (no SQL expressions)."""
    if not new:
        return
    table = model.__table__
    columns = list(new[0])
    as_json = [isinstance(table.c[c].type, JSON) for c in columns]
    with copy_in(session, table.name, columns) as copy:
        for row in new:
            copy.write_row(
                [json.dumps(row[c]) if j else row[c] for c, j in zip(columns, as_json, strict=True)]
            )


def write(session: Session, actor: Principal, plans: Sequence[OrderPlan]) -> None:
    """Write the plans (PostgreSQL); nothing is read back.

    A lot earned so long ago that it is already past its expiry (imported history) expires in
    the same write: its lot is written spent, and each member gets one expiry posting for all
    such lots of the batch, allocated lot by lot, as the expiry job would have done."""
    if not plans:
        return
    now = plans[0].now
    earning = [i for i, p in enumerate(plans) if p.earn is not None]
    due = [i for i in earning if _born_expired(plans[i])]
    due_members = sorted({plans[i].member_id for i in due})
    n_post = sum((p.spend is not None) + (p.earn is not None) for p in plans)
    n_growth = sum(1 for p in plans if p.growth)
    n_events = n_post + n_growth + sum(1 for p in plans if p.tier_move is not None) + len(plans)
    post_ids, lot_ids, growth_ids, order_ids, event_ids = session.execute(
        _IDS,
        {
            "postings": n_post + len(due_members),
            "lots": len(earning),
            "growth": n_growth,
            "orders": len(plans),
            "events": n_events + len(due_members),
        },
    ).one()
    # ids in plan order, as the general writer hands them out; expiry postings come last
    posts = iter(sorted(post_ids))
    posting_ids: dict[tuple[int, str], int] = {}
    posting_rows: list[dict[str, Any]] = []
    for i, p in enumerate(plans):
        for posting in (p.spend, p.earn):
            if posting is not None:
                pid = posting_ids[(i, posting.kind)] = next(posts)
                posting_rows.append({"id": pid, **rows.posting_row(p, posting)})
    lot_of = dict(zip(earning, sorted(lot_ids), strict=True))
    expiry = _Expiry(plans, due, due_members, posts, lot_of)
    copy_rows(session, PointsPosting, posting_rows + expiry.postings)
    copy_rows(
        session,
        PointsLot,
        [
            {"id": lot_of[i], **rows.lot_row(plans[i], posting_ids[(i, "earn")])}
            | ({"remaining": 0} if i in expiry.lots else {})
            for i in earning
        ],
    )
    copy_rows(session, PointsAllocation, expiry.allocations)
    writer.take_lots(session, plans, posting_ids)
    _earned(session, plans, expiry.by_member)
    writer.spend_accounts(session, plans)
    grown = _growth(session, plans, sorted(growth_ids))
    writer.write_tiers(session, actor, plans, copy=True)
    writer.charge_budgets(session, plans)
    oids = sorted(order_ids)
    _orders(session, plans, oids, posting_ids)
    copy_rows(
        session,
        AuditRecord,
        audit.rows(actor, writer.audit_entries(plans, posting_ids)),
    )
    views = [
        SimpleNamespace(**p.order)  # what the order.recorded payload reads
        for p in plans
    ]
    _events(
        session,
        rows.plan_events(plans, views, posting_ids, grown) + expiry.events(now),
        sorted(event_ids),
        now,
    )


def _born_expired(p: OrderPlan) -> bool:
    return p.spend is None and p.lot_expires_at is not None and p.lot_expires_at <= p.now


class _Expiry:
    """The expiry of the batch's lots that are past due when written: one posting per member
    (the sum of its lots), one allocation per lot."""

    def __init__(
        self,
        plans: Sequence[OrderPlan],
        due: list[int],
        members: list[int],
        ids: Iterable[int],
        lot_of: dict[int, int],
    ) -> None:
        self.lots = set(due)
        self.by_member: dict[int, int] = {}
        for i in due:
            p = plans[i]
            assert p.earn is not None
            self.by_member[p.member_id] = (
                self.by_member.get(p.member_id, 0) + p.earn.available_delta
            )
        self.member_no = {plans[i].member_id: plans[i].member_no for i in due}
        run = uuid.uuid4().hex[:12]
        now = plans[0].now
        self.posting_of = dict(zip(members, ids, strict=False))
        self.postings = [
            {
                "id": self.posting_of[m],
                "member_id": m,
                "kind": "expire",
                "available_delta": -self.by_member[m],
                "pending_delta": 0,
                "debt_delta": 0,
                "reason": "points expired",
                "source_type": None,
                "source_id": None,
                "idempotency_key": f"expire:{run}:{m}",
                "reverses_id": None,
                "actor": "job:expire",
                "created_at": now,
            }
            for m in members
        ]
        self.allocations = [
            {
                "posting_id": self.posting_of[plans[i].member_id],
                "lot_id": lot_of[i],
                "member_id": plans[i].member_id,
                "amount": plans[i].earn.available_delta,  # type: ignore[union-attr]
            }
            for i in due
        ]

    def events(self, now: Any) -> list[events.NewEvent]:
        return [
            events.NewEvent(
                events.POINTS_EVENTS["expire"],
                events.posting_payload(
                    posting_id=self.posting_of[m],
                    kind="expire",
                    available_delta=-n,
                    source_type=None,
                    source_id=None,
                    occurred_at=now,
                ),
                member_id=m,
                member_no=self.member_no[m],
            )
            for m, n in sorted(self.by_member.items())
        ]


def _earned(session: Session, plans: Sequence[OrderPlan], expired: dict[int, int]) -> None:
    earned: dict[int, int] = {}
    for p in plans:
        if p.spend is None and p.earn is not None:
            earned[p.member_id] = earned.get(p.member_id, 0) + p.earn.available_delta
    if earned:
        members = sorted(earned)  # the locks' order
        session.execute(
            _EARNED,
            {
                "members": members,
                "points": [earned[m] for m in members],
                "expired": [expired.get(m, 0) for m in members],
                "now": plans[0].now,
            },
        )


def _growth(session: Session, plans: Sequence[OrderPlan], ids: list[int]) -> dict[int, int]:
    grown = dict(zip((i for i, p in enumerate(plans) if p.growth), ids, strict=True))
    if not grown:
        return {}
    copy_rows(
        session,
        GrowthPosting,
        [{"id": gid, **rows.growth_row(plans[i])} for i, gid in grown.items()],
    )
    totals: dict[int, tuple[int, Any]] = {}
    for i in grown:
        p = plans[i]
        totals[p.member_id] = (totals.get(p.member_id, (0, p.now))[0] + p.growth, p.now)
    members = sorted(totals)
    session.execute(
        _GROWN,
        {
            "members": members,
            "growth": [totals[m][0] for m in members],
            "at": [totals[m][1] for m in members],
        },
    )
    return grown


def _orders(
    session: Session,
    plans: Sequence[OrderPlan],
    ids: list[int],
    posting_ids: dict[tuple[int, str], int],
) -> None:
    copy_rows(
        session,
        Order,
        [
            {
                "id": oid,
                **p.order,
                "earn_posting_id": posting_ids.get((i, "earn")),
                "spend_posting_id": posting_ids.get((i, "redeem")),
            }
            for i, (oid, p) in enumerate(zip(ids, plans, strict=True))
        ],
    )
    copy_rows(
        session,
        OrderLine,
        [rows.line_row(oid, ln) for oid, p in zip(ids, plans, strict=True) for ln in p.lines],
    )
    copy_rows(
        session,
        OrderPayment,
        [
            rows.payment_row(oid, pay)
            for oid, p in zip(ids, plans, strict=True)
            for pay in p.payments
        ],
    )


def _events(session: Session, new: Sequence[events.NewEvent], ids: Iterable[int], now: Any) -> None:
    """The events with the ids taken above, and a delivery for each subscribed endpoint."""
    event_rows = events.event_rows(new, now)
    for row, eid in zip(event_rows, ids, strict=True):
        row["id"] = eid
        del row["member_id"]  # every event of an order plan carries the member's number
    copy_rows(session, WebhookEvent, event_rows)
    subs = events.subscriptions(session)
    copy_rows(
        session,
        WebhookDelivery,
        [
            {
                "endpoint_id": ep_id,
                "event_id": row["id"],
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
            }
            for row in event_rows
            for ep_id, types in subs
            if row["event_type"] in types
        ],
    )
