"""Portal: "Me" — profile (name, birthday once, gender, email, city, preferred channel,
consent per channel) with the one-off profile-completion bonus, and sign-out."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from patron.errors import PatronError
from patron.members import completion
from patron.members import service as members
from patron.members.domain import CONTACT_CHANNELS
from patron.members.models import Member
from patron.members.schemas import Consents, MemberUpdate
from patron.orders.service import earning_rules
from patron.web.i18n import N_
from patron.web.pages import (
    PORTAL_PREFIX,
    MemberPage,
    Viewer,
    get_session,
    page_router,
    parse_day,
    redirect,
    render,
    translate,
)
from patron.web.portal import common

router = page_router(PORTAL_PREFIX)
FIELD_MESSAGES = {
    "name": N_("Use at most 100 characters."),
    "email": N_("Enter a valid email address, e.g. name@example.com."),
    "birthday": N_("Enter a valid date."),
    "city": N_("Use at most 64 characters."),
    "gender": N_("Choose one of the options."),
    "preferred_channel": N_("Choose one of the options."),
}
GENDERS = (
    ("", N_("Not set")),
    ("female", N_("Female")),
    ("male", N_("Male")),
    ("other", N_("Other")),
    ("undisclosed", N_("Prefer not to say")),
)
CHANNEL_LABELS = {
    "sms": N_("SMS"),
    "email": N_("Email"),
    "push": N_("App notifications"),
    "wechat": N_("WeChat"),
}


def _form_values(request: Request, member: Member) -> dict[str, Any]:
    consents = {c.channel: c.granted for c in members.consents_of(get_session(request), member.id)}
    return {
        "name": member.name or "",
        "email": members.decrypt_email(member, common.cipher(request)) or "",
        "birthday": member.birthday.isoformat() if member.birthday else "",
        "gender": member.gender or "",
        "city": member.city or "",
        "preferred_channel": member.preferred_channel or "",
        "consents": {ch: consents.get(ch, False) for ch in CONTACT_CHANNELS},
    }


def _render(
    request: Request,
    member: Member,
    values: dict[str, Any],
    errors: dict[str, str],
    status: int = 200,
) -> HTMLResponse:
    session = common.session(request)
    rule = earning_rules(session).profile_completion
    return render(
        request,
        "portal/profile.html",
        {
            "tab": "me",
            "member": member,
            "values": values,
            "errors": errors,
            "birthday_locked": member.birthday is not None,
            "genders": [(v, translate(request, label)) for v, label in GENDERS],
            "channel_options": [("", translate(request, N_("Not set")))]
            + [(v, translate(request, label)) for v, label in CHANNEL_LABELS.items()],
            "channels": CHANNEL_LABELS,
            "bonus_points": rule.points if rule.enabled else 0,
            "bonus_awarded": completion.already_awarded(session, member.id),
        },
        status=status,
    )


@router.get("/me")
def me(request: Request, viewer: Annotated[Viewer, Depends(MemberPage())]) -> HTMLResponse:
    member = common.member(request, viewer)
    return render(request, "portal/me.html", {"tab": "me", "member": member})


@router.get("/profile")
def profile_form(
    request: Request, viewer: Annotated[Viewer, Depends(MemberPage())]
) -> HTMLResponse:
    member = common.member(request, viewer)
    return _render(request, member, _form_values(request, member), {})


@router.post("/profile")
def save_profile(
    request: Request,
    viewer: Annotated[Viewer, Depends(MemberPage())],
    name: Annotated[str, Form(max_length=200)] = "",
    email: Annotated[str, Form(max_length=300)] = "",
    birthday: Annotated[str, Form(max_length=20)] = "",
    gender: Annotated[str, Form(max_length=20)] = "",
    city: Annotated[str, Form(max_length=200)] = "",
    preferred_channel: Annotated[str, Form(max_length=20)] = "",
    consent_sms: Annotated[str, Form(max_length=8)] = "",
    consent_email: Annotated[str, Form(max_length=8)] = "",
    consent_push: Annotated[str, Form(max_length=8)] = "",
    consent_wechat: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    # two saves at once must not both find the birthday unset
    member = members.lock(common.session(request), common.member(request, viewer))
    granted = {
        "sms": bool(consent_sms),
        "email": bool(consent_email),
        "push": bool(consent_push),
        "wechat": bool(consent_wechat),
    }
    values = {
        "name": name,
        "email": email,
        "birthday": birthday,
        "gender": gender,
        "city": city,
        "preferred_channel": preferred_channel,
        "consents": granted,
    }
    errors: dict[str, str] = {}
    changes: dict[str, Any] = {
        "name": name.strip() or None,
        "email": email.strip() or None,
        "gender": gender or None,
        "city": city.strip() or None,
        "preferred_channel": preferred_channel or None,
    }
    if member.birthday is None and birthday.strip():
        try:
            changes["birthday"] = parse_day(birthday.strip())
        except ValueError:
            errors["birthday"] = FIELD_MESSAGES["birthday"]
    elif member.birthday is not None and birthday.strip() not in ("", member.birthday.isoformat()):
        errors["birthday"] = N_("Your birthday is already set; please ask at a store to change it.")
    try:
        update = MemberUpdate(**changes)
    except ValidationError as exc:
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "form"
            errors.setdefault(field, FIELD_MESSAGES.get(field, N_("Check this field.")))
    if errors:
        return _render(request, member, values, errors, 422)
    session = common.session(request)
    cipher = common.cipher(request)
    ctx = common.ctx(request, member)
    try:
        members.update_profile(
            session, ctx.actor, cipher, member.member_no, update, now=ctx.now, tz=ctx.tz
        )
    except PatronError as exc:
        field = str(exc.details.get("field", "form"))
        message = {
            "birthday_in_future": N_("The birthday cannot be in the future."),
            "birthday_out_of_range": N_("Enter a birthday after 1900."),
        }.get(exc.code, FIELD_MESSAGES.get(field, N_("Check this field.")))
        return _render(request, member, values, {field: message}, 422)
    members.set_consents(
        session, ctx.actor, member.member_no, Consents(**granted), now=ctx.now, source="portal"
    )
    awarded = completion.award_if_complete(session, ctx, cipher, member)
    flash = (
        N_("Profile saved. You earned the profile completion bonus!")
        if awarded
        else N_("Profile saved.")
    )
    return redirect(request, PORTAL_PREFIX + "/profile", flash=flash)
