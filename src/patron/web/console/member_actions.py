"""Console: the forms on a member's page — profile, tags, points/growth adjustments and tier
overrides. Each calls the same service as the REST API (which audits it). Bad input re-renders
the member page with the message next to the field and status 422, which rolls the page's
transaction back; service calls run in a savepoint so the page can still be read afterwards."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any, Final, TypeVar

from fastapi import Form, Request
from fastapi.responses import Response
from pydantic import ValidationError

from patron.auth import permissions as perm
from patron.errors import PatronError
from patron.ledger import domain as ledger_domain
from patron.ledger import flows
from patron.ledger import service as ledger
from patron.members import service as members
from patron.members.schemas import MemberUpdate
from patron.tiers import domain as tier_domain
from patron.tiers import service as tiers
from patron.web.console.members import cipher_of, detail_context, ledger_ctx
from patron.web.console.page_kit import MembersWriter, PointsAdjuster, console_router
from patron.web.i18n import N_
from patron.web.pages import (
    CONSOLE_PREFIX,
    Viewer,
    get_session,
    parse_day,
    redirect,
    render,
)
from patron.web.portal import summary

router = console_router()
T = TypeVar("T")

# The REST API guards tier overrides with points:adjust too (tiers/api.py).

# Generous: the profile schema checks the real limits and says so next to the field.
FormText = Annotated[str | None, Form(max_length=1000)]
# What a person can act on, per field, when the profile schema refuses a value.
PROFILE_MESSAGES: Final = {
    "name": N_("Enter a name of at most 100 characters."),
    "phone": N_("Enter a mobile phone number, e.g. 13800138000."),
    "email": N_("Enter a valid email address, e.g. name@example.com."),
    "birthday": N_("Enter the date as YYYY-MM-DD."),
    "gender": N_("Choose a value from the list."),
    "city": N_("Enter at most 64 characters."),
    "region": N_("Enter at most 64 characters."),
    "preferred_channel": N_("Choose a value from the list."),
    "member_type": N_("Choose a value from the list."),
    "reason": N_("Enter a reason of at most 200 characters."),
}
# Service error code → (field, message id); anything else is shown above the form.
SERVICE_MESSAGES: Final = {
    "invalid_phone": ("phone", N_("Enter a mobile phone number, e.g. 13800138000.")),
    "member_exists": ("phone", N_("This phone number already belongs to another member.")),
    "phone_required": ("phone", N_("A member must keep a phone number.")),
    "birthday_in_future": ("birthday", N_("The birthday cannot be in the future.")),
    "birthday_out_of_range": ("birthday", N_("The birthday must be after 1900.")),
    "member_type_required": ("member_type", N_("Choose a value from the list.")),
    "member_erased": ("form", N_("This member was erased on request; the profile is closed.")),
    "invalid_tag": (
        "tag",
        N_("A tag is 1-32 letters, digits, spaces or . & + - _ and starts with a letter or digit."),
    ),
    "rule_tag": ("tag", N_("This tag is computed by a rule and cannot be set by hand.")),
    "tag_not_found": ("tag", N_("The member does not have this tag.")),
    "insufficient_points": ("amount", N_("The member does not have that many points.")),
    "insufficient_growth": ("amount", N_("The member does not have that much growth value.")),
    "invalid_amount": ("amount", N_("Enter a whole number that is not zero.")),
    "unknown_tier": ("tier", N_("Choose a tier from the list.")),
    "invalid_until": ("until", N_("The date must be in the future.")),
    "reason_required": ("reason", N_("Give a reason.")),
}
FALLBACK_MESSAGE: Final = N_("That did not work; nothing was changed.")
AMOUNT_PATTERN: Final = re.compile(r"^[+-]?[0-9]{1,13}$")


class FormInvalid(Exception):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors)
        self.errors = errors


def _call(request: Request, fn: Callable[[], T], *, rename: dict[str, str] | None = None) -> T:
    """Run a service call in a savepoint; a refusal becomes a field error (and is undone)."""
    session = get_session(request)
    try:
        with session.begin_nested():
            return fn()
    except PatronError as exc:
        field, message = SERVICE_MESSAGES.get(exc.code, ("form", FALLBACK_MESSAGE))
        field = (rename or {}).get(field, field)
        raise FormInvalid({field: message}) from exc


def _refuse(
    request: Request,
    viewer: Viewer,
    member_no: str,
    *,
    tab: str,
    form: str,
    errors: dict[str, str],
    values: dict[str, Any],
) -> Response:
    ctx = detail_context(
        request, viewer, member_no, tab=tab, form=form, errors=errors, values=values
    )
    return render(request, "console/members/detail.html", ctx, status=422)


def _url(member_no: str, tab: str = "overview") -> str:
    return f"{CONSOLE_PREFIX}/members/{member_no}" + ("" if tab == "overview" else f"?tab={tab}")


# ---- profile ---------------------------------------------------------------------------------


@router.post("/members/{member_no}/profile")
def edit_profile(
    request: Request,
    member_no: str,
    viewer: MembersWriter,
    name: FormText = None,
    phone: FormText = None,
    email: FormText = None,
    birthday: FormText = None,
    gender: FormText = None,
    city: FormText = None,
    region: FormText = None,
    preferred_channel: FormText = None,
    member_type: FormText = None,
    reason: FormText = None,
) -> Response:
    submitted = {
        "name": name,
        "phone": phone,
        "email": email,
        "birthday": birthday,
        "gender": gender,
        "city": city,
        "region": region,
        "preferred_channel": preferred_channel,
        "member_type": member_type,
        "reason": reason,  # why the phone changes (the service asks for it only then)
    }
    # A field the form did not send stays as it is.
    values = {k: v.strip() for k, v in submitted.items() if v is not None}
    if not viewer.can(perm.MEMBERS_PII):  # their form shows masked data: never write it back
        values.pop("phone", None)
        values.pop("email", None)
        values.pop("reason", None)
    changes: dict[str, Any] = {k: (v or None) for k, v in values.items()}
    errors: dict[str, str] = {}
    try:
        data = MemberUpdate.model_validate(changes)
    except ValidationError as exc:
        for err in exc.errors():
            name = str(err["loc"][0]) if err["loc"] else "form"
            errors.setdefault(name, PROFILE_MESSAGES.get(name, FALLBACK_MESSAGE))
    if not errors:
        clock = request.app.state.clock
        ctx = ledger_ctx(request, viewer)
        try:
            _call(
                request,
                lambda: members.update_profile(
                    get_session(request),
                    viewer.principal,
                    cipher_of(request),
                    member_no,
                    data,
                    now=clock.now(),
                    tz=ctx.tz,
                ),
            )
        except FormInvalid as bad:
            errors = bad.errors
    if errors:
        return _refuse(
            request, viewer, member_no, tab="overview", form="profile", errors=errors, values=values
        )
    return redirect(request, _url(member_no), flash=N_("Profile saved."))


# ---- tags ------------------------------------------------------------------------------------


@router.post("/members/{member_no}/tags")
def add_tag(
    request: Request,
    member_no: str,
    viewer: MembersWriter,
    tag: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    values = {"tag": tag}
    errors: dict[str, str] = {}
    if not tag.strip():
        errors["tag"] = N_("Enter a tag.")
    else:
        now = request.app.state.clock.now()
        try:
            _call(
                request,
                lambda: members.add_tag(
                    get_session(request), viewer.principal, member_no, tag, now=now
                ),
            )
        except FormInvalid as bad:
            errors = bad.errors
    if errors:
        return _refuse(
            request, viewer, member_no, tab="overview", form="tag", errors=errors, values=values
        )
    return redirect(request, _url(member_no), flash=N_("Tag added."))


@router.post("/members/{member_no}/tags/remove")
def remove_tag(
    request: Request,
    member_no: str,
    viewer: MembersWriter,
    tag: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    now = request.app.state.clock.now()
    try:
        _call(
            request,
            lambda: members.remove_tag(
                get_session(request), viewer.principal, member_no, tag, now=now
            ),
        )
    except FormInvalid as bad:
        return _refuse(
            request, viewer, member_no, tab="overview", form="tag", errors=bad.errors, values={}
        )
    return redirect(request, _url(member_no), flash=N_("Tag removed."))


# ---- points and growth -----------------------------------------------------------------------


def parse_amount(text: str) -> tuple[int | None, str | None]:
    """A signed whole number from a form field, or the message saying what is wrong."""
    raw = text.strip().replace(",", "").replace(" ", "")
    if not raw:
        return None, N_("Enter an amount, e.g. 500 or -200.")
    if not AMOUNT_PATTERN.match(raw):
        return None, N_("Enter a whole number, e.g. 500 or -200 (no decimals).")
    value = int(raw)
    if value == 0:
        return None, N_("Enter a whole number that is not zero.")
    if abs(value) > ledger_domain.MAX_POINTS_PER_POSTING:
        return None, N_("This amount is too large.")
    return value, None


@router.post("/members/{member_no}/adjust")
def adjust(
    request: Request,
    member_no: str,
    viewer: PointsAdjuster,
    ledger: Annotated[str, Form(max_length=16)] = "points",
    amount: Annotated[str, Form(max_length=64)] = "",
    reason: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    values = {"ledger": ledger, "amount": amount, "reason": reason}
    errors: dict[str, str] = {}
    if ledger not in ("points", "growth"):
        errors["ledger"] = N_("Choose a value from the list.")
    value, problem = parse_amount(amount)
    if problem:
        errors["amount"] = problem
    if not reason.strip():
        errors["reason"] = N_("Give a reason.")
    elif len(reason.strip()) > 200:
        errors["reason"] = N_("Enter at most 200 characters.")
    status = ""
    if not errors and value is not None:
        session = get_session(request)
        member = members.get_member(session, member_no)
        ctx = ledger_ctx(request, viewer)
        try:
            row = _call(
                request,
                lambda: flows.request_adjustment(
                    session, ctx, member.id, ledger=ledger, amount=value, reason=reason.strip()
                ),
            )
            status = row.status
        except FormInvalid as bad:
            errors = bad.errors
    if errors:
        return _refuse(
            request, viewer, member_no, tab="points", form="adjust", errors=errors, values=values
        )
    flash = (
        N_("The adjustment is above the approval limit: it waits for a second approver.")
        if status == "pending_approval"
        else N_("Adjustment applied.")
    )
    return redirect(request, _url(member_no, "points"), flash=flash)


# ---- tier override ---------------------------------------------------------------------------


def _hold_end(until: str, ctx: ledger.Ctx) -> tuple[datetime | None, str | None]:
    """The end of a hold "until" a business day (held through it: it ends at the following
    midnight), or the message for the field."""
    if not until.strip():
        return None, None
    try:
        day = parse_day(until.strip())
    except ValueError:
        return None, N_("Enter the date as YYYY-MM-DD.")
    end = tier_domain.hold_end(day, ctx.tz)
    if end <= ctx.now:
        return None, N_("The date must be in the future.")
    return end, None


@router.post("/members/{member_no}/tier/preview")
def preview_tier(
    request: Request,
    member_no: str,
    viewer: PointsAdjuster,
    tier: Annotated[str, Form(max_length=64)] = "",
    until: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    """What the member's tier page will say once this override is saved; writes nothing."""
    session = get_session(request)
    ctx = ledger_ctx(request, viewer)
    ladder = tiers.get_ladder(session)
    member = members.get_member(session, member_no)
    state = tiers.state(session, ctx, member.id)
    until_at, error = _hold_end(until, ctx)
    view = None
    if tier in {t.code for t in ladder.tiers} and error is None:
        held = until_at or datetime.max.replace(tzinfo=ctx.now.tzinfo)
        draft = replace(state, code=tier, override_until=held, grace_until=None)
        view = summary.build_tier_view(ladder, draft, now=ctx.now, tz=ctx.tz, locale=viewer.locale)
    # The operator also sees the tier it replaces and, for a hold with an end, where today's
    # growth would put the member once the hold is over.
    current = tier_domain.holding(ladder, state.code)
    after = tier_domain.qualifying_tier(ladder, state.window_growth)
    return render(
        request,
        "console/members/_tier_preview.html",
        {
            "preview_view": view,
            "preview_error": error,
            "base": _url(member_no),
            "current_name": summary.tier_name(current, viewer.locale),
            "after_hold": after,
            "after_hold_name": summary.tier_name(after, viewer.locale),
        },
    )


@router.post("/members/{member_no}/tier")
def override_tier(
    request: Request,
    member_no: str,
    viewer: PointsAdjuster,
    tier: Annotated[str, Form(max_length=64)] = "",
    override_reason: Annotated[str, Form(max_length=1000)] = "",
    until: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    values = {"tier": tier, "override_reason": override_reason, "until": until}
    session = get_session(request)
    ctx = ledger_ctx(request, viewer)
    ladder = tiers.get_ladder(session)
    errors: dict[str, str] = {}
    if tier not in {t.code for t in ladder.tiers}:
        errors["tier"] = N_("Choose a tier from the list.")
    reason = override_reason.strip()
    if not reason:
        errors["override_reason"] = N_("Give a reason.")
    elif len(reason) > 200:
        errors["override_reason"] = N_("Enter at most 200 characters.")
    until_at, until_error = _hold_end(until, ctx)
    if until_error:
        errors["until"] = until_error
    if not errors:
        member = members.get_member(session, member_no)

        def apply() -> None:
            tiers.override_by_hand(
                session, ctx, member.id, member_no, tier_code=tier, reason=reason, until=until_at
            )

        try:
            _call(request, apply, rename={"reason": "override_reason"})
        except FormInvalid as bad:
            errors = bad.errors
    if errors:
        return _refuse(
            request, viewer, member_no, tab="overview", form="tier", errors=errors, values=values
        )
    return redirect(request, _url(member_no), flash=N_("Tier set."))
