"""Portal: a redemption held by risk review. Step-up: the member enters the code we sent by
SMS, then redeems again; manual review: the page says the team checks it."""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import Depends, Form, Path, Request
from fastapi.responses import HTMLResponse, Response

from patron.errors import NotFound, PatronError
from patron.members import service as members
from patron.members.models import Member
from patron.otp import service as otp
from patron.risk import service as risk
from patron.risk.models import RiskReview
from patron.web.i18n import N_
from patron.web.pages import (
    PORTAL_PREFIX,
    MemberPage,
    Viewer,
    page_router,
    redirect,
    render,
    translate,
)
from patron.web.portal import common

router = page_router(PORTAL_PREFIX)
PURPOSE: Final = "risk"
SMS_TEXT: Final = N_(
    "Your code to confirm the redemption is {code}. It expires in {minutes} minutes."
)
CODE_MESSAGES: Final = {
    "otp_wrong": N_("This code is not right. Check the SMS and try again."),
    "otp_expired": N_("This code has expired. We sent you a new one."),
    "otp_locked": N_("Too many wrong codes. Ask for a new one."),
}


def _send(request: Request, member: Member) -> None:
    otp.send_code(
        common.session(request),
        common.cipher(request),
        common.token_key(request),
        common.sms_channel(request),
        members.decrypt_phone(member, common.cipher(request)),
        now=common.now(request),
        tz=common.tz(request),
        limits=common.otp_limits(request),
        purpose=PURPOSE,
        message=translate(request, SMS_TEXT),
    )


def held(request: Request, member: Member, hold: risk.RiskHold) -> Response:
    """Open the review (the redemption itself was not made) and, for a step-up, send the
    member a code; then show the page that explains what happens next."""
    session = common.session(request)
    review = risk.open_review(session, common.actor(member), hold)
    if review.decision == "step_up":
        try:
            with session.begin_nested():
                _send(request, member)
        except PatronError:
            pass  # too soon for another SMS: the last code still works
    return redirect(request, f"{PORTAL_PREFIX}/risk/{review.id}")


def _own(request: Request, member: Member, review_id: int) -> RiskReview:
    r = risk.get(common.session(request), review_id)
    if r.member_id != member.id:
        raise NotFound("risk_review_not_found", f"No risk review {review_id}.")
    return r


def _page(
    request: Request, viewer: Viewer, review_id: int, error: str | None = None, status: int = 200
) -> HTMLResponse:
    member = common.member(request, viewer)
    r = _own(request, member, review_id)
    ctx = {"tab": "mall", "r": r, "error": error}
    return render(request, "portal/risk_check.html", ctx, status=status)


@router.get("/risk/{review_id}")
def review_page(
    request: Request,
    viewer: Annotated[Viewer, Depends(MemberPage())],
    review_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
) -> HTMLResponse:
    return _page(request, viewer, review_id)


@router.post("/risk/{review_id}")
def verify(
    request: Request,
    viewer: Annotated[Viewer, Depends(MemberPage())],
    review_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    code: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    member = common.member(request, viewer)
    session = common.session(request)
    r = _own(request, member, review_id)
    try:
        with session.begin_nested():
            otp.verify_code(
                session,
                common.cipher(request),
                common.token_key(request),
                members.decrypt_phone(member, common.cipher(request)),
                code.strip(),
                now=common.now(request),
                limits=common.otp_limits(request),
                purpose=PURPOSE,
            )
            risk.verified(session, common.actor(member), r, common.now(request))
    except PatronError as exc:
        message = CODE_MESSAGES.get(
            exc.code, N_("This code is not right. Check the SMS and try again.")
        )
        # a wrong attempt counts (the OTP service limits them): keep that write
        request.state.keep_writes = True
        return _page(request, viewer, review_id, message, 422)
    return redirect(
        request,
        f"{PORTAL_PREFIX}/mall/gifts/{r.subject}",
        flash=N_("Thank you, confirmed. You can redeem the gift now."),
    )
