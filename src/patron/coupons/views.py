"""Coupon shapes built from domain results (shared by the API, the console and the desk)."""

from __future__ import annotations

from typing import Any

from patron.coupons.models import Coupon, CouponTemplate
from patron.coupons.redemption import CouponQuote
from patron.coupons.schemas import CouponApplied, CouponLeftOut, CouponOut


def quote_fields(cq: CouponQuote | None) -> dict[str, Any]:
    """The coupon part of a quote's response."""
    if cq is None:
        return {}
    sel = cq.selection
    return {
        "coupon_discount_fen": sel.coupon_discount_fen,
        "coupons": [
            CouponApplied(
                code=a.code,
                template=a.template_code,
                kind=a.kind,
                discount_fen=a.discount_fen,
                value_fen=a.value_fen,
                gift_sku=a.gift_sku,
                cost_bearer=a.cost_bearer,
                lines={str(i + 1): fen for i, fen in a.lines},
            )
            for a in sel.applied
        ],
        "coupons_left_out": [
            CouponLeftOut(code=code, reason=reason, message=message)
            for code, reason, message in sel.left_out
        ],
    }


def coupon_out(c: Coupon, t: CouponTemplate) -> CouponOut:
    return CouponOut(
        code=c.code,
        template=t.code,
        name=t.name,
        kind=t.kind,
        status=c.status,
        reason=c.reason,
        valid_from=c.valid_from,
        valid_until=c.valid_until,
        issued_at=c.issued_at,
        order_id=c.order_id,
        discount_fen=c.discount_fen,
    )
