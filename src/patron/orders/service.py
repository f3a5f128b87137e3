"""Orders from POS and shops, the checkout, and returns — wired to the rules and the ledger.

Everything for one order happens in the caller's transaction: the order rows, the points
payment (a ledger spend), the earning (a ledger earn with its rule trace) and budget usage.
Lock order: the member's points account (taken by the ledger) first, then rule budgets.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import astuple, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session, lazyload, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from patron import context
from patron.auth.principal import Principal
from patron.catalog import service as catalog
from patron.db import advisory_lock
from patron.errors import Conflict, Invalid, NotFound
from patron.ledger import flows
from patron.ledger import jobs as ledger_jobs
from patron.ledger import service as ledger
from patron.ledger.service import Ctx
from patron.members.models import Member
from patron.members.service import get_member
from patron.orders import domain, facts, plan, pricing, writer
from patron.orders.models import (
    LINES_AND_PAYMENTS,
    Order,
    OrderLine,
    OrderPayment,
    OrderReturn,
    RuleBudgetUsage,
)
from patron.orders.schemas import OrderIn
from patron.program import service as program_service
from patron.rules.definitions import CampaignWindows, EarningRules
from patron.rules.domain import EarnContext, EarningResult, EarnLine, evaluate_order
from patron.tiers import service as tiers
from patron.tiers.domain import TierBenefits
from patron.webhooks import events
from patron.webhooks import service as webhooks

PRICING_SECTION = context.PRICING_SECTION
EARNING_SECTION = context.EARNING_SECTION
#: written by the campaigns (``patron.campaigns.service.compile_windows``), read with the rules
CAMPAIGN_WINDOWS_SECTION = context.CAMPAIGN_WINDOWS_SECTION
#: every program section recording an order reads
ORDER_SECTIONS = context.SECTIONS
BP = 10_000
FUTURE_TOLERANCE = timedelta(minutes=5)


def pricing_settings(session: Session) -> pricing.PricingSettings:
    return program_service.get_section(session, PRICING_SECTION, pricing.PricingSettings)


def earning_rules(session: Session) -> EarningRules:
    return program_service.get_section(session, EARNING_SECTION, EarningRules)


def rules_in_force(session: Session) -> EarningRules:
    """The operator's earning rules plus the windows the campaigns compiled (docs/campaigns.md);
    both sections come with the one preload of ``make_ctx``."""
    windows = program_service.get_section(session, CAMPAIGN_WINDOWS_SECTION, CampaignWindows)
    return windows.merged(earning_rules(session))


#: the context of a request that records orders (``patron.context.build``)
make_ctx = context.build


def content_hash(data: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class LineCalc:
    line_no: int
    sku: str
    category: str
    quantity: int
    unit_price_fen: int
    discount_fen: int
    net_fen: int
    points_fen: int = 0
    points: int = 0
    paid_fen: int = 0


def member_tier(session: Session, ctx: Ctx, member_id: int) -> tuple[str, TierBenefits]:
    code = tiers.state(session, ctx, member_id).code
    ladder = tiers.get_ladder(session)
    for tier in ladder.tiers:
        if tier.code == code:
            return code, tier.benefits
    return ladder.tiers[0].code, ladder.tiers[0].benefits


def active_member(session: Session, member_no: str) -> Member:
    # consents and tags are not needed to record an order: load them only if touched
    member = session.scalar(
        select(Member).options(lazyload("*")).where(Member.member_no == member_no)
    ) or get_member(session, member_no)  # (the latter raises the usual 404)
    check_active(member)
    return member


def check_active(member: Member) -> None:
    if member.status != "active":
        raise Conflict(
            "member_not_active",
            f"Member {member.member_no} is {member.status}; orders cannot be recorded.",
        )


# ---- earning ---------------------------------------------------------------------------------


def evaluate_earning(
    session: Session,
    ctx: Ctx,
    member: Member,
    *,
    occurred_at: datetime,
    lines: tuple[EarnLine, ...],
    tier_code: str,
    benefits: TierBenefits,
    lock_budgets: bool,
) -> EarningResult:
    rules = rules_in_force(session)
    day = occurred_at.astimezone(ctx.tz).date()
    earlier = session.execute(
        select(func.count(Order.id), func.coalesce(func.sum(Order.welcome_bonus), 0)).where(
            Order.member_id == member.id
        )
    ).one()
    today = session.scalar(
        select(func.coalesce(func.sum(Order.points_earned), 0)).where(
            Order.member_id == member.id, Order.business_date == day
        )
    )
    budgets = rules.budgeted_rules()
    used: dict[str, int] = {}
    if budgets:
        if lock_budgets:
            _ensure_budget_rows(session, sorted(budgets), ctx.now)
        q = select(RuleBudgetUsage).where(RuleBudgetUsage.rule_id.in_(sorted(budgets)))
        if lock_budgets:
            q = q.order_by(RuleBudgetUsage.rule_id).with_for_update()
        used = {r.rule_id: r.points_used for r in session.scalars(q)}
    ctx_in = EarnContext(
        occurred_at=occurred_at,
        lines=lines,
        tier_code=tier_code,
        tier_multiplier_bp=benefits.points_multiplier_bp,
        member_since=member.created_at,
        is_first_purchase=int(earlier[0]) == 0,
        welcome_bonus_awarded=int(earlier[1]) > 0,
        points_earned_today=int(today or 0),
        budget_used=used,
        member_id=member.id,
        birthday=member.birthday,
    )
    return evaluate_order(rules, ctx_in, tz=ctx.tz)


def _ensure_budget_rows(session: Session, rule_ids: list[str], now: datetime) -> None:
    existing = set(
        session.scalars(
            select(RuleBudgetUsage.rule_id).where(RuleBudgetUsage.rule_id.in_(rule_ids))
        )
    )
    for rule_id in rule_ids:
        if rule_id not in existing:
            session.add(RuleBudgetUsage(rule_id=rule_id, points_used=0, updated_at=now))
    session.flush()


def _charge_budgets(session: Session, result: EarningResult, now: datetime) -> None:
    budgets = rules_in_force(session).budgeted_rules()
    for c in result.points_trace:
        if c.rule_id in budgets and c.points > 0:
            row = session.get(RuleBudgetUsage, c.rule_id)
            if row is not None:
                row.points_used += c.points
                row.updated_at = now
    session.flush()


#: the rule trace stored on an order (and shown by a quote)
trace = plan.trace


# ---- recording an order ----------------------------------------------------------------------


def record_order(
    session: Session,
    ctx: Ctx,
    member: Member,
    *,
    source: str,
    external_id: str,
    channel: str,
    store_code: str | None,
    ordered_at: datetime,
    lines: list[LineCalc],
    payments: list[tuple[str, int, int]],
    points_used: int,
    earn: bool,
    digest: str,
) -> Order:
    # The ledger locks the member's account first; everything below is serialised per member.
    ledger.begin(session, ctx, member.id)
    tier_code, benefits = member_tier(session, ctx, member.id)
    result: EarningResult | None = None
    if earn:
        result = evaluate_earning(
            session,
            ctx,
            member,
            occurred_at=ordered_at,
            lines=tuple(
                EarnLine(category=ln.category, paid_fen=ln.paid_fen, sku=ln.sku) for ln in lines
            ),
            tier_code=tier_code,
            benefits=benefits,
            lock_budgets=True,
        )
    total = sum(ln.net_fen for ln in lines)
    points_fen = sum(ln.points_fen for ln in lines)
    rules = earning_rules(session)
    given = {c.rule_id: c.points for c in result.points_trace} if result else {}
    welcome = given.get(rules.welcome.id, 0)
    order = Order(
        member_id=member.id,
        source=source,
        external_id=external_id,
        channel=channel,
        store_code=store_code,
        ordered_at=ordered_at.astimezone(UTC),
        business_date=ordered_at.astimezone(ctx.tz).date(),
        status="completed",
        list_total_fen=sum(ln.unit_price_fen * ln.quantity for ln in lines),
        discount_fen=sum(ln.discount_fen for ln in lines),
        total_fen=total,
        points_used=points_used,
        points_fen=points_fen,
        paid_fen=total - points_fen,
        points_earned=result.points if result else 0,
        growth_earned=result.growth if result else 0,
        welcome_bonus=welcome,
        first_purchase=given.get(rules.first_purchase.id, 0) > 0,
        rules_trace=trace(result, "" if earn else "historical order recorded without earning"),
        content_hash=digest,
        refunded_fen=0,
        created_at=ctx.now,
    )
    session.add(order)
    session.flush()
    rows = [
        OrderLine(
            order_id=order.id,
            line_no=ln.line_no,
            sku=ln.sku,
            category=ln.category,
            quantity=ln.quantity,
            unit_price_fen=ln.unit_price_fen,
            discount_fen=ln.discount_fen,
            net_fen=ln.net_fen,
            points_fen=ln.points_fen,
            points=ln.points,
            paid_fen=ln.paid_fen,
            returned_quantity=0,
            refunded_fen=0,
            refunded_points=0,
        )
        for ln in lines
    ]
    paid = [
        OrderPayment(order_id=order.id, method=method, amount_fen=amount, points=pts)
        for method, amount, pts in payments
    ]
    session.add_all([*rows, *paid])
    session.flush()
    # the order's lines and payments as written (its relationships never lazy-load)
    set_committed_value(order, "lines", rows)
    set_committed_value(order, "payments", paid)
    source_id = f"{source}:{external_id}"
    where = f"{channel} {store_code}" if store_code else channel
    if points_used:
        spent = flows.spend(
            session,
            ctx,
            member.id,
            points=points_used,
            source_type="order",
            source_id=source_id,
            reason=f"paid order {external_id} ({where})",
        )
        order.spend_posting_id = spent.posting_id
    if result is not None and (result.points or result.growth):
        if result.points:
            earned = flows.earn(
                session,
                ctx,
                member.id,
                points=result.points,
                growth_value=result.growth,
                source_type="order",
                source_id=source_id,
                reason=f"order {external_id} ({where}): {', '.join(result.rule_ids())}"[:200],
            )
            order.earn_posting_id = earned.posting.posting_id
        else:
            from patron.ledger import growth

            growth.earn(
                session,
                ctx,
                member.id,
                result.growth,
                source_type="order",
                source_id=source_id,
                reason=f"order {external_id}",
            )
            tiers.on_growth_change(session, ctx, member.id)
        _charge_budgets(session, result, ctx.now)
    session.flush()
    _emit_recorded(session, ctx, member, order)
    return order


def _emit_recorded(session: Session, ctx: Ctx, member: Member, order: Order) -> None:
    webhooks.emit(
        session, "order.recorded", events.order_recorded_payload(member.member_no, order), ctx.now
    )
    # The order's postings and tier move announce themselves (points.*, growth.*, tier.changed).


def find_order(session: Session, source: str, external_id: str) -> Order | None:
    return session.scalar(
        select(Order)
        .options(*LINES_AND_PAYMENTS)
        .where(Order.source == source, Order.external_id == external_id)
        .execution_options(populate_existing=True)
    )


def lock_order(session: Session, source: str, external_id: str) -> None:
    """Everything that touches one order (recording it, its returns) runs one at a time, so a
    retry racing the original sees it committed and replays instead of failing."""
    advisory_lock(session, f"order:{source}:{external_id}")


def replay_or_conflict(order: Order, digest: str) -> Order:
    if order.content_hash != digest:
        raise Conflict(
            "order_conflict",
            f"Order {order.external_id} from {order.source} was already received with different "
            "content; send a new external_id for a new order.",
        )
    return order


def ingest_order(
    session: Session,
    actor: Principal,
    data: OrderIn,
    *,
    now: datetime,
    tz: ZoneInfo,
    max_backdate_days: int | None = None,
    dated_at_order: bool = False,
) -> tuple[Order, bool]:
    """Record an order computed by a POS or shop. Returns (order, replayed). With
    ``max_backdate_days`` a new order that earns may be at most that old (a retry of an order
    already recorded still replays, however late it comes). ``dated_at_order``: imported
    history, see ``plan.plan_order``."""
    return ingest(
        session, make_ctx(session, actor, now, tz), data, max_backdate_days, dated_at_order
    )


def ingest(
    session: Session,
    ctx: Ctx,
    data: OrderIn,
    max_backdate_days: int | None = None,
    dated_at_order: bool = False,
) -> tuple[Order, bool]:
    digest = content_hash(data.model_dump(mode="json"))
    lock_order(session, data.source, data.external_id)
    arrived = facts.arrival(
        session,
        data.member_no,
        data.source,
        data.external_id,
        data.store_code,
        [ln.sku for ln in data.lines],
    )
    if arrived.member is None or arrived.existing_order_id is not None:
        existing = find_order(session, data.source, data.external_id)
        if existing is not None:
            return replay_or_conflict(existing, digest), True
    if max_backdate_days is not None:
        domain.check_backdating(
            data.ordered_at, ctx.now, max_days=max_backdate_days, earn=data.earn
        )
    member = arrived.member or get_member(session, data.member_no)  # (the latter: 404)
    check_active(member)
    lines = check_order(
        data,
        arrived.categories,
        lambda _code: arrived.store_known,
        ctx.now,
    )
    points_used, points_fen = check_points_payment(data, lines, pricing_settings(session))
    _split_points(lines, points_fen, points_used)
    order = commit_order(
        session,
        ctx,
        member,
        plan.OrderInput(
            source=data.source,
            external_id=data.external_id,
            channel=data.channel,
            store_code=data.store_code,
            ordered_at=data.ordered_at,
            lines=tuple(plan.PlanLine(**vars(ln)) for ln in lines),
            payments=tuple((p.method, p.amount_fen, p.points or 0) for p in data.payments),
            points_used=points_used,
            earn=data.earn,
            digest=digest,
        ),
        dated_at_order=dated_at_order,
    )
    return order, False


def check_points_payment(
    data: OrderIn, lines: list[LineCalc], settings: pricing.PricingSettings
) -> tuple[int, int]:
    """The points and their value in fen that pay for the order, checked against the pricing
    settings. Returns (points, fen)."""
    total = sum(ln.net_fen for ln in lines)
    points_used = 0
    points_fen = 0
    for p in data.payments:
        if p.method == "points":
            if (
                p.points is None
                or settings.points_value_fen(p.points) != p.amount_fen
                or (p.points % settings.effective_step())
            ):
                raise Invalid(
                    "points_value_mismatch",
                    f"{p.points} points are worth {settings.points_value_fen(p.points or 0)} fen "
                    f"({settings.points_per_unit} points = {settings.unit_fen} fen), not "
                    f"{p.amount_fen}.",
                    details={"field": "payments"},
                )
            points_used += p.points
            points_fen += p.amount_fen
        elif p.points is not None:
            raise Invalid(
                "points_on_non_points_payment",
                "Only a payment with method 'points' carries points.",
                details={"field": "payments"},
            )
    if points_fen * BP > total * settings.max_points_share_bp:
        raise Invalid(
            "points_share_exceeded",
            f"Points may pay at most {settings.max_points_share_bp / 100:g}% of an order.",
            details={"field": "payments"},
        )
    return points_used, points_fen


# ---- plan, then write ------------------------------------------------------------------------


def order_settings(session: Session) -> plan.Settings:
    """The sections an order reads (preloaded by ``make_ctx``: no statement here)."""
    program_service.preload(session, ORDER_SECTIONS)
    return plan.Settings(
        points=ledger.get_points_settings(session),
        earning=rules_in_force(session),
        ladder=tiers.get_ladder(session),
    )


def gather(
    session: Session,
    ctx: Ctx,
    member: Member,
    data: plan.OrderInput,
    window_at: datetime | None = None,
) -> tuple[plan.Settings, plan.MemberFacts]:
    """Lock the member's ledger and read the order's facts: two statements (plus the rule
    budget rows when rules have budgets)."""
    settings = order_settings(session)
    account = facts.lock_account(session, member.id, ctx.now)
    member_facts = facts.member_facts(
        session,
        member,
        account,
        settings,
        now=ctx.now,
        day=plan.business_date(data.ordered_at, ctx.tz),
        tz=ctx.tz,
        budgets=sorted(settings.earning.budgeted_rules()) if data.earn else [],
        source_id=f"{data.source}:{data.external_id}",
        window_at=window_at,
    )
    return settings, member_facts


def commit_order(
    session: Session,
    ctx: Ctx,
    member: Member,
    data: plan.OrderInput,
    gathered: tuple[plan.Settings, plan.MemberFacts] | None = None,
    earning: EarningResult | None = None,
    *,
    dated_at_order: bool = False,
) -> Order:
    """Plan the order from its facts and write it; a member whose ledger needs settling (or a
    program with a return window) takes the general path, ``record_order``, which dates the
    order's ledger history at ``ctx.now`` even for imported history."""
    settings, member_facts = gathered or gather(
        session, ctx, member, data, data.ordered_at if dated_at_order else None
    )
    if plan.needs_general_path(member_facts, settings):
        return record_order(
            session,
            ctx,
            member,
            source=data.source,
            external_id=data.external_id,
            channel=data.channel,
            store_code=data.store_code,
            ordered_at=data.ordered_at,
            lines=[LineCalc(*astuple(ln)) for ln in data.lines],
            payments=list(data.payments),
            points_used=data.points_used,
            earn=data.earn,
            digest=data.digest,
        )
    if data.earn and earning is None:
        earning = plan.evaluate(
            member_facts,
            settings,
            occurred_at=data.ordered_at,
            lines=tuple(
                EarnLine(category=ln.category, paid_fen=ln.paid_fen, sku=ln.sku)
                for ln in data.lines
            ),
            tz=ctx.tz,
        )
    lots = facts.open_lots(session, member.id) if data.points_used else ()
    planned = plan.plan_order(
        data,
        member_facts,
        settings,
        earning=earning,
        open_lots=lots,
        actor=ctx.actor.label,
        now=ctx.now,
        tz=ctx.tz,
        dated_at_order=dated_at_order,
    )
    [order] = writer.write_plans(session, ctx.actor, [planned])
    if planned.lot_expires_at is not None and planned.lot_expires_at <= ctx.now:
        # history dated so far back that its lot is already past its expiry: it expires now,
        # as an import batch's do (one expiry posting for the member's due lots)
        ledger_jobs.expire_batch(session, ctx.now, member.id - 1, 1, member.id)
    return order


def check_order(
    data: OrderIn,
    categories: Mapping[str, str],
    store_known: Callable[[str], bool],
    now: datetime,
) -> list[LineCalc]:
    """The checks of an incoming order that need no ledger: its time, store, lines against the
    catalogue (``categories``: category code by SKU) and that the payments add up. Returns the
    priced lines."""
    if data.ordered_at > now + FUTURE_TOLERANCE:
        raise Invalid(
            "ordered_at_in_future", "ordered_at is in the future.", details={"field": "ordered_at"}
        )
    check_store_code(data.channel, data.store_code, store_known)
    lines = order_lines(data, categories)
    total = sum(ln.net_fen for ln in lines)
    paid = sum(p.amount_fen for p in data.payments)
    if paid != total:
        raise Invalid(
            "payments_mismatch",
            f"Payments add up to {paid} fen but the lines to {total} fen.",
            details={"field": "payments", "lines_total_fen": total, "payments_total_fen": paid},
        )
    return lines


def check_store(session: Session, channel: str, store_code: str | None) -> None:
    check_store_code(channel, store_code, lambda code: catalog.store_exists(session, code))


def check_store_code(
    channel: str, store_code: str | None, store_known: Callable[[str], bool]
) -> None:
    if store_code is None:
        if channel == "store":
            raise Invalid(
                "store_required",
                "Orders from channel 'store' need a store_code.",
                details={"field": "store_code"},
            )
        return
    if not store_known(store_code):
        raise Invalid(
            "unknown_store", f"No store with code {store_code}.", details={"field": "store_code"}
        )


def order_lines(data: OrderIn, categories: Mapping[str, str]) -> list[LineCalc]:
    """The order's lines priced as sent, checked against the catalogue (``categories``:
    category code by SKU)."""
    numbers = [ln.line_no or i for i, ln in enumerate(data.lines, start=1)]
    if len(set(numbers)) != len(numbers):
        raise Invalid(
            "duplicate_line_no", "Line numbers must be unique.", details={"field": "lines"}
        )
    out: list[LineCalc] = []
    for i, (no, ln) in enumerate(zip(numbers, data.lines, strict=True)):
        category = categories.get(ln.sku)
        if category is None:
            raise Invalid(
                "unknown_sku",
                f"Line {no}: no product with SKU {ln.sku}.",
                details={"field": f"lines.{i}.sku"},
            )
        if ln.category is not None and ln.category != category:
            raise Invalid(
                "category_mismatch",
                f"Line {no}: SKU {ln.sku} is in category {category}, not {ln.category}.",
                details={"field": f"lines.{i}.category"},
            )
        gross = ln.unit_price_fen * ln.quantity
        if ln.discount_fen > gross:
            raise Invalid(
                "discount_exceeds_line",
                f"Line {no}: the discount exceeds the line amount.",
                details={"field": f"lines.{i}.discount_fen"},
            )
        out.append(
            LineCalc(
                no,
                ln.sku,
                category,
                ln.quantity,
                ln.unit_price_fen,
                ln.discount_fen,
                gross - ln.discount_fen,
            )
        )
    return out


def _split_points(lines: list[LineCalc], points_fen: int, points: int) -> None:
    """Spread the points payment over lines in proportion to their amounts, exactly."""
    fen_parts = pricing.allocate_largest_remainder(points_fen, [ln.net_fen for ln in lines])
    point_parts = pricing.allocate_largest_remainder(points, fen_parts)
    for ln, f, p in zip(lines, fen_parts, point_parts, strict=True):
        ln.points_fen, ln.points, ln.paid_fen = f, p, ln.net_fen - f


# ---- reading ---------------------------------------------------------------------------------


def member_orders(
    session: Session,
    member_id: int,
    *,
    limit: int,
    offset: int,
    external_id: str | None = None,
) -> tuple[list[Order], int]:
    """A member's orders, newest first; ``external_id`` narrows to that order number (any
    source), e.g. the one printed on a receipt brought back to the store."""
    where = [Order.member_id == member_id]
    if external_id is not None:
        where.append(Order.external_id == external_id)
    total = session.scalar(select(func.count()).select_from(Order).where(*where))
    rows = session.scalars(
        select(Order)
        .options(*LINES_AND_PAYMENTS)
        .where(*where)
        .order_by(Order.ordered_at.desc(), Order.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows), int(total or 0)


def member_returns(
    session: Session, member_id: int, *, limit: int, offset: int
) -> tuple[list[tuple[OrderReturn, Order]], int]:
    """A member's returns, newest first, each with its order."""
    total = session.scalar(
        select(func.count()).select_from(OrderReturn).where(OrderReturn.member_id == member_id)
    )
    rows = session.execute(
        select(OrderReturn, Order)
        .join(Order, Order.id == OrderReturn.order_id)
        .options(selectinload(OrderReturn.lines), *LINES_AND_PAYMENTS)
        .where(OrderReturn.member_id == member_id)
        .order_by(OrderReturn.returned_at.desc(), OrderReturn.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [(row[0], row[1]) for row in rows], int(total or 0)


def find_return(session: Session, order_id: int, external_id: str) -> OrderReturn | None:
    """A return of the order already recorded under ``external_id`` (its idempotency key)."""
    return session.scalar(
        select(OrderReturn)
        .options(selectinload(OrderReturn.lines))
        .where(OrderReturn.order_id == order_id, OrderReturn.external_id == external_id)
    )


def get_order(session: Session, source: str, external_id: str) -> Order:
    order = find_order(session, source, external_id)
    if order is None:
        raise NotFound("order_not_found", f"No order {external_id} from {source}.")
    return order


def order_places(session: Session, member_id: int, source_ids: list[str]) -> dict[str, Order]:
    """The member's orders behind ledger postings, by source id — for a points history in plain
    language ("earned at Store X"). A source id is ``source:external_id`` (an order) or
    ``source:external_id:return_id`` (points given back by a return); external ids may contain
    ``:`` themselves, so every split is tried and the longest order number that exists wins."""
    candidates: dict[str, list[tuple[str, str]]] = {}
    for sid in source_ids:
        source, _, rest = sid.partition(":")
        if not (source and rest):
            continue
        cuts = [i for i, ch in enumerate(rest) if ch == ":"] + [len(rest)]
        candidates[sid] = [(source, rest[:i]) for i in cuts if i > 0]
    externals = sorted({ext for pairs in candidates.values() for _, ext in pairs})
    if not externals:
        return {}
    rows = session.scalars(
        select(Order)
        .options(lazyload("*"))
        .where(Order.member_id == member_id, Order.external_id.in_(externals))
    )
    by_key = {(o.source, o.external_id): o for o in rows}
    out: dict[str, Order] = {}
    for sid, pairs in candidates.items():
        found = [by_key[p] for p in reversed(pairs) if p in by_key]
        if found:
            out[sid] = found[0]
    return out


def member_order(session: Session, member_id: int, order_id: int) -> Order:
    """One of the member's own orders; another member's order is "not found" (not 403), so
    ids of other members' orders cannot even be probed."""
    order = session.get(Order, order_id, options=LINES_AND_PAYMENTS)
    if order is None or order.member_id != member_id:
        raise NotFound("order_not_found", "No such order.")
    return order
