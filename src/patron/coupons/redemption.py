"""Coupons at checkout and after it (SPEC C3): the one call the quote makes (:func:`price`),
the one the commit makes after writing its order (:func:`redeem`), and the expiry of unused
coupons (:func:`expire_due`). A return gives coupons back in its plan
(``orders.return_plan``, written by ``orders.return_writer``).

A checkout without coupon codes costs nothing here: :func:`price` is then ``pricing.quote``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NoReturn

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import Session

from patron.audit import service as audit
from patron.coupons import domain
from patron.coupons.domain import BaseLine, Basket, Candidate, Selection
from patron.coupons.models import Coupon, CouponTemplate
from patron.coupons.service import _history, rules_of
from patron.errors import Conflict, Invalid
from patron.ledger.service import Ctx
from patron.orders import facts, pricing
from patron.webhooks import events


@dataclass(frozen=True, slots=True)
class CouponQuote:
    """The coupons a quote chose, and what it needs to redeem them at commit."""

    selection: Selection
    #: code → (coupon id, template code)
    ids: dict[str, tuple[int, str]]
    #: free-gift coupon code → the order line number of its gift
    gift_lines: dict[str, int] = field(default_factory=dict)


def hashable(body: dict[str, Any]) -> dict[str, Any]:
    """A commit's body for its content hash: without coupon fields when it uses none, so the
    hash of a commit without coupons is what it was before coupons existed."""
    if not body.get("coupon_codes") and not body.get("best_coupons"):
        return {k: v for k, v in body.items() if k not in ("coupon_codes", "best_coupons")}
    return body


def _load(
    session: Session, ctx: Ctx, member_id: int, codes: Sequence[str], wallet: bool
) -> list[tuple[Coupon, CouponTemplate]]:
    """The coupons named, and with ``wallet`` every usable one the member holds: one query."""
    wanted: list[ColumnElement[bool]] = [Coupon.code.in_(list(codes))] if codes else []
    if wallet:
        wanted.append(
            (Coupon.member_id == member_id)
            & (Coupon.status == "issued")
            & (Coupon.valid_until > ctx.now)
        )
    return [
        (c, t)
        for c, t in session.execute(
            select(Coupon, CouponTemplate)
            .join(CouponTemplate, CouponTemplate.id == Coupon.template_id)
            .where(or_(*wanted))
            .order_by(Coupon.valid_until, Coupon.id)
        )
    ]


def _candidate(c: Coupon, t: CouponTemplate) -> Candidate:
    return Candidate(
        code=c.code,
        template_code=t.code,
        rules=rules_of(t),
        member_id=c.member_id,
        status=c.status,
        valid_from=c.valid_from,
        valid_until=c.valid_until,
    )


def _base(q: pricing.Quote) -> tuple[BaseLine, ...]:
    return tuple(
        BaseLine(ln.sku, ln.category, ln.net_fen, ln.member_price_applied) for ln in q.lines
    )


def price(
    session: Session,
    ctx: Ctx,
    member_id: int,
    *,
    codes: Sequence[str],
    wallet: bool,
    store_code: str | None,
    channel: str,
    lines: Sequence[pricing.BasketLine],
    tier: pricing.TierPricing,
    birthday_month: bool,
    settings: pricing.PricingSettings,
    points_balance: int,
    points_to_use: int,
) -> tuple[pricing.Quote, CouponQuote | None]:
    """Price the basket with the best combination of the member's coupons. A code that cannot
    be used at all (unknown, another member's, used, expired, wrong store or goods, below its
    threshold) is a 4xx naming it; usable ones the stacking rules leave out are explained."""

    def plain(t: pricing.TierPricing, points: int, coupons: Sequence[int] = ()) -> pricing.Quote:
        return pricing.quote(
            lines,
            tier=t,
            birthday_month=birthday_month,
            settings=settings,
            points_balance=points_balance,
            points_to_use=points,
            coupon_discounts_fen=coupons,
        )

    if not codes and not wallet:
        return plain(tier, points_to_use), None
    named = [c.upper() for c in dict.fromkeys(codes)]
    rows = _load(session, ctx, member_id, named, wallet)
    with_tier = plain(tier, 0)
    without_tier = plain(pricing.TierPricing(tier_code=tier.tier_code), 0)
    basket = Basket(
        member_id=member_id,
        tier_code=tier.tier_code,
        store_code=store_code,
        channel=channel,
        now=ctx.now,
        uses_points=points_to_use > 0,
        lines=_base(with_tier),
        lines_without_tier=_base(without_tier),
    )
    found = {c.code: (c, t) for c, t in rows}
    candidates: list[Candidate] = []
    for i, code in enumerate(named):
        if code not in found:
            raise Invalid(
                "unknown_coupon",
                f"No coupon {code}; check the code on the member's wallet.",
                details={"field": f"coupon_codes.{i}"},
            )
        cand = _candidate(*found[code])
        bad = domain.unusable(cand, basket)
        if bad is not None:
            _refuse(*bad, {"field": f"coupon_codes.{i}"})
        candidates.append(cand)
    for code, (c, t) in found.items():
        if code not in named and c.member_id == member_id:
            cand = _candidate(c, t)
            if domain.unusable(cand, basket) is None:  # the wallet's: quietly skip the unusable
                candidates.append(cand)
    selection = domain.choose(candidates, basket)
    final = plain(
        pricing.TierPricing(tier_code=tier.tier_code) if selection.drop_tier else tier,
        points_to_use,
        selection.line_discounts,
    )
    final, gift_lines = _with_gifts(session, final, selection)
    ids = {code: (c.id, t.code) for code, (c, t) in found.items()}
    return final, CouponQuote(selection, ids, gift_lines)


#: the category of a gift whose SKU is not in the catalogue
GIFT_CATEGORY = "gift"


def _with_gifts(
    session: Session, q: pricing.Quote, selection: Selection
) -> tuple[pricing.Quote, dict[str, int]]:
    """The chosen free gifts as zero-price lines after the basket's (their category from the
    catalogue, one statement, only when a gift was chosen)."""
    gifts = [(a.code, a.gift_sku) for a in selection.applied if a.gift_sku]
    if not gifts:
        return q, {}
    cats = facts.categories(session, [sku for _, sku in gifts])
    first = len(q.lines) + 1
    return (
        pricing.with_gifts(q, [(code, sku, cats.get(sku, GIFT_CATEGORY)) for code, sku in gifts]),
        {code: first + i for i, (code, _) in enumerate(gifts)},
    )


def _refuse(reason: str, message: str, details: dict[str, Any]) -> NoReturn:
    """One literal code per reason (``domain.UNUSABLE``), so the error catalogue lists them."""
    if reason == "coupon_used":
        raise Conflict("coupon_used", message, details=details)
    if reason == "coupon_not_member":
        raise Invalid("coupon_not_member", message, details=details)
    if reason == "coupon_voided":
        raise Invalid("coupon_voided", message, details=details)
    if reason == "coupon_expired":
        raise Invalid("coupon_expired", message, details=details)
    if reason == "coupon_not_yet_valid":
        raise Invalid("coupon_not_yet_valid", message, details=details)
    if reason == "coupon_wrong_store":
        raise Invalid("coupon_wrong_store", message, details=details)
    if reason == "coupon_wrong_tier":
        raise Invalid("coupon_wrong_tier", message, details=details)
    if reason == "coupon_not_applicable":
        raise Invalid("coupon_not_applicable", message, details=details)
    raise Invalid("coupon_below_threshold", message, details=details)


def redeem(
    session: Session, ctx: Ctx, order_id: int, member_id: int, cq: CouponQuote | None
) -> None:
    """Mark the chosen coupons used by ``order_id`` in the order's transaction. The UPDATE is
    guarded (still issued, still valid): a coupon another order took first makes this order
    fail with 409 ``coupon_already_used``, and the unit of work rolls the order back."""
    if cq is None or not cq.selection.applied:
        return
    done: list[tuple[int, str, domain.Applied]] = []
    for a in cq.selection.applied:
        cid, template_code = cq.ids[a.code]
        hit = session.execute(
            update(Coupon)
            .where(
                Coupon.id == cid,
                Coupon.member_id == member_id,
                Coupon.status == "issued",
                Coupon.valid_until > ctx.now,
            )
            .values(
                status="redeemed",
                order_id=order_id,
                redeemed_at=ctx.now,
                discount_fen=a.discount_fen,
                allocation=_allocation(a, cq.gift_lines.get(a.code)),
            )
            .returning(Coupon.id)
            .execution_options(synchronize_session=False)
        ).scalar_one_or_none()
        if hit is None:
            raise Conflict(
                "coupon_already_used",
                f"Coupon {a.code} was used or voided meanwhile; quote again without it.",
                details={"field": "coupon_codes"},
            )
        done.append((cid, template_code, a))
    _history(session, [(cid, "redeemed", "redeemed", order_id, "") for cid, _, _ in done], ctx.now)
    events.emit_many(
        session,
        [
            events.NewEvent(
                "coupon.redeemed",
                {
                    "code": a.code,
                    "template": tc,
                    "order_id": order_id,
                    "discount_fen": a.discount_fen,
                    "value_fen": a.value_fen,
                    "cost_bearer": a.cost_bearer,
                },
                member_id=member_id,
            )
            for _, tc, a in done
        ],
        ctx.now,
    )
    audit.record_many(
        session,
        ctx.actor,
        [
            (
                "coupon.redeem",
                "coupon",
                a.code,
                {"order_id": order_id, "discount_fen": a.discount_fen, "template": tc},
                ctx.now,
            )
            for _, tc, a in done
        ],
    )


def _allocation(a: domain.Applied, gift_line: int | None) -> dict[str, int]:
    """Fen off per order line; a free gift names its gift's line (0 fen), so returning the
    gift is what brings the coupon back."""
    out = {str(i + 1): fen for i, fen in a.lines}
    if gift_line is not None:
        out[str(gift_line)] = 0
    return out


def expire_due(session: Session, now: datetime, limit: int = 10_000) -> int:
    """Expire up to ``limit`` unused coupons past their validity, set-based; idempotent."""
    ids = list(
        session.scalars(
            select(Coupon.id)
            .where(Coupon.status == "issued", Coupon.valid_until <= now)
            .order_by(Coupon.id)
            .limit(limit)
        )
    )
    if not ids:
        return 0
    rows: list[Any] = list(
        session.execute(
            update(Coupon)
            .where(Coupon.id.in_(ids), Coupon.status == "issued")
            .values(status="expired")
            .returning(Coupon.id, Coupon.code, Coupon.member_id)
            .execution_options(synchronize_session=False)
        ).all()
    )
    _history(session, [(r.id, "expired", "expired", None, "") for r in rows], now)
    events.emit_many(
        session,
        [events.NewEvent("coupon.expired", {"code": r.code}, member_id=r.member_id) for r in rows],
        now,
    )
    return len(rows)
