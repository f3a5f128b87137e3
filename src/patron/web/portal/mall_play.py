"""Portal: the mall's lottery (pools with their published odds, a draw and its result) and flash
sales (upcoming and open ones with what is left, a waiting page that opens at the second,
redeemed in one step).

Every paid POST answers with a redirect to a page that only reads (the draw's result, the
redemption code), so a refresh or a back button never draws or redeems twice."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Form, Path, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from patron.errors import PatronError
from patron.kit.timeutil import business_date
from patron.ledger import queries
from patron.ledger.service import Ctx
from patron.mall import lottery, redemptions
from patron.mall import service as mall
from patron.members.models import Member as MemberRow
from patron.risk.service import RiskHold
from patron.web.context import device_id, request_ctx
from patron.web.i18n import N_
from patron.web.pages import PORTAL_PREFIX, MemberPage, Viewer, page_router, redirect, render
from patron.web.portal import common, risk_check
from patron.web.portal.mall import FALLBACK, MESSAGES

router = page_router(PORTAL_PREFIX)
Member = Annotated[Viewer, Depends(MemberPage())]
PoolCode = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,32}$")]
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]

#: lottery refusals in words (the gift refusals are shared with the mall page)
LOTTERY_MESSAGES = {
    **MESSAGES,
    "over_daily_limit": N_("You have used all your draws of this lottery today."),
    "lottery_closed": N_("This lottery is not open."),
    "flash_sale_not_found": N_("This flash sale does not exist."),
}


def _ctx(request: Request, session: Session, member: MemberRow) -> Ctx:
    return request_ctx(request, session, common.actor(member), mall.SECTIONS)


def _lottery_page(
    request: Request, viewer: Viewer, *, error: str | None = None, status: int = 200
) -> HTMLResponse:
    member = common.member(request, viewer)
    session = common.session(request)
    now = common.now(request)
    rows = lottery.pools(session, active_only=True)
    left = lottery.draws_left(
        session, member.id, [p for p, _ in rows], business_date(now, common.tz(request))
    )
    return render(
        request,
        "portal/mall_lottery.html",
        {
            "tab": "mall",
            "pools": rows,
            "left": left,
            "available": queries.balance(session, member.id, now).available,
            "error": error,
        },
        status=status,
    )


@router.get("/mall/lottery")
def lottery_page(request: Request, viewer: Member) -> HTMLResponse:
    return _lottery_page(request, viewer)


@router.post("/mall/lottery/{code}")
def draw(request: Request, viewer: Member, code: PoolCode) -> Response:
    member = common.member(request, viewer)
    session = common.session(request)
    try:
        result = lottery.draw(session, _ctx(request, session, member), member, code)
    except PatronError as exc:
        if exc.code == "lottery_not_found":
            raise
        message = LOTTERY_MESSAGES.get(exc.code, FALLBACK)
        return _lottery_page(request, viewer, error=message, status=exc.status)
    return redirect(request, f"{PORTAL_PREFIX}/mall/lottery/draws/{result.draw.id}")


@router.get("/mall/lottery/draws/{draw_id}")
def draw_page(request: Request, viewer: Member, draw_id: RowId) -> HTMLResponse:
    """A draw's result: only read, so reloading it shows the same prize and draws nothing."""
    member = common.member(request, viewer)
    session = common.session(request)
    result = lottery.get_draw(session, member.id, draw_id)
    return render(
        request,
        "portal/mall_draw.html",
        {
            "tab": "mall",
            "result": result,
            "fell_back": result.draw.drawn_prize_id != result.prize.id,
            "available": queries.balance(session, member.id, common.now(request)).available,
        },
    )


def _flash_page(
    request: Request, viewer: Viewer, *, error: str | None = None, status: int = 200
) -> HTMLResponse:
    member = common.member(request, viewer)
    session = common.session(request)
    now = common.now(request)
    sales = [
        (s, c)
        for s, c in redemptions.flash_sales(session)
        if s.ends_at > now and s.closed_at is None
    ]
    sales.reverse()  # the soonest first
    return render(
        request,
        "portal/mall_flash.html",
        {
            "tab": "mall",
            "sales": sales,
            "now": now,
            "available": queries.balance(session, member.id, now).available,
            "error": error,
        },
        status=status,
    )


@router.get("/mall/flash")
def flash_page(request: Request, viewer: Member) -> HTMLResponse:
    return _flash_page(request, viewer)


@router.get("/mall/flash/{sale_id}")
def flash_wait_page(request: Request, viewer: Member, sale_id: RowId) -> HTMLResponse:
    """The waiting page: the server's time is in the page, a countdown runs from it and the
    redeem button is enabled at the start (the server still refuses an early attempt)."""
    member = common.member(request, viewer)
    session = common.session(request)
    now = common.now(request)
    sale, gift = redemptions.get_flash_sale(session, sale_id)
    if sale.closed_at is not None or sale.ends_at <= now:
        state = "ended"
    elif sale.granted >= sale.quantity:
        state = "sold-out"
    elif now < sale.starts_at:
        state = "waiting"
    else:
        state = "open"
    return render(
        request,
        "portal/mall_flash_wait.html",
        {
            "tab": "mall",
            "sale": sale,
            "gift": gift,
            "state": state,
            "now_ms": int(now.timestamp() * 1000),
            "start_ms": int(sale.starts_at.timestamp() * 1000),
            "available": queries.balance(session, member.id, now).available,
        },
    )


@router.post("/mall/flash")
def flash_redeem(
    request: Request,
    viewer: Member,
    sale_id: Annotated[int, Form(ge=1, le=2**31 - 1)],
    gift_code: Annotated[str, Form(pattern=r"^[A-Za-z0-9_-]{1,32}$")],
) -> Response:
    member = common.member(request, viewer)
    session = common.session(request)
    ctx = _ctx(request, session, member)
    req = redemptions.RedeemRequest(
        gift_code=gift_code, quantity=1, delivery="pickup", flash_sale_id=sale_id,
        device_id=device_id(request),
    )  # fmt: skip
    try:
        r, _gift = redemptions.redeem(session, ctx, member, req)
    except RiskHold as hold:
        return risk_check.held(request, member, hold)
    except PatronError as exc:
        message = LOTTERY_MESSAGES.get(exc.code, FALLBACK)
        return _flash_page(request, viewer, error=message, status=max(exc.status, 400))
    return redirect(request, f"{PORTAL_PREFIX}/mall/codes/{r.code}", flash=N_("Redeemed!"))
