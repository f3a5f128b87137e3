"""Portal: the member changes their own phone number. A code goes to the new number; typing it
proves the member holds that number, which is what lets a member (unlike staff without
members:pii) make the change. Every portal session ends with it: the member signs in again
with the new number."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from patron.errors import PatronError
from patron.kit.phone import normalize_phone
from patron.members import service as members
from patron.otp import service as otp
from patron.web.i18n import N_
from patron.web.pages import (
    MEMBER_COOKIE,
    PORTAL_PREFIX,
    MemberPage,
    Viewer,
    clear_session_cookie,
    page_router,
    redirect,
    render,
    translate,
)
from patron.web.portal import common
from patron.web.portal.login import OTP_MESSAGES, SMS_TEXT, checked_code

router = page_router(PORTAL_PREFIX)
PURPOSE = "phone_change"
TAKEN = N_("This number already belongs to another membership.")
SAME = N_("This is already your number.")


def _form(
    request: Request,
    step: str,
    errors: dict[str, str],
    phone: str = "",
    status: int = 200,
) -> HTMLResponse:
    ctx = {
        "step": step,
        "errors": errors,
        "phone": phone,
        "ttl_minutes": common.settings(request).otp_ttl_minutes,
    }
    return render(request, "portal/phone.html", ctx, status=status)


@router.get("/profile/phone")
def phone_form(request: Request, viewer: Annotated[Viewer, Depends(MemberPage())]) -> HTMLResponse:
    return _form(request, "phone", {})


@router.post("/profile/phone/code")
def send_code(
    request: Request,
    viewer: Annotated[Viewer, Depends(MemberPage())],
    phone: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    member = common.member(request, viewer)
    cipher = common.cipher(request)
    if not phone.strip():
        return _form(request, "phone", {"phone": N_("Enter your new mobile number.")}, phone, 422)
    try:
        e164 = normalize_phone(phone)
    except PatronError:
        return _form(request, "phone", {"phone": OTP_MESSAGES["invalid_phone"]}, phone, 422)
    if e164 == members.decrypt_phone(member, cipher):
        return _form(request, "phone", {"phone": SAME}, phone, 422)
    if members.find_by_phone(common.session(request), cipher, e164) is not None:
        return _form(request, "phone", {"phone": TAKEN}, phone, 409)
    try:
        sent = otp.send_code(
            common.session(request),
            cipher,
            common.token_key(request),
            common.sms_channel(request),
            e164,
            now=common.now(request),
            tz=common.tz(request),
            limits=common.otp_limits(request),
            purpose=PURPOSE,
            message=translate(request, SMS_TEXT),
            source=request.client.host if request.client else None,
        )
    except otp.OtpRefused as refused:
        if refused.code == "otp_too_soon":
            return _form(request, "code", {"form": OTP_MESSAGES[refused.code]}, e164, 429)
        return _form(request, "phone", {"phone": OTP_MESSAGES[refused.code]}, phone, 429)
    return _form(request, "code", {}, sent.phone)


@router.post("/profile/phone/verify")
def verify_code(
    request: Request,
    viewer: Annotated[Viewer, Depends(MemberPage())],
    phone: Annotated[str, Form(max_length=32)] = "",
    code: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    if not code.strip():
        return _form(request, "code", {"code": N_("Enter the code from the SMS.")}, phone, 422)
    member = common.member(request, viewer)
    session = common.session(request)
    e164, message = checked_code(request, phone, code, PURPOSE)
    if e164 is None:
        return _form(request, "code", {"code": message}, phone, 422)
    try:
        with session.begin_nested():  # a refusal undoes the change, the used code stays used
            members.change_own_phone(
                session,
                common.actor(member),
                common.cipher(request),
                member,
                e164,
                now=common.now(request),
            )
    except PatronError:
        request.state.keep_writes = True
        return _form(request, "phone", {"phone": TAKEN}, "", 409)
    response = redirect(
        request,
        PORTAL_PREFIX + "/login",
        flash=N_("Your mobile number is changed. Sign in with the new number."),
    )
    clear_session_cookie(response, MEMBER_COOKIE)
    return response
