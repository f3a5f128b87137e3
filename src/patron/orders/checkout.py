"""Checkout for POS and shop: quote a basket for a member, then commit exactly that quote."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from patron.catalog import service as catalog
from patron.errors import Conflict, Invalid
from patron.ledger import queries as ledger_queries
from patron.ledger import service as ledger
from patron.ledger.service import Ctx
from patron.members.models import Member
from patron.orders import pricing
from patron.orders.models import Order
from patron.orders.schemas import CommitIn, QuoteIn
from patron.orders.service import (
    LineCalc,
    active_member,
    check_store,
    content_hash,
    evaluate_earning,
    find_order,
    lock_order,
    member_tier,
    pricing_settings,
    record_order,
    replay_or_conflict,
)
from patron.rules.domain import EarningResult

# ---- checkout --------------------------------------------------------------------------------


@dataclass
class Priced:
    member: Member
    quote: pricing.Quote
    earning: EarningResult
    balance: int


def _price(session: Session, ctx: Ctx, data: QuoteIn, *, lock: bool) -> Priced:
    member = active_member(session, data.member_no)
    check_store(session, data.channel, data.store_code)
    if lock:
        ledger.begin(session, ctx, member.id)
    products = catalog.products_by_sku(session, [ln.sku for ln in data.lines])
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
                    category=p.category.code,
                    quantity=ln.quantity,
                    unit_price_fen=p.price_fen,
                    member_prices_fen={m.tier_code: m.price_fen for m in p.member_prices},
                    line_discount_fen=ln.discount_fen,
                )
            )
        except ValueError as exc:
            raise Invalid("invalid_line", str(exc), details={"field": f"lines.{i}"}) from None
    tier_code, benefits = member_tier(session, ctx, member.id)
    balance = ledger_queries.balance(session, member.id, ctx.now).available
    try:
        q = pricing.quote(
            basket,
            tier=pricing.TierPricing(
                tier_code=tier_code,
                discount_bp=benefits.discount_bp,
                birthday_discount_bp=benefits.birthday_discount_bp,
            ),
            birthday_month=pricing.is_birthday_month(member.birthday, ctx.now, ctx.tz),
            settings=pricing_settings(session),
            points_balance=max(balance, 0),
            points_to_use=data.points_to_use,
        )
    except pricing.PricingError as exc:
        status = 409 if exc.code == "insufficient_points" else 422
        raise Invalid(
            exc.code, exc.message, details={"field": "points_to_use"}, status=status
        ) from None
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
    return Priced(member, q, earning, balance)


def quote(session: Session, ctx: Ctx, data: QuoteIn) -> Priced:
    return _price(session, ctx, data, lock=False)


def commit(session: Session, ctx: Ctx, data: CommitIn) -> tuple[Order, bool]:
    """Re-price at commit time; if anything changed since the quote, refuse (409)."""
    digest = content_hash(data.model_dump(mode="json"))
    lock_order(session, data.source, data.external_id)
    existing = find_order(session, data.source, data.external_id)
    if existing is not None:
        return replay_or_conflict(existing, digest), True
    priced = _price(session, ctx, data, lock=True)
    q = priced.quote
    if (
        q.total_fen != data.expected_total_fen
        or priced.earning.points != data.expected_points_earned
    ):
        raise Conflict(
            "quote_mismatch",
            "Prices, tier or rules changed since the quote; quote again and confirm the new "
            "amounts with the customer.",
            details={"total_fen": q.total_fen, "points_earned": priced.earning.points},
        )
    lines = [
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
    payments = []
    if q.points_used:
        payments.append(("points", q.points_fen, q.points_used))
    if q.paid_fen or not payments:
        payments.append((data.payment_method, q.paid_fen, 0))
    order = record_order(
        session,
        ctx,
        priced.member,
        source=data.source,
        external_id=data.external_id,
        channel=data.channel,
        store_code=data.store_code,
        ordered_at=ctx.now,
        lines=lines,
        payments=payments,
        points_used=q.points_used,
        earn=True,
        digest=digest,
    )
    if order.points_earned != data.expected_points_earned:  # pragma: no cover - same inputs
        raise Conflict("quote_mismatch", "The earning changed while committing; quote again.")
    return order, False
