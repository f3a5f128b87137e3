"""One order plan in one statement (PostgreSQL): every row the plan writes — postings, lot,
lots taken and allocations, the points account, growth, tier, budgets, the order with its lines
and payments, and the audit records — as data-modifying CTEs of a single statement.

A request records one order at a time, and each statement is a round trip while the request
holds the member's lock; the set-based writer (``orders.writer``) serves batches. Guards are
the same as there: the account's and each lot's ``WHERE`` refuses what the balance cannot
cover; the statement returns how many rows each guard let through, and a refusal raises (the
request's unit of work rolls back everything, so nothing half-written stays).

The statement depends only on the plan's shape (which postings, how many lots taken, lines,
payments, budget charges, audit records, whether growth and a tier move): it is built and
compiled once per shape with bind parameters and kept, so an order costs neither building nor
compiling SQL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Select,
    String,
    bindparam,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler

from patron.audit import service as audit
from patron.audit.models import AuditRecord
from patron.auth.principal import Principal
from patron.db import UTCDateTime
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
from patron.webhooks import events

#: a part of the plan: (name, table model or None, its values by column)
Part = tuple[str, Any, dict[str, Any]]
#: values that are not a column of the part's table, by name
_TYPES: dict[str, Any] = {
    "spent": BigInteger(),
    "earned": BigInteger(),
    "amount": BigInteger(),
    "lot_id": BigInteger(),
    "member_id": BigInteger(),
    "points": BigInteger(),
    "rule_id": String(),
    "at": UTCDateTime(),
}
#: compiled statements by plan shape. SQLAlchemy's own cache cannot hold these (a multi-row
#: VALUES or a subquery among the values of an INSERT makes a statement uncacheable), so the
#: compiled SQL is kept here and run with its parameters converted by the statement's types.
_STATEMENTS: dict[tuple[Any, ...], SQLCompiler] = {}


def _parts(actor: Principal, p: OrderPlan) -> list[Part]:
    """The plan's values, part by part, in the order the statement writes them."""
    parts: list[Part] = []
    if p.spend is not None:
        parts.append(("spend", PointsPosting, rows.posting_row(p, p.spend)))
    if p.earn is not None:
        parts.append(("earn", PointsPosting, rows.posting_row(p, p.earn)))
        lot = rows.lot_row(p, None)
        del lot["posting_id"]
        parts.append(("lot", PointsLot, lot))
    for k, t in enumerate(p.takes):
        parts.append((f"take{k}", None, {"lot_id": t.lot_id, "amount": t.amount}))
    spent = -p.spend.available_delta if p.spend else 0
    earned = p.earn.available_delta if p.earn else 0
    if spent or earned:
        parts.append(
            ("account", None, {"member_id": p.member_id, "spent": spent, "earned": earned})
        )
    if p.growth:
        parts.append(("growth", GrowthPosting, rows.growth_row(p)))
        parts.append(
            (
                "growth_account",
                GrowthAccount,
                {"member_id": p.member_id, "balance": p.growth, "updated_at": p.now},
            )
        )
    if p.tier_move is not None:
        parts.append(("tier", MemberTier, rows.tier_row(p)))
        parts.append(("tier_change", TierChange, rows.tier_change_row(actor, p)))
    for k, (rule_id, points) in enumerate(p.budget_charges):
        parts.append((f"budget{k}", None, {"rule_id": rule_id, "points": points, "at": p.now}))
    parts.append(("ord", Order, dict(p.order)))
    for k, ln in enumerate(p.lines):
        line = rows.line_row(None, ln)
        del line["order_id"]
        parts.append((f"line{k}", OrderLine, line))
    for k, pay in enumerate(p.payments):
        payment = rows.payment_row(None, pay)
        del payment["order_id"]
        parts.append((f"pay{k}", OrderPayment, payment))
    entries = audit.rows(
        actor, [(e.action, "member", str(p.member_id), e.after, p.now) for e in p.audits]
    )
    for k, (entry, row) in enumerate(zip(p.audits, entries, strict=True)):
        # which posting the record names is part of the shape
        parts.append(
            (f"audit{k}{'s' if entry.action == 'points.spend' else 'e'}", AuditRecord, row)
        )
    return parts


def _bind(name: str, model: Any, values: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for column in values:
        if model is not None and column in model.__table__.c:
            type_ = model.__table__.c[column].type
        else:
            type_ = _TYPES[column]
        out[column] = bindparam(f"{name}__{column}", type_=type_)
    return out


def _id(cte: Any) -> Any:
    return select(cte.c.id).scalar_subquery()


def _count(cte: Any) -> Any:
    return select(func.count()).select_from(cte).scalar_subquery()


def _build(parts: list[Part]) -> Select[Any]:
    """The statement of plans of this shape, with a bind parameter for every value."""
    by = {name: _bind(name, model, values) for name, model, values in parts}
    ctes: list[Any] = []
    out: dict[str, Any] = {}
    spend = earn = None
    postings = [by[k] for k in ("spend", "earn") if k in by]
    if postings:
        # one INSERT in the plan's order (spend, then earn), so ids follow it as in the batch
        posted = (
            insert(PointsPosting)
            .values(postings)
            .returning(PointsPosting.id, PointsPosting.kind)
            .cte("posted")
        )
        ctes.append(posted)
        if "spend" in by:
            spend = select(posted.c.id).where(posted.c.kind == "redeem").subquery("spend")
            out["spend_id"] = _id(spend)
        if "earn" in by:
            earn = select(posted.c.id).where(posted.c.kind == "earn").subquery("earn")
            ctes.append(insert(PointsLot).values(**by["lot"], posting_id=_id(earn)).cte("lot"))
            out["earn_id"] = _id(earn)
    takes = sorted((n for n in by if n.startswith("take")), key=lambda n: int(n[4:]))
    for name in takes:
        t = by[name]
        take = (
            update(PointsLot)
            .where(PointsLot.id == t["lot_id"], PointsLot.remaining >= t["amount"])
            .values(remaining=PointsLot.remaining - t["amount"])
            .returning(PointsLot.id)
            .cte(name)
        )
        ctes.append(take)
        out[name] = _count(take)
    if takes:
        assert spend is not None
        # one INSERT in the plan's order, so allocation ids follow it as in the batch writer
        alloc = [
            {
                "posting_id": _id(spend),
                "lot_id": by[n]["lot_id"],
                "member_id": by["account"]["member_id"],
                "amount": by[n]["amount"],
            }
            for n in takes
        ]
        ctes.append(insert(PointsAllocation).values(alloc).cte("alloc"))
    if "account" in by:
        a = by["account"]
        # the guard *is* the check (invariant 3): spent points must be there
        account = (
            update(PointsAccount)
            .where(PointsAccount.member_id == a["member_id"], PointsAccount.available >= a["spent"])
            .values(
                available=PointsAccount.available + a["earned"] - a["spent"],
                lifetime_earned=PointsAccount.lifetime_earned + a["earned"],
                lifetime_redeemed=PointsAccount.lifetime_redeemed + a["spent"],
            )
            .returning(PointsAccount.member_id)
            .cte("account")
        )
        ctes.append(account)
        out["account"] = _count(account)
    if "growth" in by:
        growth = (
            insert(GrowthPosting).values(by["growth"]).returning(GrowthPosting.id).cte("growth")
        )
        g = by["growth_account"]
        ins = postgresql.insert(GrowthAccount).values(**g, lifetime_earned=g["balance"])
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
    if "tier" in by:
        tins = postgresql.insert(MemberTier).values(by["tier"])
        moved = tins.on_conflict_do_update(
            index_elements=[MemberTier.member_id],
            set_={c: tins.excluded[c] for c in rows.TIER_SET},
        )
        ctes += [moved.cte("tier"), insert(TierChange).values(by["tier_change"]).cte("tier_change")]
    for name in (n for n in by if n.startswith("budget")):
        b = by[name]
        ctes.append(
            update(RuleBudgetUsage)
            .where(RuleBudgetUsage.rule_id == b["rule_id"])
            .values(points_used=RuleBudgetUsage.points_used + b["points"], updated_at=b["at"])
            .cte(name)
        )
    order = (
        insert(Order)
        .values(
            **by["ord"],
            earn_posting_id=out.get("earn_id", literal(None, BigInteger())),
            spend_posting_id=out.get("spend_id", literal(None, BigInteger())),
        )
        .returning(Order.id)
        .cte("ord")
    )
    ctes.append(order)
    out["order_id"] = _id(order)
    lines = [{**by[n], "order_id": _id(order)} for n in by if n.startswith("line")]
    if lines:
        ctes.append(insert(OrderLine).values(lines).cte("ln"))
    pays = [{**by[n], "order_id": _id(order)} for n in by if n.startswith("pay")]
    if pays:
        ctes.append(insert(OrderPayment).values(pays).cte("pay"))
    audits = []
    for name in (n for n in by if n.startswith("audit")):
        posting = spend if name.endswith("s") else earn
        after = by[name]["after"].op("||")(func.jsonb_build_object("posting_id", _id(posting)))
        audits.append({**by[name], "after": after})
    if audits:
        # one INSERT in the plan's order, so ids follow it as in the batch writer
        ctes.append(insert(AuditRecord).values(audits).cte("audit"))
    return select(*(v.label(k) for k, v in out.items())).add_cte(*ctes)


def write_one(session: Session, actor: Principal, p: OrderPlan) -> Order:
    """Write one plan (the caller holds the member's lock, as for ``writer.write_plans``)."""
    parts = _parts(actor, p)
    shape = tuple((name, tuple(values)) for name, _, values in parts)
    dialect = session.get_bind().dialect
    cache_key = (dialect.driver, shape)
    compiled = _STATEMENTS.get(cache_key)
    if compiled is None:
        compiled = _STATEMENTS[cache_key] = _build(parts).compile(dialect=dialect)
    given = {f"{name}__{c}": v for name, _, values in parts for c, v in values.items()}
    # with the statement's own literals (e.g. a posting kind), converted by their types
    processors = cast(dict[str, Callable[[Any], Any]], compiled._bind_processors)
    params = {
        k: processors[k](v) if k in processors and v is not None else v
        for k, v in compiled.construct_params(given).items()
    }
    row = session.connection().exec_driver_sql(compiled.string, params).one()._mapping
    if any(row[n] != 1 for n in row if n.startswith("take")):  # pragma: no cover
        raise RuntimeError("a lot changed under the ledger lock")
    if "account" in row and row["account"] != 1:
        raise InsufficientPoints(-p.spend.available_delta if p.spend else 0, 0)
    earn_id, spend_id = row.get("earn_id"), row.get("spend_id")
    order_id = int(row["order_id"])
    written = rows.order_object(
        order_id,
        p,
        earn_id,
        spend_id,
        [rows.line_row(order_id, ln) for ln in p.lines],
        [rows.payment_row(order_id, pay) for pay in p.payments],
    )
    posting_ids = {(0, k): v for k, v in (("earn", earn_id), ("redeem", spend_id)) if v}
    growth_ids = {0: int(row["growth_id"])} if "growth_id" in row else {}
    events.emit_many(session, rows.plan_events([p], [written], posting_ids, growth_ids), p.now)
    return written
