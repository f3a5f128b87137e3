"""Checkout quote math (SPEC P4, C4, T3): pure, integers only.

Per line, in this order (docs/rules.md):

1. **Member price** (会员专享价) for the member's tier replaces the list unit price when it is
   lower; a member price at or above list is ignored.
2. **Line discount** (the retailer's own promotion, fen) comes off the line, never below zero.
3. **Tier discount** (``discount_bp`` of the tier, 9000 = pay 90 %) — skipped on lines sold at a
   member price unless ``tier_discount_on_member_price`` is set (the member price already *is*
   the tier's benefit).
4. **Birthday discount** (``birthday_discount_bp``) multiplies after the tier discount, on every
   line, during the member's birthday month (business timezone).
   Each percentage step floors the amount payable to the fen (the customer keeps the fraction).

Then for the order:

5. **Order discount** (fen), capped at the order, is spread over lines in proportion to their
   amounts by largest remainder. **Coupons** (``patron.coupons``) come as fen per line, already
   spread over the lines each coupon applies to (``coupons/domain.py`` has their order).
6. **Points as cash**: ``points_per_unit`` points pay ``unit_fen`` fen (100 points = 100 fen),
   at most ``max_points_share_bp`` of the order after discounts (50 %) and at most the member's
   available balance; the points payment is spread over lines by largest remainder too.

Every allocation is exact: the lines' amounts sum to the order's amounts to the fen, so a later
partial return can refer to lines without drift. ``paid_fen`` per line (cash) is what earns points.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from math import gcd
from typing import Self
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator

from patron.kit.timeutil import business_date
from patron.rules.definitions import BP, CategoryCode
from patron.rules.domain import EarnLine

MAX_UNIT_FEN = 1_000_000_000  # ¥10M per unit: far above any retail price
MAX_QUANTITY = 1_000_000  # so a line is at most 10^15 fen, the engine's MAX_FEN

TierCode = str


class PricingError(ValueError):
    """A quote that cannot be made; ``code`` is stable for the API error."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PricingSettings(_Frozen):
    """Settings section ``"pricing"``; defaults from the seeds (002: "每100积分可抵扣1元")."""

    #: ``points_per_unit`` points pay ``unit_fen`` fen: 100 points = 100 fen (1 CNY)
    points_per_unit: int = Field(default=100, ge=1, le=1_000_000)
    unit_fen: int = Field(default=100, ge=1, le=1_000_000)
    #: points may pay at most this share of the order after discounts
    max_points_share_bp: int = Field(default=5_000, ge=0, le=BP)
    #: points are spent in multiples of this (e.g. 100 for "whole yuan only")
    points_step: int = Field(default=1, ge=1, le=1_000_000)
    tier_discount_on_member_price: bool = False

    def effective_step(self) -> int:
        """Smallest spendable multiple: worth whole fen and a multiple of ``points_step``."""
        whole_fen_step = self.points_per_unit // gcd(self.points_per_unit, self.unit_fen)
        return self.points_step * whole_fen_step // gcd(self.points_step, whole_fen_step)

    def points_value_fen(self, points: int) -> int:
        return points * self.unit_fen // self.points_per_unit


class TierPricing(_Frozen):
    """The pricing part of the member's tier benefits (``patron.tiers.domain.TierBenefits``)."""

    tier_code: TierCode | None = Field(default=None, max_length=32)
    #: share of the price the member pays: 9500 = 95 % (九五折); 10000 = no discount
    discount_bp: int = Field(default=BP, ge=1, le=BP)
    birthday_discount_bp: int = Field(default=BP, ge=1, le=BP)


class BasketLine(_Frozen):
    sku: str = Field(min_length=1, max_length=64)
    category: CategoryCode
    quantity: int = Field(ge=1, le=MAX_QUANTITY)
    unit_price_fen: int = Field(ge=0, le=MAX_UNIT_FEN)
    #: tier code → member unit price (会员专享价)
    member_prices_fen: dict[TierCode, int] = Field(default_factory=dict, max_length=32)
    line_discount_fen: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if any(p < 0 or p > MAX_UNIT_FEN for p in self.member_prices_fen.values()):
            raise ValueError(f"sku {self.sku}: member prices must be between 0 and {MAX_UNIT_FEN}")
        if self.line_discount_fen > self.unit_price_fen * self.quantity:
            raise ValueError(f"sku {self.sku}: the line discount exceeds the line's list amount")
        return self


class QuoteLine(_Frozen):
    sku: str
    category: str
    quantity: int
    list_unit_fen: int
    #: unit price charged before percentage discounts: the member price or the list price
    unit_price_fen: int
    member_price_applied: bool
    list_amount_fen: int
    member_price_saving_fen: int
    line_discount_fen: int
    tier_discount_fen: int
    birthday_discount_fen: int
    order_discount_fen: int
    #: this line's share of the coupons (patron.coupons)
    coupon_discount_fen: int = 0
    #: amount after every discount; what the line costs before the points payment
    net_fen: int
    #: share of the points payment in fen, and in points
    points_fen: int
    points: int
    #: cash paid for the line: net − points; the amount that earns points and is refunded
    paid_fen: int
    #: a free gift's line: the code of the coupon that gives it (price, discounts and pay 0)
    gift_coupon: str | None = None


class Quote(_Frozen):
    lines: tuple[QuoteLine, ...]
    tier_code: str | None
    birthday_month: bool
    list_total_fen: int
    member_price_saving_fen: int
    line_discount_fen: int
    tier_discount_fen: int
    birthday_discount_fen: int
    order_discount_fen: int
    coupon_discount_fen: int = 0
    #: order total after discounts (before the points payment)
    total_fen: int
    #: most points this member may spend on this order (share cap, balance and step applied)
    max_points: int
    points_used: int
    points_fen: int
    #: cash to pay: total − points
    paid_fen: int


def allocate_largest_remainder(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` in proportion to ``weights`` so the parts sum to ``total`` exactly.

    Each part starts at its floor share; the units left over go to the largest fractional
    remainders, ties to the earlier line. When ``total <= sum(weights)`` no part exceeds its
    weight and a zero weight gets zero — so a discount never makes a line negative.
    """
    if total < 0 or any(w < 0 for w in weights):
        raise ValueError("allocation needs a non-negative total and weights")
    weight_sum = sum(weights)
    if weight_sum == 0:
        if total:
            raise ValueError("cannot allocate a positive total over zero weights")
        return [0] * len(weights)
    parts: list[int] = []
    remainders: list[tuple[int, int]] = []
    for i, w in enumerate(weights):
        share, rem = divmod(total * w, weight_sum)
        parts.append(share)
        remainders.append((-rem, i))
    for _, i in sorted(remainders)[: total - sum(parts)]:
        parts[i] += 1
    return parts


def is_birthday_month(birthday: date | None, at: datetime, tz: ZoneInfo) -> bool:
    """Whether ``at`` falls in the member's birthday month, on the business calendar."""
    return birthday is not None and business_date(at, tz).month == birthday.month


@dataclass(frozen=True, slots=True)
class _Priced:
    unit_price_fen: int
    member_price_applied: bool
    list_amount_fen: int
    member_price_saving_fen: int
    line_discount_fen: int
    tier_discount_fen: int
    birthday_discount_fen: int
    amount_fen: int


def _price_line(
    line: BasketLine, tier: TierPricing, birthday_month: bool, settings: PricingSettings
) -> _Priced:
    list_amount = line.unit_price_fen * line.quantity
    member_unit = line.member_prices_fen.get(tier.tier_code) if tier.tier_code else None
    member_applied = member_unit is not None and member_unit < line.unit_price_fen
    unit = member_unit if member_unit is not None and member_applied else line.unit_price_fen
    amount = unit * line.quantity
    line_discount = min(line.line_discount_fen, amount)
    amount -= line_discount
    tier_discount = 0
    if tier.discount_bp < BP and (not member_applied or settings.tier_discount_on_member_price):
        tier_discount = amount - amount * tier.discount_bp // BP
        amount -= tier_discount
    birthday_discount = 0
    if birthday_month and tier.birthday_discount_bp < BP:
        birthday_discount = amount - amount * tier.birthday_discount_bp // BP
        amount -= birthday_discount
    return _Priced(
        unit_price_fen=unit,
        member_price_applied=member_applied,
        list_amount_fen=list_amount,
        member_price_saving_fen=list_amount - unit * line.quantity,
        line_discount_fen=line_discount,
        tier_discount_fen=tier_discount,
        birthday_discount_fen=birthday_discount,
        amount_fen=amount,
    )


def _percent(bp: int) -> str:
    whole, frac = divmod(bp, 100)
    return f"{whole}.{frac:02d} %" if frac else f"{whole} %"


def max_points_for(total_fen: int, balance: int, settings: PricingSettings) -> int:
    """Most points that may pay an order of ``total_fen``: the share cap, the balance, the step."""
    cap_fen = total_fen * settings.max_points_share_bp // BP
    by_share = cap_fen * settings.points_per_unit // settings.unit_fen
    step = settings.effective_step()
    return min(by_share, max(0, balance)) // step * step


def quote(
    lines: Sequence[BasketLine],
    *,
    tier: TierPricing,
    birthday_month: bool,
    settings: PricingSettings,
    points_balance: int = 0,
    points_to_use: int = 0,
    order_discount_fen: int = 0,
    coupon_discounts_fen: Sequence[int] = (),
) -> Quote:
    """Price a basket for a member. ``points_to_use`` must be at most ``max_points`` of the
    result (ask with 0 first); otherwise :class:`PricingError` says which limit was passed."""
    if not lines:
        raise PricingError("empty_basket", "the basket has no lines")
    if order_discount_fen < 0 or points_to_use < 0 or points_balance < 0:
        raise PricingError("negative_amount", "discounts, points and balances cannot be negative")
    priced = [_price_line(line, tier, birthday_month, settings) for line in lines]
    amounts = [p.amount_fen for p in priced]
    subtotal = sum(amounts)
    order_discount = min(order_discount_fen, subtotal)
    order_shares = allocate_largest_remainder(order_discount, amounts)
    nets = [a - d for a, d in zip(amounts, order_shares, strict=True)]
    # coupons: fen per line from coupons.domain.choose, never more than the line has left
    coupons = list(coupon_discounts_fen) or [0] * len(nets)
    if len(coupons) != len(nets) or any(c < 0 or c > n for c, n in zip(coupons, nets, strict=True)):
        raise PricingError("invalid_coupon_discount", "a coupon discount exceeds its line")
    nets = [n - c for n, c in zip(nets, coupons, strict=True)]
    total = subtotal - order_discount - sum(coupons)

    max_points = max_points_for(total, points_balance, settings)
    if points_to_use > points_balance:
        raise PricingError(
            "points_over_balance",
            f"{points_to_use} points requested but the member has {points_balance} available",
        )
    if points_to_use % settings.effective_step():
        raise PricingError(
            "points_step",
            f"points are spent in multiples of {settings.effective_step()}",
        )
    if points_to_use > max_points:
        raise PricingError(
            "points_share_exceeded",
            f"{points_to_use} points requested but at most {max_points} may pay this order "
            f"({_percent(settings.max_points_share_bp)} of {total} fen)",
        )
    points_fen = settings.points_value_fen(points_to_use)
    point_fen_shares = allocate_largest_remainder(points_fen, nets)
    # points per line follow the fen shares, so a returned line knows the points it carried
    point_shares = (
        allocate_largest_remainder(points_to_use, point_fen_shares)
        if points_fen
        else [0] * len(nets)
    )

    out_lines = tuple(
        QuoteLine(
            sku=line.sku,
            category=line.category,
            quantity=line.quantity,
            list_unit_fen=line.unit_price_fen,
            unit_price_fen=p.unit_price_fen,
            member_price_applied=p.member_price_applied,
            list_amount_fen=p.list_amount_fen,
            member_price_saving_fen=p.member_price_saving_fen,
            line_discount_fen=p.line_discount_fen,
            tier_discount_fen=p.tier_discount_fen,
            birthday_discount_fen=p.birthday_discount_fen,
            order_discount_fen=order_shares[i],
            coupon_discount_fen=coupons[i],
            net_fen=nets[i],
            points_fen=point_fen_shares[i],
            points=point_shares[i],
            paid_fen=nets[i] - point_fen_shares[i],
        )
        for i, (line, p) in enumerate(zip(lines, priced, strict=True))
    )
    return Quote(
        lines=out_lines,
        tier_code=tier.tier_code,
        birthday_month=birthday_month,
        list_total_fen=sum(q.list_amount_fen for q in out_lines),
        member_price_saving_fen=sum(q.member_price_saving_fen for q in out_lines),
        line_discount_fen=sum(q.line_discount_fen for q in out_lines),
        tier_discount_fen=sum(q.tier_discount_fen for q in out_lines),
        birthday_discount_fen=sum(q.birthday_discount_fen for q in out_lines),
        order_discount_fen=order_discount,
        coupon_discount_fen=sum(coupons),
        total_fen=total,
        max_points=max_points,
        points_used=points_to_use,
        points_fen=points_fen,
        paid_fen=total - points_fen,
    )


def with_gifts(q: Quote, gifts: Sequence[tuple[str, str, str]]) -> Quote:
    """``q`` with one zero-price line per free gift, after the basket's lines: (coupon code,
    gift SKU, its category). The totals do not change; the gift is handed over and returned
    as a line of the order."""
    if not gifts:
        return q
    extra = tuple(
        QuoteLine(
            sku=sku,
            category=category,
            quantity=1,
            list_unit_fen=0,
            unit_price_fen=0,
            member_price_applied=False,
            list_amount_fen=0,
            member_price_saving_fen=0,
            line_discount_fen=0,
            tier_discount_fen=0,
            birthday_discount_fen=0,
            order_discount_fen=0,
            net_fen=0,
            points_fen=0,
            points=0,
            paid_fen=0,
            gift_coupon=code,
        )
        for code, sku, category in gifts
    )
    return q.model_copy(update={"lines": q.lines + extra})


def earn_lines(q: Quote) -> tuple[EarnLine, ...]:
    """The quote's lines as the earning engine takes them: cash paid per line."""
    return tuple(
        EarnLine(category=line.category, paid_fen=line.paid_fen, sku=line.sku) for line in q.lines
    )
