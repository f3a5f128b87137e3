"""Portal: daily check-in with streak bonuses and this month's calendar."""

from __future__ import annotations

import calendar
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, Response

from patron.checkin import service as checkin
from patron.errors import Conflict
from patron.web.i18n import N_
from patron.web.pages import PORTAL_PREFIX, MemberPage, Viewer, page_router, redirect, render
from patron.web.portal import common

router = page_router(PORTAL_PREFIX)


def _page(
    request: Request, viewer: Viewer, *, error: str | None = None, status: int = 200
) -> HTMLResponse:
    member = common.member(request, viewer)
    ctx = common.ctx(request, member)
    session = common.session(request)
    state = checkin.status(session, ctx, member.id)
    today = state.today
    done = {
        c.business_date.day: c for c in checkin.month(session, member.id, today.year, today.month)
    }
    weeks = calendar.Calendar(firstweekday=0).monthdayscalendar(today.year, today.month)
    return render(
        request,
        "portal/checkin.html",
        {
            "tab": "checkin",
            "state": state,
            "weeks": weeks,
            "done": done,
            "error": error,
        },
        status=status,
    )


@router.get("/checkin")
def checkin_page(
    request: Request, viewer: Annotated[Viewer, Depends(MemberPage())]
) -> HTMLResponse:
    return _page(request, viewer)


@router.post("/checkin")
def check_in(request: Request, viewer: Annotated[Viewer, Depends(MemberPage())]) -> Response:
    member = common.member(request, viewer)
    try:
        reward = checkin.check_in(common.session(request), common.ctx(request, member), member.id)
    except Conflict as exc:
        message = (
            N_("You have already checked in today. Come back tomorrow!")
            if exc.code == "already_checked_in"
            else N_("Daily check-in is not available right now.")
        )
        return _page(request, viewer, error=message, status=409)
    if reward.issued:
        flash = N_("Checked in! A coupon is waiting in your wallet.")
    elif reward.bonus:
        flash = N_("Checked in! Streak bonus included.")
    else:
        flash = N_("Checked in!")
    return redirect(request, PORTAL_PREFIX + "/checkin", flash=flash)
