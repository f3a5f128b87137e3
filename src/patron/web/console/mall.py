"""Console: the points mall for operators — gifts and their images, warehouses and stock
(receipts, adjustments after a count, transfers) and the latest stock movements."""

from __future__ import annotations

import re
from typing import Annotated, Any, Final

from fastapi import File, Form, Path, Request, UploadFile
from pydantic import ValidationError
from starlette.responses import Response

from patron.auth import permissions as perm
from patron.errors import PatronError
from patron.ledger.service import Ctx
from patron.mall import gallery, images, replenish, stock, suppliers
from patron.mall import service as mall
from patron.mall.schemas import GiftIn
from patron.web.console.page_kit import MallManager, MallReader, console_router
from patron.web.context import request_ctx
from patron.web.gift_images import serve_image
from patron.web.i18n import N_
from patron.web.pages import (
    CONSOLE_PREFIX,
    Viewer,
    get_session,
    redirect,
    render,
    translate,
)

router = console_router(full_paths=True)
MALL = CONSOLE_PREFIX + "/mall"

MESSAGES = {
    "stock_below_zero": N_("Not enough units are available there; reserved units stay."),
    "warehouse_not_found": N_("Choose one of the warehouses."),
    "gift_not_found": N_("Choose one of the gifts."),
    "same_warehouse": N_("Choose two different warehouses."),
    "unknown_category": N_("Choose one of the categories."),
    "unknown_tier": N_("Choose a tier of the ladder, or none."),
    "reason_required": N_("Give a reason for the adjustment."),
    "invalid_quantity": N_("Enter a whole number of units."),
    "purchase_request_closed": N_("This purchase request was already received."),
}
FALLBACK = N_("That did not work; nothing was changed.")
#: the image upload's address (its request may be larger than others, see app.py)
IMAGE_UPLOAD: Final = re.compile(r"^/console/mall/gift-images$")
#: what a stock movement was, in words
MOVEMENT_NAMES = {
    "receipt": N_("Stock received"),
    "reservation": N_("Reserved for a redemption"),
    "release": N_("Reservation released"),
    "shipment": N_("Handed over or shipped"),
    "return": N_("Returned by the member"),
    "adjustment": N_("Stock count adjustment"),
    "transfer_out": N_("Transferred out"),
    "transfer_in": N_("Transferred in"),
}
IMAGE_MESSAGES = {
    "image_empty": N_("Choose an image file to upload."),
    "image_too_large": N_("The image is too large; upload a smaller file."),
    "image_type": N_("Upload a JPEG, PNG or WebP image."),
    "image_dimensions": N_("Each side of the image must be between 100 and 8,000 pixels."),
}
INVALID = N_("Check the fields: a code of letters and digits, a name and whole points.")


def _ctx(request: Request, viewer: Viewer) -> Ctx:
    return request_ctx(request, get_session(request), viewer.principal, mall.SECTIONS)


def _page(
    request: Request, viewer: Viewer, *, error: str | None = None, status: int = 200
) -> Response:
    session = get_session(request)
    now = request.app.state.clock.now()
    settings = mall.get_settings(session)
    levels: dict[str, dict[str, Any]] = {}
    for code, s in stock.levels(session):
        levels.setdefault(code, {})[s.warehouse] = s
    ctx = {
        "nav": "mall",
        "gifts": mall.browse(session, now, include_closed=True),
        "levels": levels,
        "warehouses": settings.warehouses,
        "categories": settings.categories,
        "movements": stock.movements(session, limit=30),
        "alerts": replenish.alerts(session, now),
        "requests": replenish.requests(session)[:20],
        "supplier_codes": suppliers.codes_by_id(session),
        "job_label": replenish.JOB.label,
        "movement_names": MOVEMENT_NAMES,
        "image_max_mb": f"{request.app.state.settings.mall_image_max_bytes / 1_048_576:.0f}",
        "can_manage": viewer.can(perm.MALL_MANAGE),
        "error": translate(request, error) if error else None,
    }
    return render(request, "console/mall.html", ctx, status=status)


@router.get(MALL)
def mall_page(request: Request, viewer: MallReader) -> Response:
    return _page(request, viewer)


def _run(request: Request, viewer: Viewer, action: Any, done: str) -> Response:
    try:
        action()
    except PatronError as exc:
        return _page(
            request, viewer, error=MESSAGES.get(exc.code, FALLBACK), status=max(exc.status, 400)
        )
    return redirect(request, MALL, flash=done)


@router.post(MALL + "/gifts")
def save_gift(
    request: Request,
    viewer: MallManager,
    code: Annotated[str, Form(max_length=32)] = "",
    name: Annotated[str, Form(max_length=100)] = "",
    category: Annotated[str, Form(max_length=32)] = "",
    points: Annotated[str, Form(max_length=12)] = "",
    min_tier: Annotated[str, Form(max_length=32)] = "",
    limit_per_member: Annotated[str, Form(max_length=6)] = "",
) -> Response:
    try:
        data = GiftIn(
            code=code.strip(),
            name=name.strip(),
            category=category,
            points=int(points) if points.strip().isdigit() else 0,
            min_tier=min_tier or None,
            limit_per_member=int(limit_per_member) if limit_per_member.isdigit() else None,
        )
    except ValidationError:
        return _page(request, viewer, error=INVALID, status=422)
    now = request.app.state.clock.now()
    session = get_session(request)
    return _run(
        request,
        viewer,
        lambda: mall.upsert_gift(session, viewer.principal, data, now=now),
        N_("Gift saved."),
    )


def _units(raw: str) -> int:
    text = raw.strip()
    if not text.lstrip("-").isdigit() or len(text) > 8:
        raise PatronError("invalid_quantity", "whole units", status=422)
    return int(text)


@router.post(MALL + "/stock")
def move_stock(
    request: Request,
    viewer: MallManager,
    kind: Annotated[str, Form(pattern=r"^(receipt|adjustment|transfer)$")],
    gift_code: Annotated[str, Form(max_length=32)] = "",
    warehouse: Annotated[str, Form(max_length=16)] = "",
    to_warehouse: Annotated[str, Form(max_length=16)] = "",
    quantity: Annotated[str, Form(max_length=9)] = "",
    reason: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    session = get_session(request)

    def act() -> None:
        n = _units(quantity)
        ctx = _ctx(request, viewer)
        if kind == "receipt":
            stock.receive(session, ctx, gift_code, warehouse, n, reason)
        elif kind == "adjustment":
            stock.adjust(session, ctx, gift_code, warehouse, n, reason)
        else:
            stock.transfer(session, ctx, gift_code, warehouse, to_warehouse, n, reason)

    return _run(request, viewer, act, N_("Stock updated."))


@router.post(MALL + "/purchase-requests")
def raise_requests(request: Request, viewer: MallManager) -> Response:
    session = get_session(request)
    return _run(
        request,
        viewer,
        lambda: replenish.raise_requests(session, _ctx(request, viewer)),
        N_("Purchase requests raised for the gifts short of stock."),
    )


@router.post(MALL + "/purchase-requests/{request_id}/receive")
def receive_request(
    request: Request,
    viewer: MallManager,
    request_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
) -> Response:
    session = get_session(request)
    return _run(
        request,
        viewer,
        lambda: replenish.receive_request(session, _ctx(request, viewer), request_id),
        N_("Stock received."),
    )


@router.post(MALL + "/gift-images")
def upload_image(
    request: Request,
    viewer: MallManager,
    gift_code: Annotated[str, Form(max_length=32)] = "",
    image: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Validate, resize and store the image, then point the gift at it (nothing is stored when
    the image is refused)."""
    max_bytes = request.app.state.settings.mall_image_max_bytes
    data = image.file.read(max_bytes + 1) if image is not None else b""
    session = get_session(request)
    try:
        gift = mall.get_gift(session, gift_code)
        prepared = images.prepare(gift.code, data, max_bytes)
        images.save(images.for_app(request.app.state), prepared)
        now = request.app.state.clock.now()
        gallery.add(session, viewer.principal, gift, prepared, now)
    except PatronError as exc:
        message = IMAGE_MESSAGES.get(exc.code) or MESSAGES.get(exc.code, FALLBACK)
        return _page(request, viewer, error=message, status=max(exc.status, 400))
    return redirect(request, MALL, flash=N_("Image uploaded."))


@router.get(MALL + "/gifts/{code}/image/{size}")
def console_image(
    request: Request,
    viewer: MallReader,
    code: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,32}$")],
    size: Annotated[str, Path(pattern=r"^(large|thumb)$")],
) -> Response:
    return serve_image(request, code, size)
