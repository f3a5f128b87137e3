"""Portal: my coupon wallet — codes to show at the till, what each is worth, until when."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse

from patron.coupons import service as coupons
from patron.coupons.domain import expiring_soon
from patron.coupons.models import CouponTemplate
from patron.web.i18n import N_
from patron.web.pages import PORTAL_PREFIX, MemberPage, Viewer, money, page_router, render
from patron.web.portal import common

router = page_router(PORTAL_PREFIX)

KIND_LABELS = {
    "amount_off": N_("%(amount)s off"),
    "percent_off": N_("%(percent)s%% off"),
    "threshold": N_("%(amount)s off orders of %(min)s"),
    "free_gift": N_("Free gift"),
    "free_shipping": N_("Free shipping"),
}
STATUS_LABELS = {
    "redeemed": N_("Used"),
    "expired": N_("Expired"),
    "voided": N_("Voided"),
}


def worth(t: CouponTemplate) -> tuple[str, dict[str, Any]]:
    """(English message id, values) saying what a coupon of ``t`` is worth."""
    r = coupons.rules_of(t)
    values: dict[str, Any] = {
        "amount": money(r.amount_fen),
        "percent": f"{r.percent_off_bp / 100:g}",
        "min": money(r.min_spend_fen),
    }
    return KIND_LABELS[r.kind], values


@router.get("/coupons")
def wallet(request: Request, viewer: Annotated[Viewer, Depends(MemberPage())]) -> HTMLResponse:
    member = common.member(request, viewer)
    session = common.session(request)
    now = common.now(request)
    days = coupons.get_settings(session).reminder_days
    items = []
    for c, t in coupons.wallet(session, member.id, include_spent=True):
        label, values = worth(t)
        items.append(
            {
                "code": c.code,
                "name": t.name,
                "worth": label,
                "args": values,
                "status": c.status,
                "status_label": STATUS_LABELS.get(c.status),
                # valid_until is the end (exclusive): the last valid moment's business day
                "last_day": c.valid_until - timedelta(seconds=1),
                "soon": c.status == "issued" and expiring_soon(c.valid_until, now, days),
            }
        )
    usable = [i for i in items if i["status"] == "issued"]
    spent = [i for i in items if i["status"] != "issued"][:20]
    return render(
        request,
        "portal/coupons.html",
        {"tab": "me", "usable": usable, "spent": spent, "reminder_days": days},
    )
