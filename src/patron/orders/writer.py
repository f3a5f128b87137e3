"""Apply order plans (``orders.plan``) set-based: one statement per kind of row for the whole
list, RETURNING ids instead of re-reading, nothing updated right after it was inserted.

The caller holds each member's ledger lock (``orders.facts.lock_account``) and the rule budget
rows; the points account's guarded update still refuses a spend the balance cannot cover.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import CursorResult, Table, bindparam, insert, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from patron.audit import service as audit
from patron.auth.principal import Principal
from patron.db import copy_in
from patron.ledger import jobs as ledger_jobs
from patron.ledger.domain import InsufficientPoints
from patron.ledger.models import (
    GrowthAccount,
    GrowthPosting,
    PointsAccount,
    PointsAllocation,
    PointsLot,
    PointsPosting,
)
from patron.ledger.store import new_account
from patron.orders import rows, writer_one
from patron.orders.models import Order, OrderLine, OrderPayment, RuleBudgetUsage
from patron.orders.plan import OrderPlan
from patron.tiers.models import MemberTier, TierChange
from patron.webhooks import events


def upsert(session: Session) -> Any:
    """The dialect's INSERT with ON CONFLICT."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def write_plans(session: Session, actor: Principal, plans: Sequence[OrderPlan]) -> list[Order]:
    """Write the plans; returns their orders (lines and payments loaded) in plan order."""
    if not plans:
        return []
    if len(plans) == 1 and session.get_bind().dialect.name == "postgresql":
        # one order of a request: one round trip instead of one per kind of row
        return [writer_one.write_one(session, actor, plans[0])]
    posting_ids = _postings(session, plans)
    _lots(session, plans, posting_ids)
    _accounts(session, plans)
    growth_ids = _growth(session, plans)
    write_tiers(session, actor, plans)
    charge_budgets(session, plans)
    orders = _orders(session, plans, posting_ids)
    audit.record_many(session, actor, audit_entries(plans, posting_ids))
    events.emit_many(
        session, rows.plan_events(plans, orders, posting_ids, growth_ids), plans[0].now
    )
    return orders


def write_batch(session: Session, actor: Principal, plans: Sequence[OrderPlan]) -> None:
    """Write a batch of plans whose orders nobody reads back (an import): on PostgreSQL with
    ids taken up front and COPY (``orders.writer_copy``), on SQLite as ``write_plans``.

    Lots earned so long ago that they are already past their expiry (imported history) expire
    at once, with one expiry posting per member: in the same COPYs on PostgreSQL, on SQLite by
    the expiry job's set-based batch over those members (which also expires any other due lot
    of members between them: the caller let no member with due lots into the batch)."""
    if not plans:
        return
    if session.get_bind().dialect.name == "postgresql":
        from patron.orders import writer_copy

        writer_copy.write(session, actor, plans)
        return
    write_plans(session, actor, plans)
    now = plans[0].now
    expired = sorted(
        {p.member_id for p in plans if p.lot_expires_at is not None and p.lot_expires_at <= now}
    )
    after = expired[0] - 1 if expired else None
    while after is not None:
        done = ledger_jobs.expire_batch(session, now, after, 1_000, expired[-1])
        after = done[0] if done else None


#: from this many rows on, rows that need no ids back go by COPY on PostgreSQL
COPY_FROM = 500


def insert_rows(session: Session, model: Any, new: list[dict[str, Any]]) -> None:
    """INSERT rows whose ids nobody needs: an executemany, or on PostgreSQL for an import
    batch's thousands of rows a COPY (several times faster than batched VALUES). The values
    are plain ones (no SQL expressions, no JSON columns) so COPY and INSERT store the same."""
    if len(new) < COPY_FROM or session.get_bind().dialect.name != "postgresql":
        session.execute(insert(model), new)
        return
    columns = list(new[0])
    with copy_in(session, model.__table__.name, columns) as copy:
        for row in new:
            copy.write_row([row[c] for c in columns])


def _postings(session: Session, plans: Sequence[OrderPlan]) -> dict[tuple[int, str], int]:
    new: list[dict[str, Any]] = []
    keys: list[tuple[int, str]] = []
    for i, p in enumerate(plans):
        for posting in (p.spend, p.earn):
            if posting is None:
                continue
            keys.append((i, posting.kind))
            new.append(rows.posting_row(p, posting))
    if not new:
        return {}
    # matched back by their unique keys: rows may return in any order, which keeps SQLite's
    # multi-row VALUES form (a guaranteed order sends them one by one there)
    returned = session.execute(
        insert(PointsPosting).returning(PointsPosting.idempotency_key, PointsPosting.id), new
    )
    by_key = {str(row[0]): int(row[1]) for row in returned}
    return {k: int(by_key[row["idempotency_key"]]) for k, row in zip(keys, new, strict=True)}


def _lots(session: Session, plans: Sequence[OrderPlan], posting_ids: dict[Any, int]) -> None:
    new = [
        rows.lot_row(p, posting_ids[(i, "earn")]) for i, p in enumerate(plans) if p.earn is not None
    ]
    if new:
        insert_rows(session, PointsLot, new)
    take_lots(session, plans, posting_ids)


def take_lots(
    session: Session, plans: Sequence[OrderPlan], posting_ids: dict[tuple[int, str], int]
) -> None:
    """Lots a points payment takes, and their allocation rows."""
    takes = [(i, p, t) for i, p in enumerate(plans) for t in p.takes]
    if not takes:
        return
    for _, _, t in takes:
        # one lot per statement so each guard is checked (the account lock makes a miss
        # impossible; most payments take one lot)
        res = session.execute(
            update(PointsLot)
            .where(PointsLot.id == t.lot_id, PointsLot.remaining >= t.amount)
            .values(remaining=PointsLot.remaining - t.amount)
            .execution_options(synchronize_session=False)
        )
        if cast(CursorResult[Any], res).rowcount != 1:  # pragma: no cover - see above
            raise RuntimeError(f"lot {t.lot_id} changed under the ledger lock")
    session.execute(
        insert(PointsAllocation),
        [
            {
                "posting_id": posting_ids[(i, "redeem")],
                "lot_id": t.lot_id,
                "member_id": p.member_id,
                "amount": t.amount,
            }
            for i, p, t in takes
        ],
    )


def _accounts(session: Session, plans: Sequence[OrderPlan]) -> None:
    # earnings: one upsert per member, one executemany (on SQLite the member may have no
    # account yet: nothing locked a row there, BEGIN IMMEDIATE serialised the transaction)
    earned: dict[int, int] = {}
    for p in plans:
        if p.spend is None and p.earn is not None:
            earned[p.member_id] = earned.get(p.member_id, 0) + p.earn.available_delta
    if earned:
        now = plans[0].now
        ins = upsert(session)(PointsAccount)
        session.execute(
            ins.on_conflict_do_update(
                index_elements=[PointsAccount.member_id],
                set_={
                    "available": PointsAccount.available + ins.excluded.available,
                    "lifetime_earned": PointsAccount.lifetime_earned + ins.excluded.lifetime_earned,
                },
            ),
            [
                {**new_account(m, now), "available": n, "lifetime_earned": n}
                for m, n in sorted(earned.items())
            ],
        )
    spend_accounts(session, plans)


def spend_accounts(session: Session, plans: Sequence[OrderPlan]) -> None:
    """The accounts of plans paying with points: one guarded update each."""
    for p in plans:
        if p.spend is None:
            continue
        spent = -p.spend.available_delta
        earned_here = p.earn.available_delta if p.earn else 0
        # The guard *is* the check (invariant 3): spent points must be there before this write.
        res = session.execute(
            update(PointsAccount)
            .where(PointsAccount.member_id == p.member_id, PointsAccount.available >= spent)
            .values(
                available=PointsAccount.available + (earned_here - spent),
                lifetime_earned=PointsAccount.lifetime_earned + earned_here,
                lifetime_redeemed=PointsAccount.lifetime_redeemed + spent,
            )
            .execution_options(synchronize_session=False)
        )
        if cast(CursorResult[Any], res).rowcount != 1:
            raise InsufficientPoints(spent, 0)


def _growth(session: Session, plans: Sequence[OrderPlan]) -> dict[int, int]:
    """Growth postings and accounts; returns growth posting ids by plan index."""
    grown = [(i, p) for i, p in enumerate(plans) if p.growth]
    if not grown:
        return {}
    ids = session.scalars(
        insert(GrowthPosting).returning(GrowthPosting.id, sort_by_parameter_order=True),
        [rows.growth_row(p) for _, p in grown],
    ).all()
    totals: dict[int, tuple[int, Any]] = {}
    for _, p in grown:
        before = totals.get(p.member_id, (0, p.now))[0]
        totals[p.member_id] = (before + p.growth, p.now)
    ins = upsert(session)(GrowthAccount)
    session.execute(
        ins.on_conflict_do_update(
            index_elements=[GrowthAccount.member_id],
            set_={
                "balance": GrowthAccount.balance + ins.excluded.balance,
                "lifetime_earned": GrowthAccount.lifetime_earned + ins.excluded.lifetime_earned,
                "updated_at": ins.excluded.updated_at,
            },
        ),
        [
            {"member_id": m, "balance": g, "lifetime_earned": g, "updated_at": at}
            for m, (g, at) in totals.items()
        ],
    )
    return {i: int(pid) for (i, _), pid in zip(grown, ids, strict=True)}


def write_tiers(
    session: Session, actor: Principal, plans: Sequence[OrderPlan], *, copy: bool = False
) -> None:
    moved = [p for p in plans if p.tier_move is not None]
    if not moved:
        return
    # the member's tier row ends at its last step of the batch; every step is a history row
    last = {p.member_id: p for p in moved}
    ins = upsert(session)(MemberTier)
    session.execute(
        ins.on_conflict_do_update(
            index_elements=[MemberTier.member_id], set_={c: ins.excluded[c] for c in rows.TIER_SET}
        ),
        [rows.tier_row(p) for p in last.values()],
    )
    history = [rows.tier_change_row(actor, p) for p in moved]
    if copy:
        from patron.orders import writer_copy

        writer_copy.copy_rows(session, TierChange, history)
    else:
        session.execute(insert(TierChange), history)


def charge_budgets(session: Session, plans: Sequence[OrderPlan]) -> None:
    charges = [
        {"rid": rule_id, "pts": points, "at": p.now}
        for p in plans
        for rule_id, points in p.budget_charges
    ]
    if charges:
        # the Core table, not the entity: an ORM UPDATE with a list of parameters is a "bulk
        # UPDATE by primary key", which refuses a WHERE on the key given as a bind parameter
        usage = cast(Table, RuleBudgetUsage.__table__)
        session.execute(
            update(usage)
            .where(usage.c.rule_id == bindparam("rid"))
            .values(
                points_used=usage.c.points_used + bindparam("pts"),
                updated_at=bindparam("at"),
            ),
            charges,
        )


def _orders(
    session: Session, plans: Sequence[OrderPlan], posting_ids: dict[tuple[int, str], int]
) -> list[Order]:
    ids = session.scalars(
        insert(Order).returning(Order.id, sort_by_parameter_order=True),
        [
            {
                **p.order,
                "earn_posting_id": posting_ids.get((i, "earn")),
                "spend_posting_id": posting_ids.get((i, "redeem")),
            }
            for i, p in enumerate(plans)
        ],
    ).all()
    line_rows = [
        rows.line_row(order_id, ln)
        for order_id, p in zip(ids, plans, strict=True)
        for ln in p.lines
    ]
    pay_rows = [
        rows.payment_row(order_id, pay)
        for order_id, p in zip(ids, plans, strict=True)
        for pay in p.payments
    ]
    if line_rows:
        insert_rows(session, OrderLine, line_rows)
    if pay_rows:
        insert_rows(session, OrderPayment, pay_rows)
    lines_of: dict[int, list[dict[str, Any]]] = {}
    for row in line_rows:
        lines_of.setdefault(int(row["order_id"]), []).append(row)
    pays_of: dict[int, list[dict[str, Any]]] = {}
    for row in pay_rows:
        pays_of.setdefault(int(row["order_id"]), []).append(row)
    return [
        rows.order_object(
            int(order_id),
            p,
            posting_ids.get((i, "earn")),
            posting_ids.get((i, "redeem")),
            lines_of.get(int(order_id), []),
            pays_of.get(int(order_id), []),
        )
        for i, (order_id, p) in enumerate(zip(ids, plans, strict=True))
    ]


def audit_entries(
    plans: Sequence[OrderPlan], posting_ids: dict[tuple[int, str], int]
) -> list[tuple[str, str, str, dict[str, Any] | None, Any]]:
    """The plans' audit records as ``audit.record_many`` entries (their actions are literals
    in ``orders.plan``)."""
    return [
        (
            entry.action,
            "member",
            str(p.member_id),
            {
                "posting_id": posting_ids[
                    (i, "redeem" if entry.action == "points.spend" else "earn")
                ],
                **entry.after,
            },
            p.now,
        )
        for i, p in enumerate(plans)
        for entry in p.audits
    ]
