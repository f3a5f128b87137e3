"""Console: the desk's gift verification (核销). The clerk scans or types the member's
redemption code; the gift is handed over once, at the desk's store, and audited."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Request
from starlette.responses import Response

from patron.errors import PatronError
from patron.mall import redemptions
from patron.mall import service as mall
from patron.web.console.desk_common import DESK, current_store, store_choices
from patron.web.console.page_kit import MallVerifier, console_router
from patron.web.context import request_ctx
from patron.web.i18n import N_
from patron.web.pages import get_session, render, translate

router = console_router(full_paths=True)
GIFTS = DESK + "/gifts"

MESSAGES = {
    "code_unknown": N_("No gift redemption has this code. Check it with the member."),
    "code_used": N_("This code was already used; the gift was handed over before."),
    "code_expired": N_("This code has expired; the member can redeem the gift again."),
    "redemption_cancelled": N_("This redemption was cancelled; do not hand the gift over."),
    "not_for_pickup": N_("This gift is shipped to the member, not picked up at a store."),
    "code_required": N_("Scan or type the member's redemption code."),
    "store_not_found": N_("Choose the store this desk works for first."),
}
FALLBACK = N_("That did not work; nothing was changed.")


def _context(request: Request, **more: Any) -> dict[str, Any]:
    session = get_session(request)
    return {
        "nav": "desk",
        "store": current_store(request, session),
        "stores": store_choices(session),
        "errors": {},
        "code": "",
        "done": None,
        **more,
    }


@router.get(GIFTS)
def gifts_desk(request: Request, viewer: MallVerifier) -> Response:
    return render(request, "console/desk/gifts.html", _context(request))


@router.post(GIFTS)
def verify_code(
    request: Request,
    viewer: MallVerifier,
    code: Annotated[str, Form(max_length=80)] = "",
) -> Response:
    session = get_session(request)
    store = current_store(request, session)
    if store is None:
        error = translate(request, MESSAGES["store_not_found"])
        ctx_page = _context(request, code=code, errors={"code": error})
        return render(request, "console/desk/gifts.html", ctx_page, status=422)
    try:
        ctx = request_ctx(request, session, viewer.principal, mall.SECTIONS)
        r, gift = redemptions.verify(session, ctx, code, store.code)
    except PatronError as exc:
        error = translate(request, MESSAGES.get(exc.code, FALLBACK))
        ctx_page = _context(request, code=code, errors={"code": error})
        return render(request, "console/desk/gifts.html", ctx_page, status=exc.status)
    done = {
        "code": r.code,
        "gift": gift.name,
        "quantity": r.quantity,
        "member_no": mall.member_no_of(session, r.member_id),
    }
    return render(request, "console/desk/gifts.html", _context(request, done=done))
