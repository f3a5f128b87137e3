"""One order plan in one statement (PostgreSQL): every row the plan writes — postings, lot,
lots taken and allocations, the points account, growth, tier, budgets, the order with its lines
and payments, and the audit records — as data-modifying CTEs of a single statement.

A request records one order at a time, and each statement is a round trip while the request
holds the member's lock; the set-based writer (``orders.writer``) serves batches. Guards are
the same as there: the account's and each lot's ``WHERE`` refuses what the balance cannot
cover; the statement returns how many rows each guard let through, and a refusal raises (the
request's unit of work rolls back everything, so nothing half-written stays).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    Select,
    column,
    func,
    insert,
    literal,
    select,
    update,
    values,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from patron.audit import service as audit
from patron.audit.models import AuditRecord
from patron.auth.principal import Principal
from patron.ledger.domain import InsufficientPoints
from patron.ledger.models import (
    GrowthAccount,
    GrowthPosting,
    PointsAccount,
    PointsAllocation,
    PointsLot,
    PointsPosting,
)
from patron.orders import rows
from patron.orders.models import Order, OrderLine, OrderPayment, RuleBudgetUsage
from patron.orders.plan import OrderPlan
from patron.tiers.models import MemberTier, TierChange


def _id(cte: Any) -> Any:
    return select(cte.c.id).scalar_subquery()


def _count(cte: Any) -> Any:
    return select(func.count()).select_from(cte).scalar_subquery()


def write_one(session: Session, actor: Principal, p: OrderPlan) -> Order:
    """Write one plan (the caller holds the member's lock, as for ``rows.write_plans``)."""
    ctes: list[Any] = []
    out: dict[str, Any] = {}
    spend = earn = None
    plan_postings = [x for x in (p.spend, p.earn) if x is not None]
    if plan_postings:
        # one INSERT in the plan's order (spend, then earn), so ids follow it as in the batch
        posted = (
            insert(PointsPosting)
            .values([rows.posting_row(p, x) for x in plan_postings])
            .returning(PointsPosting.id, PointsPosting.kind)
            .cte("posted")
        )
        ctes.append(posted)
        if p.spend is not None:
            spend = select(posted.c.id).where(posted.c.kind == "redeem").subquery("spend")
            out["spend_id"] = _id(spend)
        if p.earn is not None:
            earn = select(posted.c.id).where(posted.c.kind == "earn").subquery("earn")
            ctes.append(insert(PointsLot).values(rows.lot_row(p, _id(earn))).cte("lot"))
            out["earn_id"] = _id(earn)
    for k, t in enumerate(p.takes):
        take = (
            update(PointsLot)
            .where(PointsLot.id == t.lot_id, PointsLot.remaining >= t.amount)
            .values(remaining=PointsLot.remaining - t.amount)
            .returning(PointsLot.id)
            .cte(f"take{k}")
        )
        ctes.append(take)
        out[f"take{k}"] = _count(take)
    if p.takes:
        assert spend is not None
        taken = values(
            column("k", Integer),
            column("lot_id", BigInteger),
            column("amount", BigInteger),
            name="t",
        ).data([(k, t.lot_id, t.amount) for k, t in enumerate(p.takes)])
        # one INSERT in the plan's order, so allocation ids follow it as in the batch writer
        ctes.append(
            insert(PointsAllocation)
            .from_select(
                ["posting_id", "lot_id", "member_id", "amount"],
                select(spend.c.id, taken.c.lot_id, literal(p.member_id), taken.c.amount)
                .select_from(spend.join(taken, literal(True)))
                .order_by(taken.c.k),
            )
            .cte("alloc")
        )
    spent = -p.spend.available_delta if p.spend else 0
    earned = p.earn.available_delta if p.earn else 0
    if spent or earned:
        # the guard *is* the check (invariant 3): spent points must be there
        account = (
            update(PointsAccount)
            .where(PointsAccount.member_id == p.member_id, PointsAccount.available >= spent)
            .values(
                available=PointsAccount.available + (earned - spent),
                lifetime_earned=PointsAccount.lifetime_earned + earned,
                lifetime_redeemed=PointsAccount.lifetime_redeemed + spent,
            )
            .returning(PointsAccount.member_id)
            .cte("account")
        )
        ctes.append(account)
        out["account"] = _count(account)
    if p.growth:
        growth = (
            insert(GrowthPosting)
            .values(rows.growth_row(p))
            .returning(GrowthPosting.id)
            .cte("growth")
        )
        ins = postgresql.insert(GrowthAccount).values(
            member_id=p.member_id, balance=p.growth, lifetime_earned=p.growth, updated_at=p.now
        )
        grown = ins.on_conflict_do_update(
            index_elements=[GrowthAccount.member_id],
            set_={
                "balance": GrowthAccount.balance + ins.excluded.balance,
                "lifetime_earned": GrowthAccount.lifetime_earned + ins.excluded.lifetime_earned,
                "updated_at": ins.excluded.updated_at,
            },
        )
        ctes += [growth, grown.cte("growth_account")]
        out["growth_id"] = _id(growth)
    if p.tier_move is not None:
        tins = postgresql.insert(MemberTier).values(rows.tier_row(p))
        moved = tins.on_conflict_do_update(
            index_elements=[MemberTier.member_id],
            set_={c: tins.excluded[c] for c in rows.TIER_SET},
        )
        ctes += [
            moved.cte("tier"),
            insert(TierChange).values(rows.tier_change_row(actor, p)).cte("tier_change"),
        ]
    for k, (rule_id, points) in enumerate(p.budget_charges):
        ctes.append(
            update(RuleBudgetUsage)
            .where(RuleBudgetUsage.rule_id == rule_id)
            .values(points_used=RuleBudgetUsage.points_used + points, updated_at=p.now)
            .cte(f"budget{k}")
        )
    order = (
        insert(Order)
        .values(
            **p.order,
            earn_posting_id=out.get("earn_id"),
            spend_posting_id=out.get("spend_id"),
        )
        .returning(Order.id)
        .cte("ord")
    )
    ctes.append(order)
    out["order_id"] = _id(order)
    if p.lines:
        ctes.append(
            insert(OrderLine).values([rows.line_row(_id(order), ln) for ln in p.lines]).cte("ln")
        )
    if p.payments:
        ctes.append(
            insert(OrderPayment)
            .values([rows.payment_row(_id(order), pay) for pay in p.payments])
            .cte("pay")
        )
    ctes += _audits(actor, p, spend, earn)
    stmt: Select[Any] = select(*(v.label(k) for k, v in out.items())).add_cte(*ctes)
    row = session.execute(stmt).one()._mapping
    if any(row[f"take{k}"] != 1 for k in range(len(p.takes))):  # pragma: no cover
        raise RuntimeError("a lot changed under the ledger lock")
    if "account" in row and row["account"] != 1:
        raise InsufficientPoints(spent, 0)
    earn_id, spend_id = row.get("earn_id"), row.get("spend_id")
    written = rows.order_object(
        int(row["order_id"]),
        p,
        earn_id,
        spend_id,
        [rows.line_row(row["order_id"], ln) for ln in p.lines],
        [rows.payment_row(row["order_id"], pay) for pay in p.payments],
    )
    posting_ids = {(0, k): v for k, v in (("earn", earn_id), ("redeem", spend_id)) if v}
    growth_ids = {0: int(row["growth_id"])} if "growth_id" in row else {}
    rows.emit_events(session, [p], [written], posting_ids, growth_ids)
    return written


def _audits(actor: Principal, p: OrderPlan, spend: Any, earn: Any) -> list[Any]:
    """The plan's audit records; each names its posting, whose id only this statement knows."""
    entries = audit.rows(
        actor,
        [(e.action, "member", str(p.member_id), e.after, p.now) for e in p.audits],
    )
    out = []
    for entry, row in zip(p.audits, entries, strict=True):
        posting = spend if entry.action == "points.spend" else earn
        after = literal(row["after"], JSONB).op("||")(
            func.jsonb_build_object("posting_id", _id(posting))
        )
        out.append({**row, "after": after})
    # one INSERT in the plan's order, so ids follow it as in the batch writer
    return [insert(AuditRecord).values(out).cte("audit")] if out else []
