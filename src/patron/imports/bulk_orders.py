"""Set-based writing of imported historical orders: the same results as recording them one by
one through ``orders.service.ingest_order``, in a few statements per batch instead of ~45 per
order.

Per batch: members, existing orders, the catalogue and each member's earning context (orders so
far, welcome bonus, points per business day, tier and window growth, rule budgets) are read with
one query each; the rules run in memory in file order, carrying that context forward (so the
first-purchase bonus, daily caps, budgets and an upgrade reached mid-batch apply as they would
order by order); then orders, lines, payments, postings, lots and growth are inserted with
executemany and the cached balances updated once per member.

Only members whose ledger needs no settling take this path: a member with points debt, pending
points due for release or lots due to expire, any order paying with points, a repeated order id
within the batch, or a program with a return window (pending points) go through the per-order
path instead. Imported orders do not emit webhooks; one audit record describes each batch.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from psycopg.types.json import Jsonb
from sqlalchemy import bindparam, func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from patron.audit import service as audit
from patron.auth.principal import Principal
from patron.catalog import service as catalog
from patron.errors import PatronError
from patron.ledger import domain as ledger_domain
from patron.ledger import service as ledger
from patron.ledger.models import (
    GrowthAccount,
    GrowthPosting,
    PointsAccount,
    PointsHold,
    PointsLot,
    PointsPosting,
)
from patron.members.models import Member
from patron.orders import service as orders
from patron.orders.models import Order, OrderLine, OrderPayment, RuleBudgetUsage
from patron.orders.schemas import OrderIn
from patron.rules.domain import EarnContext, EarningResult, EarnLine, evaluate_order
from patron.tiers import domain as tier_domain
from patron.tiers import service as tiers
from patron.tiers.models import MemberTier


@dataclass
class Item:
    """One parsed order of the batch: its row number and validated body."""

    row: int
    data: OrderIn


@dataclass
class _State:
    """What the rules need to know about a member, carried forward through the batch."""

    member: Member
    tier: str
    override: bool
    window_growth: int
    orders_before: int
    welcome_given: bool
    today: dict[date, int] = field(default_factory=dict)
    tier_moved: bool = False


@dataclass
class BulkOutcome:
    errors: list[tuple[int, str, str]]  # (row, field, reason)
    #: items the caller must record one by one (see the module docstring)
    per_order: list[Item]
    written: int = 0


def write(
    session: Session,
    actor: Principal,
    items: list[Item],
    members_by_no: dict[str, Member],
    *,
    now: datetime,
    tz: ZoneInfo,
) -> BulkOutcome:
    out = BulkOutcome([], [])
    ctx = orders.make_ctx(session, actor, now, tz)
    if ctx.settings.default_pending_days:
        out.per_order = items
        return out
    # 1. what each order is, and which ones must take the per-order path
    seen: set[tuple[str, str]] = set()
    existing = _existing_orders(session, items)
    candidates: list[Item] = []
    for item in items:
        key = (item.data.source, item.data.external_id)
        member = members_by_no.get(item.data.member_no)
        if (
            key in seen
            or key in existing
            or member is None
            or member.status != "active"
            or any(p.method == "points" for p in item.data.payments)
        ):
            out.per_order.append(item)  # replays, conflicts and errors are its to report
        else:
            candidates.append(item)
        seen.add(key)
    member_ids = sorted({members_by_no[i.data.member_no].id for i in candidates})
    unsettled = _lock_and_find_unsettled(session, member_ids, now)
    bulk = [i for i in candidates if members_by_no[i.data.member_no].id not in unsettled]
    out.per_order.extend(i for i in candidates if members_by_no[i.data.member_no].id in unsettled)
    if not bulk:
        return out
    # 2. the batch's context, one query each
    members = {m.id: m for m in (members_by_no[i.data.member_no] for i in bulk)}
    states = _states(session, ctx, members, bulk)
    products = catalog.products_by_sku(session, [ln.sku for i in bulk for ln in i.data.lines])
    stores = catalog.existing_store_codes(
        session, {i.data.store_code for i in bulk if i.data.store_code}
    )
    rules = orders.earning_rules(session)
    ladder = tiers.get_ladder(session)
    budgets = rules.budgeted_rules()
    used: dict[str, int] = {}
    if budgets:
        orders._ensure_budget_rows(session, sorted(budgets), now)
        used = {
            r.rule_id: r.points_used
            for r in session.scalars(
                select(RuleBudgetUsage)
                .where(RuleBudgetUsage.rule_id.in_(sorted(budgets)))
                .order_by(RuleBudgetUsage.rule_id)
                .with_for_update()
            )
        }
    budget_start = dict(used)
    expires_at = ledger_domain.compute_expiry(now, ctx.settings.expiry, tz)
    # 3. the rules, in file order
    rows: list[tuple[Item, _State, list[orders.LineCalc], EarningResult | None, str]] = []
    for item in bulk:
        data = item.data
        st = states[members_by_no[data.member_no].id]
        try:
            lines = _check(data, products, stores, now)
        except PatronError as exc:
            out.errors.append((item.row, str(exc.details.get("field", "*")), exc.message))
            continue
        result = None
        if data.earn:
            benefits = _benefits(ladder, st.tier)
            day = data.ordered_at.astimezone(tz).date()
            if day not in st.today:
                st.today[day] = 0
            result = evaluate_order(
                rules,
                EarnContext(
                    occurred_at=data.ordered_at,
                    lines=tuple(
                        EarnLine(category=ln.category, paid_fen=ln.paid_fen, sku=ln.sku)
                        for ln in lines
                    ),
                    tier_code=st.tier,
                    tier_multiplier_bp=benefits.points_multiplier_bp,
                    member_since=st.member.created_at,
                    is_first_purchase=st.orders_before == 0,
                    welcome_bonus_awarded=st.welcome_given,
                    points_earned_today=st.today[day],
                    budget_used=used,
                ),
                tz=tz,
            )
            st.today[day] += result.points
            for c in result.points_trace:
                if c.rule_id in budgets and c.points > 0:
                    used[c.rule_id] = used.get(c.rule_id, 0) + c.points
            if any(c.rule_id == rules.welcome.id and c.points > 0 for c in result.points_trace):
                st.welcome_given = True
            st.window_growth += result.growth
            up = tier_domain.upgrade_target(ladder, st.tier, st.window_growth)
            if result.growth and up is not None and not st.override:
                st.tier, st.tier_moved = up.code, True
        st.orders_before += 1
        digest = orders.content_hash(data.model_dump(mode="json"))
        rows.append((item, st, lines, result, digest))
    # 4. the writes
    _insert(session, ctx, rows, expires_at, rules.welcome.id, rules.first_purchase.id)
    for rule_id, total in used.items():
        if total != budget_start.get(rule_id, 0):
            session.execute(
                update(RuleBudgetUsage)
                .where(RuleBudgetUsage.rule_id == rule_id)
                .values(points_used=total, updated_at=now)
                .execution_options(synchronize_session=False)
            )
    for st in states.values():
        if st.tier_moved:
            tiers.on_growth_change(session, ctx, st.member.id)
    out.written = len(rows)
    audit.record(
        session,
        actor,
        "orders.import_batch",
        "import",
        f"{rows[0][0].row}-{rows[-1][0].row}" if rows else "-",
        None,
        {
            "orders": len(rows),
            "points": sum(r[3].points for r in rows if r[3]),
            "growth": sum(r[3].growth for r in rows if r[3]),
        },
        at=now,
    )
    return out


# --------------------------------------------------------------------------- reading

_GROWING = (
    "members",
    "orders",
    "order_lines",
    "points_accounts",
    "points_postings",
    "points_lots",
    "growth_accounts",
    "growth_postings",
)


def refresh_statistics(session: Session) -> None:
    """ANALYZE the tables an import grows (PostgreSQL). An import can multiply a table's size
    within minutes, long before autovacuum looks at it; with stale statistics the batch queries
    above turn into sequential scans. The importer calls this after batches 1, 4, 16, 64 …"""
    if ledger.dialect(session) == "postgresql":
        session.execute(text(f"ANALYZE {', '.join(_GROWING)}"))


def _existing_orders(session: Session, items: list[Item]) -> set[tuple[str, str]]:
    by_source: dict[str, set[str]] = defaultdict(set)
    for i in items:
        by_source[i.data.source].add(i.data.external_id)
    found: set[tuple[str, str]] = set()
    for source, ids in by_source.items():
        found.update(
            (source, ext)
            for ext in session.scalars(
                select(Order.external_id).where(
                    Order.source == source, Order.external_id.in_(sorted(ids))
                )
            )
        )
    return found


def _lock_and_find_unsettled(session: Session, member_ids: list[int], now: datetime) -> set[int]:
    """Take the members' ledger locks in id order; return those whose ledger needs settling."""
    if not member_ids:
        return set()
    # The same locks as every ledger write (the account rows), taken in member order.
    dialect = ledger.dialect(session)
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(PointsAccount)
    session.execute(
        ins.on_conflict_do_nothing(), [ledger.new_account(mid, now) for mid in member_ids]
    )
    lock = (
        select(PointsAccount.member_id)
        .where(PointsAccount.member_id.in_(member_ids))
        .order_by(PointsAccount.member_id)
    )
    if dialect == "postgresql":
        session.execute(lock.with_for_update()).all()
    debt = session.scalars(
        select(PointsAccount.member_id).where(
            PointsAccount.member_id.in_(member_ids), PointsAccount.debt > 0
        )
    )
    holds = session.scalars(
        select(PointsHold.member_id).where(
            PointsHold.member_id.in_(member_ids),
            PointsHold.status == "pending",
            PointsHold.release_at <= now,
        )
    )
    lots = session.scalars(
        select(PointsLot.member_id).where(
            PointsLot.member_id.in_(member_ids),
            PointsLot.remaining > 0,
            PointsLot.expires_at <= now,
        )
    )
    return set(debt) | set(holds) | set(lots)


def _states(
    session: Session, ctx: ledger.Ctx, members: dict[int, Member], bulk: list[Item]
) -> dict[int, _State]:
    ids = sorted(members)
    ladder = tiers.get_ladder(session)
    start = tier_domain.window_start(ladder.qualification_window, ctx.now, ctx.tz)
    growth = dict(
        session.execute(
            select(GrowthPosting.member_id, func.sum(GrowthPosting.amount))
            .where(GrowthPosting.member_id.in_(ids), GrowthPosting.effective_at >= start)
            .group_by(GrowthPosting.member_id)
        ).all()
    )
    counts = {
        r[0]: (int(r[1]), int(r[2]))
        for r in session.execute(
            select(Order.member_id, func.count(Order.id), func.sum(Order.welcome_bonus))
            .where(Order.member_id.in_(ids))
            .group_by(Order.member_id)
        )
    }
    tier_rows = {
        r.member_id: r
        for r in session.scalars(select(MemberTier).where(MemberTier.member_id.in_(ids)))
    }
    out: dict[int, _State] = {}
    for mid, member in members.items():
        row = tier_rows.get(mid)
        code = row.tier_code if row else ladder.base.code
        try:
            ladder.index(code)
        except KeyError:
            code = ladder.base.code
        n, welcome = counts.get(mid, (0, 0))
        out[mid] = _State(
            member=member,
            tier=code,
            override=bool(row and row.override_until and row.override_until > ctx.now),
            window_growth=int(growth.get(mid) or 0),
            orders_before=n,
            welcome_given=welcome > 0,
        )
    days = {(i.data.ordered_at.astimezone(ctx.tz).date()) for i in bulk}
    for mid, day, total in session.execute(
        select(Order.member_id, Order.business_date, func.sum(Order.points_earned))
        .where(Order.member_id.in_(ids), Order.business_date.in_(sorted(days)))
        .group_by(Order.member_id, Order.business_date)
    ):
        out[mid].today[day] = int(total or 0)
    return out


def _benefits(ladder: tier_domain.TierLadder, code: str) -> tier_domain.TierBenefits:
    for tier in ladder.tiers:
        if tier.code == code:
            return tier.benefits
    return ladder.tiers[0].benefits


def _check(
    data: OrderIn, products: dict[str, Any], stores: set[str], now: datetime
) -> list[orders.LineCalc]:
    """The checks ``ingest_order`` makes, against the batch's catalogue (no points payments)."""
    lines = orders.check_order(data, products, stores.__contains__, now)
    for ln in lines:
        ln.points_fen, ln.points, ln.paid_fen = 0, 0, ln.net_fen
    return lines


# --------------------------------------------------------------------------- writing


def _new_ids(session: Session, model: Any, n: int) -> list[int]:
    """Reserve ``n`` ids so rows can refer to each other before they are written."""
    table = model.__table__.name
    if ledger.dialect(session) == "postgresql":
        return [
            int(i)
            for i in session.scalars(
                text(
                    "SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"
                ),
                {"t": table, "n": n},
            )
        ]
    # SQLite: this transaction holds the database's write lock (taken with the account rows)
    start = int(session.scalar(text(f"SELECT coalesce(max(id), 0) FROM {table}")) or 0)
    return list(range(start + 1, start + n + 1))


def _write_rows(session: Session, model: Any, rows: list[dict[str, Any]]) -> None:
    """COPY on PostgreSQL, executemany elsewhere; every row has the same keys (column names)."""
    if not rows:
        return
    if ledger.dialect(session) != "postgresql":
        session.execute(insert(model), rows)
        return
    cols = list(rows[0])
    raw = session.connection().connection.driver_connection
    assert raw is not None
    sql = f"COPY {model.__table__.name} ({', '.join(cols)}) FROM STDIN"
    with raw.cursor() as cur, cur.copy(sql) as copy:
        for row in rows:
            copy.write_row([Jsonb(v) if isinstance(v, dict) else v for v in row.values()])


def _insert(
    session: Session,
    ctx: ledger.Ctx,
    rows: list[tuple[Item, _State, list[orders.LineCalc], EarningResult | None, str]],
    expires_at: datetime | None,
    welcome_id: str,
    first_id: str,
) -> None:
    if not rows:
        return
    now, label = ctx.now, ctx.actor.label[:120]
    # postings first: the orders refer to them
    earning = [r for r in rows if r[3] is not None and r[3].points]
    posting_ids: dict[int, int] = {}
    if earning:
        values = []
        for item, _st, _lines, result, _d in earning:
            d = item.data
            source_id = f"{d.source}:{d.external_id}"
            where = f"{d.channel} {d.store_code}" if d.store_code else d.channel
            assert result is not None
            values.append(
                {
                    "member_id": _st.member.id,
                    "kind": "earn",
                    "available_delta": result.points,
                    "pending_delta": 0,
                    "debt_delta": 0,
                    "reason": f"order {d.external_id} ({where}): {', '.join(result.rule_ids())}"[
                        :200
                    ],
                    "source_type": "order",
                    "source_id": source_id,
                    "idempotency_key": f"earn:order:{source_id}",
                    "reverses_id": None,
                    "actor": label,
                    "created_at": now,
                }
            )
        ids = _new_ids(session, PointsPosting, len(values))
        for v, pid in zip(values, ids, strict=True):
            v["id"] = pid
        for (item, *_), pid in zip(earning, ids, strict=True):
            posting_ids[item.row] = pid
        _write_rows(session, PointsPosting, values)
        _write_rows(
            session,
            PointsLot,
            [
                {
                    "member_id": v["member_id"],
                    "posting_id": v["id"],
                    "amount": v["available_delta"],
                    "remaining": v["available_delta"],
                    "earned_at": now,
                    "expires_at": expires_at,
                    "source_type": "order",
                    "source_id": v["source_id"],
                }
                for v in values
            ],
        )
    order_values = []
    for item, st, lines, result, digest in rows:
        d = item.data
        given = {c.rule_id: c.points for c in result.points_trace} if result else {}
        total = sum(ln.net_fen for ln in lines)
        order_values.append(
            {
                "member_id": st.member.id,
                "source": d.source,
                "external_id": d.external_id,
                "channel": d.channel,
                "store_code": d.store_code,
                "ordered_at": d.ordered_at.astimezone(UTC),
                "business_date": d.ordered_at.astimezone(ctx.tz).date(),
                "status": "completed",
                "list_total_fen": sum(ln.unit_price_fen * ln.quantity for ln in lines),
                "discount_fen": sum(ln.discount_fen for ln in lines),
                "total_fen": total,
                "points_used": 0,
                "points_fen": 0,
                "paid_fen": total,
                "points_earned": result.points if result else 0,
                "growth_earned": result.growth if result else 0,
                "welcome_bonus": given.get(welcome_id, 0),
                "first_purchase": given.get(first_id, 0) > 0,
                "earn_posting_id": posting_ids.get(item.row),
                "spend_posting_id": None,
                "rules_trace": orders.trace(
                    result, "" if d.earn else "historical order recorded without earning"
                ),
                "content_hash": digest,
                "refunded_fen": 0,
                "created_at": now,
            }
        )
    order_ids = _new_ids(session, Order, len(order_values))
    for v, oid in zip(order_values, order_ids, strict=True):
        v["id"] = oid
    _write_rows(session, Order, order_values)
    _write_rows(
        session,
        OrderLine,
        [
            {
                "order_id": oid,
                "line_no": ln.line_no,
                "sku": ln.sku,
                "category": ln.category,
                "quantity": ln.quantity,
                "unit_price_fen": ln.unit_price_fen,
                "discount_fen": ln.discount_fen,
                "net_fen": ln.net_fen,
                "points_fen": 0,
                "points": 0,
                "paid_fen": ln.paid_fen,
                "returned_quantity": 0,
                "refunded_fen": 0,
                "refunded_points": 0,
            }
            for (_i, _s, lines, _r, _d), oid in zip(rows, order_ids, strict=True)
            for ln in lines
        ],
    )
    _write_rows(
        session,
        OrderPayment,
        [
            {"order_id": oid, "method": p.method, "amount_fen": p.amount_fen, "points": 0}
            for (item, *_), oid in zip(rows, order_ids, strict=True)
            for p in item.data.payments
        ],
    )
    # growth postings and the cached balances, once per member
    growth_values = [
        {
            "member_id": st.member.id,
            "kind": "earn",
            "amount": result.growth,
            "effective_at": now,
            "reason": f"order {item.data.external_id}"[:200],
            "source_type": "order",
            "source_id": f"{item.data.source}:{item.data.external_id}",
            "idempotency_key": f"earn:order:{item.data.source}:{item.data.external_id}",
            "actor": label,
            "created_at": now,
        }
        for item, st, _l, result, _d in rows
        if result is not None and result.growth
    ]
    points: dict[int, int] = defaultdict(int)
    growth: dict[int, int] = defaultdict(int)
    for _i, st, _l, result, _d in rows:
        if result is not None:
            points[st.member.id] += result.points
            growth[st.member.id] += result.growth
    if growth_values:
        ins = (postgresql.insert if ledger.dialect(session) == "postgresql" else sqlite.insert)(
            GrowthAccount
        )
        session.execute(
            ins.on_conflict_do_nothing(),
            [
                {"member_id": mid, "balance": 0, "lifetime_earned": 0, "updated_at": now}
                for mid in sorted(m for m, g in growth.items() if g)
            ],
        )
        _write_rows(session, GrowthPosting, growth_values)
        session.connection().execute(
            update(GrowthAccount)
            .where(GrowthAccount.member_id == bindparam("mid"))
            .values(
                balance=GrowthAccount.balance + bindparam("delta"),
                lifetime_earned=GrowthAccount.lifetime_earned + bindparam("delta"),
                updated_at=now,
            ),
            [{"mid": m, "delta": g} for m, g in sorted(growth.items()) if g],
        )
    if any(points.values()):
        session.connection().execute(
            update(PointsAccount)
            .where(PointsAccount.member_id == bindparam("mid"))
            .values(
                available=PointsAccount.available + bindparam("delta"),
                lifetime_earned=PointsAccount.lifetime_earned + bindparam("delta"),
            ),
            [{"mid": m, "delta": p} for m, p in sorted(points.items()) if p],
        )
