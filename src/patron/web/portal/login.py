"""Portal sign-in by SMS code, registration of a new phone, sign-out, language, demo SMS page."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

import jwt
from fastapi import Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from patron.auth.principal import Principal
from patron.campaigns import referrals
from patron.errors import Conflict, NotFound, PatronError
from patron.members import service as members
from patron.members.schemas import Consents, MemberCreate
from patron.otp import service as otp
from patron.web import i18n
from patron.web.i18n import N_
from patron.web.pages import (
    ALGORITHM,
    LANG_COOKIE,
    MEMBER_COOKIE,
    PORTAL_PREFIX,
    MemberPage,
    PublicPage,
    Viewer,
    clear_session_cookie,
    get_session,
    issue_member_session,
    page_router,
    redirect,
    render,
    secure_cookies,
    set_session_cookie,
    translate,
)
from patron.web.portal import common

router = page_router(PORTAL_PREFIX)
PROOF_MINUTES = 15
#: a referral link's code waits in this cookie until the registration (or for REF_DAYS)
REF_COOKIE = "patron_ref"
REF_DAYS = 30
REF_PATTERN = re.compile(r"[A-Z0-9]{4,16}")
OTP_MESSAGES = {
    "otp_too_soon": N_("Wait a minute before asking for another code."),
    "otp_daily_cap": N_("Too many codes for this phone today; try again tomorrow."),
    "otp_source_cap": N_("Too many codes were asked for from this network; try later."),
    "otp_missing": N_("Ask for a code first."),
    "otp_expired": N_("This code has expired; ask for a new one."),
    "otp_locked": N_("Too many wrong codes; ask for a new one."),
    "otp_wrong": N_("This code is not right."),
    "invalid_phone": N_("Enter a valid mobile phone number."),
    "sms_not_configured": N_("Sign-in by SMS is not available yet."),
}
SMS_TEXT = N_("Your Patron code is {code}. It expires in {minutes} minutes.")


def _phone_form(
    request: Request, errors: dict[str, str], phone: str = "", status: int = 200
) -> HTMLResponse:
    ctx = {"step": "phone", "errors": errors, "phone": phone, "demo": _demo(request)}
    return render(request, "portal/login.html", ctx, status=status)


def _demo(request: Request) -> bool:
    return common.settings(request).env in common.DEMO_PAGE_ENVS


def _code_form(
    request: Request, phone: str, errors: dict[str, str], status: int = 200
) -> HTMLResponse:
    ctx = {
        "step": "code",
        "errors": errors,
        "phone": phone,
        "demo": _demo(request),
        "ttl_minutes": common.settings(request).otp_ttl_minutes,
    }
    return render(request, "portal/login.html", ctx, status=status)


def _sign_in(request: Request, member_id: int) -> Response:
    ttl = common.settings(request).portal_session_minutes
    token = issue_member_session(member_id, common.token_key(request), ttl, common.now(request))
    response = redirect(request, PORTAL_PREFIX + "/")
    secure = secure_cookies(common.settings(request))
    set_session_cookie(response, MEMBER_COOKIE, token, ttl * 60, secure=secure)
    return response


def _proof(request: Request, phone: str) -> str:
    """A signed note that this phone passed the code check, for the registration form. It is
    spent by the registration (``jti``): replayed, it would be a sign-in without a code."""
    now = common.now(request)
    claims = {
        "typ": "phone-proof",
        "sub": phone,
        "exp": int((now + timedelta(minutes=PROOF_MINUTES)).timestamp()),
        "jti": secrets.token_urlsafe(16),
    }
    return jwt.encode(claims, common.token_key(request), algorithm=ALGORITHM)


@dataclass(frozen=True, slots=True)
class _Proven:
    phone: str
    proof_id: str
    expires_at: datetime


def _proven_phone(request: Request, proof: str) -> _Proven | None:
    try:
        claims = jwt.decode(
            proof, common.token_key(request), algorithms=[ALGORITHM], options={"verify_exp": False}
        )
    except jwt.PyJWTError:
        return None
    if claims.get("typ") != "phone-proof":
        return None
    exp = claims.get("exp")
    if not isinstance(exp, int) or exp <= int(common.now(request).timestamp()):
        return None
    phone, proof_id = claims.get("sub"), claims.get("jti")
    if not isinstance(phone, str) or not isinstance(proof_id, str) or len(proof_id) > 64:
        return None
    return _Proven(phone, proof_id, datetime.fromtimestamp(exp, UTC))


@router.get("/login")
def login_form(
    request: Request,
    viewer: Annotated[Viewer, Depends(PublicPage())],
    ref: Annotated[str, Query(max_length=40)] = "",
) -> HTMLResponse:
    """A referral link (``?ref=CODE``) leaves its code in a cookie for the registration form,
    which may come three steps later; a malformed code is ignored, never an error."""
    code = ref.strip().upper()
    response = _phone_form(request, {})
    if REF_PATTERN.fullmatch(code):
        response.set_cookie(
            REF_COOKIE,
            code,
            max_age=REF_DAYS * 86400,
            httponly=True,
            samesite="lax",
            path=PORTAL_PREFIX,
            secure=secure_cookies(common.settings(request)),
        )
    return response


def _referrer(request: Request) -> str | None:
    """The member number behind the referral code the sign-up came with (an unknown code:
    nobody; the referral job then applies its abuse limits)."""
    code = request.cookies.get(REF_COOKIE, "")
    if not REF_PATTERN.fullmatch(code):
        return None
    try:
        return referrals.referrer_by_code(common.session(request), code)
    except NotFound:
        return None


@router.post("/login/code")
def send_code(
    request: Request,
    viewer: Annotated[Viewer, Depends(PublicPage())],
    phone: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    if not phone.strip():
        return _phone_form(request, {"phone": N_("Enter your mobile phone number.")}, phone, 422)
    try:
        sent = otp.send_code(
            common.session(request),
            common.cipher(request),
            common.token_key(request),
            common.sms_channel(request),
            phone,
            now=common.now(request),
            tz=common.tz(request),
            limits=common.otp_limits(request),
            message=translate(request, SMS_TEXT),
            source=request.client.host if request.client else None,
        )
    except otp.OtpRefused as refused:
        if refused.code == "otp_too_soon":  # a code is on its way: let them type it
            return _code_form(request, phone.strip(), {"form": OTP_MESSAGES[refused.code]}, 429)
        return _phone_form(request, {"phone": OTP_MESSAGES[refused.code]}, phone, 429)
    except PatronError as exc:
        message = OTP_MESSAGES.get(exc.code, OTP_MESSAGES["invalid_phone"])
        return _phone_form(request, {"phone": message}, phone, 422)
    return _code_form(request, sent.phone, {})


def checked_code(
    request: Request, phone: str, code: str, purpose: str = otp.PURPOSE_LOGIN
) -> tuple[str | None, str]:
    """``(E.164 number, "")`` when ``code`` is the live code sent to ``phone`` for ``purpose``;
    else ``(None, message for the code field)``. A wrong try still counts (the page answers 422,
    which would otherwise roll the counter back)."""
    try:
        e164 = otp.verify_code(
            common.session(request),
            common.cipher(request),
            common.token_key(request),
            phone,
            code,
            now=common.now(request),
            limits=common.otp_limits(request),
            purpose=purpose,
        )
    except PatronError as exc:
        request.state.keep_writes = True
        return None, OTP_MESSAGES.get(exc.code, OTP_MESSAGES["invalid_phone"])
    return e164, ""


@router.post("/login/verify")
def verify_code(
    request: Request,
    viewer: Annotated[Viewer, Depends(PublicPage())],
    phone: Annotated[str, Form(max_length=32)] = "",
    code: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    if not code.strip():
        return _code_form(request, phone, {"code": N_("Enter the code from the SMS.")}, 422)
    session = common.session(request)
    e164, message = checked_code(request, phone, code)
    if e164 is None:
        return _code_form(request, phone, {"code": message}, 422)
    member = members.find_by_phone(session, common.cipher(request), e164)
    if member is None:
        ctx = {"step": "register", "errors": {}, "proof": _proof(request, e164)}
        return render(request, "portal/login.html", ctx)
    if member.status != "active":
        request.state.keep_writes = True
        errors = {"form": N_("This membership is not active; please ask at a store.")}
        return _phone_form(request, errors, "", 403)
    return _sign_in(request, member.id)


@router.post("/register")
def register(
    request: Request,
    viewer: Annotated[Viewer, Depends(PublicPage())],
    proof: Annotated[str, Form(max_length=1000)] = "",
    name: Annotated[str, Form(max_length=100)] = "",
    agree: Annotated[str, Form(max_length=8)] = "",
    consent_sms: Annotated[str, Form(max_length=8)] = "",
    consent_email: Annotated[str, Form(max_length=8)] = "",
    consent_push: Annotated[str, Form(max_length=8)] = "",
    consent_wechat: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    proven = _proven_phone(request, proof)
    if proven is None:
        expired = {"form": N_("Your code check has expired; ask for a new code.")}
        return _phone_form(request, expired, "", 422)
    errors: dict[str, str] = {}
    if not agree:
        errors["agree"] = N_("Please accept the membership terms to join.")
    if len(name.strip()) > 100:
        errors["name"] = N_("Use at most 100 characters.")
    if errors:
        ctx = {"step": "register", "errors": errors, "proof": proof, "name": name}
        return render(request, "portal/login.html", ctx, status=422)
    session = common.session(request)
    phone = proven.phone
    try:
        otp.spend_proof(session, proven.proof_id, proven.expires_at, now=common.now(request))
    except otp.OtpRefused:
        # a second use (a replay, or the slower of a double tap): no sign-in without a code
        used = {"form": N_("This code check was already used; sign in with a new code.")}
        return _phone_form(request, used, "", 409)
    existing = members.find_by_phone(session, common.cipher(request), phone)
    if existing is not None:  # registered meanwhile (another tab): just sign in
        return _sign_in(request, existing.id)
    consents = Consents(
        sms=bool(consent_sms),
        email=bool(consent_email),
        push=bool(consent_push),
        wechat=bool(consent_wechat),
    )
    data = MemberCreate(
        phone=phone,
        channel="web",
        name=name.strip() or None,
        consents=consents,
        referrer_member_no=_referrer(request),
    )
    try:
        # a savepoint: if a double tap's twin registered the phone first, this one's failed
        # insert is undone and the member it made is signed in instead
        with session.begin_nested():
            member = members.register(
                session,
                Principal(kind="member", id=None, label="portal:self-registration"),
                common.cipher(request),
                data,
                now=common.now(request),
                tz=common.tz(request),
            )
    except Conflict:
        existing = members.find_by_phone(session, common.cipher(request), phone)
        if existing is None:
            raise
        return _sign_in(request, existing.id)
    response = _sign_in(request, member.id)
    response.delete_cookie(REF_COOKIE, path=PORTAL_PREFIX)
    return response


@router.post("/logout")
def logout(request: Request, viewer: Annotated[Viewer, Depends(MemberPage())]) -> Response:
    members.end_portal_sessions(get_session(request), viewer.extra["member"], common.now(request))
    response = redirect(request, PORTAL_PREFIX + "/login", flash="You are signed out.")
    clear_session_cookie(response, MEMBER_COOKIE)
    return response


@router.get("/lang/{code}")
def set_language(
    request: Request,
    code: str,
    viewer: Annotated[Viewer, Depends(PublicPage())],
    back: str = "",
) -> Response:
    chosen = i18n.normalize_locale(code) or i18n.DEFAULT_LOCALE
    # Only back into the portal: never an open redirect.
    target = (
        back if back.startswith(PORTAL_PREFIX + "/") and "//" not in back else PORTAL_PREFIX + "/"
    )
    response = redirect(request, target)
    response.set_cookie(LANG_COOKIE, chosen, samesite="lax", path="/", max_age=365 * 86400)
    return response


@router.get("/demo/sms")
def demo_sms(request: Request, viewer: Annotated[Viewer, Depends(PublicPage())]) -> HTMLResponse:
    channel = common.demo_channel(request)
    if channel is None:  # production: the page does not exist
        raise NotFound("not_found", "This page does not exist.")
    return render(request, "portal/demo_sms.html", {"messages": channel.recent()})
