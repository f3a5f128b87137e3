"""Portal: campaigns the member is in, events to join (with a waiting list), and the member's
referral code with its QR."""

from __future__ import annotations

from typing import Annotated, Final

import segno
from fastapi import Depends, Path, Request
from fastapi.responses import HTMLResponse, Response

from patron.campaigns import member_events, referrals
from patron.campaigns import service as campaigns
from patron.errors import PatronError
from patron.kit.timeutil import business_date
from patron.web.i18n import N_
from patron.web.pages import PORTAL_PREFIX, MemberPage, Viewer, page_router, redirect, render
from patron.web.portal import common

router = page_router(PORTAL_PREFIX)
Member = Annotated[Viewer, Depends(MemberPage())]
EventCode = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_-]{0,39}$")]

ERRORS: Final = {
    "insufficient_points": N_("You do not have enough points for this event."),
    "event_closed": N_("Registration for this event is closed."),
    "event_tier_not_allowed": N_("This event is for other membership tiers."),
    "registration_not_active": N_("There is no registration to cancel."),
}
STATUS_LABELS: Final = {
    "registered": N_("You have a place"),
    "waitlisted": N_("On the waiting list"),
    "cancelled": N_("Cancelled"),
}


def _page(
    request: Request, viewer: Viewer, *, error: str | None = None, status: int = 200
) -> HTMLResponse:
    member = common.member(request, viewer)
    ctx = common.ctx(request, member)
    session = common.session(request)
    code = referrals.code_of(session, member.id, now=ctx.now)
    link = f"{PORTAL_PREFIX}/login?ref={code}"
    qr: str = segno.make(link, error="m").svg_inline(border=2, omitsize=True)
    return render(
        request,
        "portal/activities.html",
        {
            "tab": "activities",
            "campaigns": campaigns.for_member(
                session, member.id, today=business_date(ctx.now, ctx.tz), tz=ctx.tz
            ),
            "events": member_events.open_for(session, member.id, now=ctx.now),
            "referral_code": code,
            "referral_link": link,
            "referral_qr": qr,
            "offer": referrals.offer(session),
            "status_labels": STATUS_LABELS,
            "error": error,
        },
        status=status,
    )


@router.get("/activities")
def activities(request: Request, viewer: Member) -> HTMLResponse:
    return _page(request, viewer)


def _act(request: Request, viewer: Viewer, code: str, join: bool) -> Response:
    member = common.member(request, viewer)
    session = common.session(request)
    ctx = common.ctx(request, member)
    try:
        with session.begin_nested():
            if join:
                member_events.register(session, ctx, code, member.id)
            else:
                member_events.cancel(session, ctx, code, member.id)
    except PatronError as exc:
        message = ERRORS.get(exc.code, N_("That did not work; nothing was changed."))
        return _page(request, viewer, error=message, status=exc.status)
    flash = N_("You are registered.") if join else N_("Your registration is cancelled.")
    return redirect(request, f"{PORTAL_PREFIX}/activities", flash=flash)


@router.post("/activities/events/{code}/register")
def register(request: Request, code: EventCode, viewer: Member) -> Response:
    return _act(request, viewer, code, True)


@router.post("/activities/events/{code}/cancel")
def cancel(request: Request, code: EventCode, viewer: Member) -> Response:
    return _act(request, viewer, code, False)
