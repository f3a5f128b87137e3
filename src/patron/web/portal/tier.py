"""Portal: my tier — benefits, progress to the next tier, what keeps the tier."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse

from patron.tiers.domain import BP, TierBenefits
from patron.web.i18n import N_
from patron.web.pages import PORTAL_PREFIX, MemberPage, Viewer, page_router, render
from patron.web.portal import common, summary

router = page_router(PORTAL_PREFIX)


def benefit_lines(b: TierBenefits) -> list[tuple[str, dict[str, object]]]:
    """(English message id, its values) for each benefit the tier gives."""
    lines: list[tuple[str, dict[str, object]]] = []
    if b.discount_bp < BP:
        lines.append(
            (
                N_("Member prices, then %(off)s%% off"),
                {"off": _off(b.discount_bp), "zhe": _zhe(b.discount_bp)},
            )
        )
    if b.points_multiplier_bp > BP:
        lines.append((N_("Points ×%(x)s on purchases"), {"x": _times(b.points_multiplier_bp)}))
    if b.birthday_discount_bp < BP:
        lines.append(
            (
                N_("In your birthday month, %(off)s%% off on top"),
                {"off": _off(b.birthday_discount_bp), "zhe": _zhe(b.birthday_discount_bp)},
            )
        )
    if b.free_shipping:
        lines.append((N_("Free shipping"), {}))
    if b.free_returns:
        lines.append((N_("Free returns"), {}))
    if b.dedicated_service:
        lines.append((N_("Dedicated service line"), {}))
    if b.priority_purchase:
        lines.append((N_("Early access to new products"), {}))
    if b.free_orders_per_year:
        lines.append((N_("%(n)s free order(s) a year"), {"n": b.free_orders_per_year}))
    return lines


def _zhe(bp: int) -> str:
    # How a Chinese shopper reads a discount: paying 90% is "9 折", 95% is "9.5 折"
    return f"{bp / 1000:g}"


def _off(bp: int) -> str:
    # 9500 bp of the price = 5% off; shown without a trailing .0
    off = (BP - bp) / 100
    return f"{off:g}"


def _times(bp: int) -> str:
    return f"{bp / BP:g}"


@router.get("/tier")
def tier(request: Request, viewer: Annotated[Viewer, Depends(MemberPage())]) -> HTMLResponse:
    member = common.member(request, viewer)
    ctx = common.ctx(request, member)
    view = summary.tier_view(common.session(request), ctx, member.id, viewer.locale)
    return render(
        request,
        "portal/tier.html",
        {
            "tab": "tier",
            "tier": view,
            "benefits": benefit_lines(view.tier.benefits),
            "next_benefits": benefit_lines(view.next_tier.benefits) if view.next_tier else [],
        },
    )
