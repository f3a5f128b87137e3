"""Checkout for POS and shop: quote a basket for a member, then commit exactly that quote."""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy.orm import Session

from patron.coupons import redemption as coupons  # the coupon seam: price, redeem
from patron.errors import Conflict, Invalid
from patron.ledger import queries as ledger_queries
from patron.ledger import service as ledger
from patron.ledger.service import Ctx
from patron.members.models import Member
from patron.members.service import get_member
from patron.orders import facts, plan, pricing
from patron.orders.models import Order
from patron.orders.schemas import CommitIn, QuoteIn
from patron.orders.service import (
    LineCalc,
    active_member,
    check_active,
    check_store,
    check_store_code,
    commit_order,
    content_hash,
    evaluate_earning,
    find_order,
    gather,
    lock_order,
    member_tier,
    pricing_settings,
    record_order,
    replay_or_conflict,
)
from patron.rules.domain import EarningResult
from patron.tiers.domain import TierBenefits

# ---- checkout --------------------------------------------------------------------------------


@dataclass
class Priced:
    member: Member
    quote: pricing.Quote
    earning: EarningResult
    balance: int
    coupons: coupons.CouponQuote | None = None


def _price(session: Session, ctx: Ctx, data: QuoteIn, *, lock: bool) -> Priced:
    member = active_member(session, data.member_no)
    check_store(session, data.channel, data.store_code)
    if lock:
        ledger.begin(session, ctx, member.id)
    basket = _basket(data, facts.priced_products(session, [ln.sku for ln in data.lines]))
    tier_code, benefits = member_tier(session, ctx, member.id)
    balance = ledger_queries.spendable(session, member.id, ctx.now)
    q, chosen = _quote(
        session, data, basket, member, ctx, tier_code, benefits, balance, pricing_settings(session)
    )
    earning = evaluate_earning(
        session,
        ctx,
        member,
        occurred_at=ctx.now,
        lines=pricing.earn_lines(q),
        tier_code=tier_code,
        benefits=benefits,
        lock_budgets=lock,
    )
    return Priced(member, q, earning, balance, chosen)


def _basket(data: QuoteIn, products: dict[str, facts.PricedProduct]) -> list[pricing.BasketLine]:
    basket = []
    for i, ln in enumerate(data.lines):
        p = products.get(ln.sku)
        if p is None or not p.is_active:
            raise Invalid(
                "unknown_sku",
                f"No product on sale with SKU {ln.sku}.",
                details={"field": f"lines.{i}.sku"},
            )
        try:
            basket.append(
                pricing.BasketLine(
                    sku=p.sku,
                    category=p.category,
                    quantity=ln.quantity,
                    unit_price_fen=p.price_fen,
                    member_prices_fen=p.member_prices,
                    line_discount_fen=ln.discount_fen,
                )
            )
        except ValueError as exc:
            raise Invalid("invalid_line", str(exc), details={"field": f"lines.{i}"}) from None
    return basket


def _quote(
    session: Session,
    data: QuoteIn,
    basket: list[pricing.BasketLine],
    member: Member,
    ctx: Ctx,
    tier_code: str,
    benefits: TierBenefits,
    balance: int,
    settings: pricing.PricingSettings,
) -> tuple[pricing.Quote, coupons.CouponQuote | None]:
    try:
        # coupons: with no coupon codes this is pricing.quote and reads nothing
        return coupons.price(
            session,
            ctx,
            member.id,
            codes=data.coupon_codes,
            wallet=data.best_coupons,
            store_code=data.store_code,
            channel=data.channel,
            lines=basket,
            tier=pricing.TierPricing(
                tier_code=tier_code,
                discount_bp=benefits.discount_bp,
                birthday_discount_bp=benefits.birthday_discount_bp,
            ),
            birthday_month=pricing.is_birthday_month(member.birthday, ctx.now, ctx.tz),
            settings=settings,
            points_balance=max(balance, 0),
            points_to_use=data.points_to_use,
        )
    except pricing.PricingError as exc:
        status = 409 if exc.code == "insufficient_points" else 422
        raise Invalid(
            exc.code, exc.message, details={"field": "points_to_use"}, status=status
        ) from None


def quote(session: Session, ctx: Ctx, data: QuoteIn) -> Priced:
    return _price(session, ctx, data, lock=False)


def commit(session: Session, ctx: Ctx, data: CommitIn) -> tuple[Order, bool]:
    """Re-price at commit time; if anything changed since the quote, refuse (409). The order
    written is the plan of exactly that pricing: its earning is evaluated once."""
    digest = content_hash(coupons.hashable(data.model_dump(mode="json")))
    lock_order(session, data.source, data.external_id)
    arrived = facts.arrival(session, data.member_no, data.source, data.external_id, data.store_code)
    if arrived.member is None or arrived.existing_order_id is not None:
        existing = find_order(session, data.source, data.external_id)
        if existing is not None:
            return replay_or_conflict(existing, digest), True
    member = arrived.member or get_member(session, data.member_no)  # (the latter: 404)
    check_active(member)
    check_store_code(data.channel, data.store_code, lambda _code: arrived.store_known)
    draft = plan.OrderInput(
        source=data.source,
        external_id=data.external_id,
        channel=data.channel,
        store_code=data.store_code,
        ordered_at=ctx.now,
        lines=(),
        payments=(),
        points_used=0,
        earn=True,
        digest=digest,
    )
    settings, member_facts = gather(session, ctx, member, draft)
    if plan.needs_general_path(member_facts, settings):
        return _commit_general(session, ctx, data, digest), False
    basket = _basket(data, facts.priced_products(session, [ln.sku for ln in data.lines]))
    tier_code, benefits = plan.member_tier(member_facts, settings.ladder)
    q, chosen = _quote(
        session,
        data,
        basket,
        member,
        ctx,
        tier_code,
        benefits,
        member_facts.available,
        pricing_settings(session),
    )
    earning = plan.evaluate(
        member_facts, settings, occurred_at=ctx.now, lines=pricing.earn_lines(q), tz=ctx.tz
    )
    _check_quote(data, q.total_fen, earning.points)
    order = commit_order(
        session,
        ctx,
        member,
        replace(
            draft,
            lines=tuple(plan.PlanLine(**vars(ln)) for ln in _lines(q)),
            payments=tuple(_payments(data, q)),
            points_used=q.points_used,
        ),
        gathered=(settings, member_facts),
        earning=earning,
    )
    coupons.redeem(session, ctx, order.id, member.id, chosen)  # coupons: used by this order
    return order, False


def _check_quote(data: CommitIn, total_fen: int, points_earned: int) -> None:
    if total_fen != data.expected_total_fen or points_earned != data.expected_points_earned:
        raise Conflict(
            "quote_mismatch",
            "Prices, tier or rules changed since the quote; quote again and confirm the new "
            "amounts with the customer.",
            details={"total_fen": total_fen, "points_earned": points_earned},
        )


def _lines(q: pricing.Quote) -> list[LineCalc]:
    return [
        LineCalc(
            i,
            ql.sku,
            ql.category,
            ql.quantity,
            ql.unit_price_fen,
            ql.list_amount_fen - ql.net_fen,
            ql.net_fen,
            ql.points_fen,
            ql.points,
            ql.paid_fen,
        )
        for i, ql in enumerate(q.lines, start=1)
    ]


def _payments(data: CommitIn, q: pricing.Quote) -> list[tuple[str, int, int]]:
    payments = []
    if q.points_used:
        payments.append(("points", q.points_fen, q.points_used))
    if q.paid_fen or not payments:
        payments.append((data.payment_method, q.paid_fen, 0))
    return payments


def _commit_general(session: Session, ctx: Ctx, data: CommitIn, digest: str) -> Order:
    """A member whose ledger needs settling first: price after settling, then record."""
    priced = _price(session, ctx, data, lock=True)
    q = priced.quote
    _check_quote(data, q.total_fen, priced.earning.points)
    order = record_order(
        session,
        ctx,
        priced.member,
        source=data.source,
        external_id=data.external_id,
        channel=data.channel,
        store_code=data.store_code,
        ordered_at=ctx.now,
        lines=_lines(q),
        payments=_payments(data, q),
        points_used=q.points_used,
        earn=True,
        digest=digest,
    )
    if order.points_earned != data.expected_points_earned:  # pragma: no cover - same inputs
        raise Conflict("quote_mismatch", "The earning changed while committing; quote again.")
    coupons.redeem(session, ctx, order.id, priced.member.id, priced.coupons)  # coupons
    return order
