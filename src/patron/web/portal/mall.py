"""Portal: the points mall — browse by category and value band, redeem in three steps (the
list, the gift, confirm), and my codes and redemption orders."""

from __future__ import annotations

from typing import Annotated, Any

import segno
from fastapi import Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from patron.catalog import service as catalog
from patron.errors import NotFound, PatronError
from patron.ledger import queries
from patron.mall import domain, redemptions
from patron.mall import service as mall
from patron.risk.service import RiskHold
from patron.web.context import device_id, request_ctx
from patron.web.gift_images import serve_image
from patron.web.i18n import N_
from patron.web.pages import PORTAL_PREFIX, MemberPage, Viewer, page_router, redirect, render
from patron.web.portal import common, risk_check

router = page_router(PORTAL_PREFIX)
Member = Annotated[Viewer, Depends(MemberPage())]
GiftCode = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,32}$")]

#: the seed's categories in words; an operator's own categories show as their code
CATEGORY_NAMES = {
    "home": N_("Home"),
    "digital": N_("Digital accessories"),
    "mother_baby": N_("Mother & baby"),
    "beauty": N_("Beauty"),
}
#: why a redemption was refused, in words for the member
MESSAGES = {
    "insufficient_points": N_("You do not have enough points for this gift."),
    "over_member_limit": N_("You have reached the limit for this gift in this period."),
    "outside_sale_window": N_("This gift cannot be redeemed at the moment."),
    "gift_unavailable": N_("This gift cannot be redeemed at the moment."),
    "tier_required": N_("This gift is reserved for a higher membership tier."),
    "out_of_stock": N_("Sorry, this gift is out of stock."),
    "flash_sold_out": N_("Sorry, every unit of this flash sale is taken."),
    "flash_not_started": N_("The flash sale has not started yet."),
    "flash_ended": N_("The flash sale has ended."),
    "store_not_found": N_("Choose one of the stores."),
}
FALLBACK = N_("That did not work; nothing was changed.")
STATUS_NAMES = {
    "reserved": N_("Ready for pickup"),
    "fulfilled": N_("Picked up"),
    "shipped": N_("Shipped"),
    "received": N_("Received"),
    "cancelled": N_("Cancelled"),
    "returned": N_("Returned"),
}


def _common(request: Request) -> dict[str, Any]:
    return {"tab": "mall", "category_names": CATEGORY_NAMES, "status_names": STATUS_NAMES}


@router.get("/mall")
def mall_page(
    request: Request,
    viewer: Member,
    category: Annotated[str | None, Query(max_length=32)] = None,
    band: Annotated[int | None, Query(ge=0, le=5)] = None,
) -> HTMLResponse:
    member = common.member(request, viewer)
    session = common.session(request)
    settings = mall.get_settings(session)
    now = common.now(request)
    gifts = mall.browse(session, now, category=category or None, band=band)
    bands = [
        (i, domain.band_label(i, settings.band_bounds))
        for i in range(len(settings.band_bounds) + 1)
    ]
    return render(
        request,
        "portal/mall.html",
        {
            **_common(request),
            "gifts": gifts,
            "categories": settings.categories,
            "category": category,
            "bands": bands,
            "band": band,
            "available": queries.balance(session, member.id, now).available,
        },
    )


def _gift_page(
    request: Request, viewer: Viewer, code: str, *, error: str | None = None, status: int = 200
) -> HTMLResponse:
    member = common.member(request, viewer)
    session = common.session(request)
    now = common.now(request)
    view = mall.view(session, mall.get_gift(session, code), now)
    stores = [s for s in catalog.list_stores(session) if s.is_active and s.kind == "store"]
    return render(
        request,
        "portal/mall_gift.html",
        {
            **_common(request),
            "g": view,
            "stores": stores,
            "available": queries.balance(session, member.id, now).available,
            "error": error,
        },
        status=status,
    )


@router.get("/mall/gifts/{code}")
def gift_page(request: Request, viewer: Member, code: GiftCode) -> HTMLResponse:
    return _gift_page(request, viewer, code)


@router.post("/mall/gifts/{code}")
def redeem(
    request: Request,
    viewer: Member,
    code: GiftCode,
    delivery: Annotated[str, Form(pattern=r"^(pickup|ship)$")] = "pickup",
    store_code: Annotated[str, Form(max_length=32)] = "",
    quantity: Annotated[int, Form(ge=1, le=domain.MAX_QUANTITY)] = 1,
) -> Response:
    member = common.member(request, viewer)
    session = common.session(request)
    ctx = request_ctx(request, session, common.actor(member), mall.SECTIONS)
    req = redemptions.RedeemRequest(
        gift_code=code, quantity=quantity, delivery=delivery, store_code=store_code or None,
        device_id=device_id(request),
    )  # fmt: skip
    try:
        r, _gift = redemptions.redeem(session, ctx, member, req)
    except RiskHold as hold:
        return risk_check.held(request, member, hold)
    except PatronError as exc:
        if exc.code == "gift_not_found":
            raise
        return _gift_page(
            request, viewer, code, error=MESSAGES.get(exc.code, FALLBACK), status=exc.status
        )
    return redirect(request, f"{PORTAL_PREFIX}/mall/codes/{r.code}", flash=N_("Redeemed!"))


@router.get("/mall/codes/{code}")
def code_page(
    request: Request,
    viewer: Member,
    code: Annotated[str, Path(pattern=r"^[A-Za-z0-9]{4,16}$")],
) -> HTMLResponse:
    member = common.member(request, viewer)
    session = common.session(request)
    r = redemptions.get(session, code)
    if r.member_id != member.id:  # another member's code is simply not there
        raise NotFound("redemption_not_found", f"No redemption with code {code}.")
    gift = mall.gift_by_id(session, r.gift_id)
    qr = segno.make(domain.qr_payload(r.code), error="m").svg_inline(border=2, omitsize=True)
    return render(
        request, "portal/mall_code.html", {**_common(request), "r": r, "gift": gift, "qr": qr}
    )


@router.get("/mall/orders")
def orders_page(request: Request, viewer: Member) -> HTMLResponse:
    member = common.member(request, viewer)
    rows = redemptions.of_member(common.session(request), member.id)
    return render(request, "portal/mall_orders.html", {**_common(request), "rows": rows})


@router.get("/mall/gifts/{code}/image/{size}")
def gift_image(
    request: Request,
    viewer: Member,
    code: GiftCode,
    size: Annotated[str, Path(pattern=r"^(large|thumb)$")],
) -> Response:
    return serve_image(request, code, size)
