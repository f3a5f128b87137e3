"""Console: the work around campaigns — the referral review queue (held referrals approved or
refused, audited by the referral service), member events (capacity, waiting list, the
check-in list, closing marks no-shows), actions that earn, and issuing a coupon to a
campaign's audience."""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import Form, Path, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from patron.auth import permissions as perm
from patron.campaigns import actions, member_events, recall, referrals
from patron.campaigns import service as campaigns
from patron.campaigns.recall import RecallSettings
from patron.campaigns.schemas import ActionIn
from patron.coupons import service as coupons
from patron.errors import PatronError
from patron.program import service as program
from patron.web.console.page_kit import (
    CampaignCode,
    CampaignsReader,
    CampaignsWriter,
    console_router,
)
from patron.web.context import request_ctx
from patron.web.i18n import N_
from patron.web.pages import (
    CONSOLE_PREFIX,
    Viewer,
    get_session,
    redirect,
    render,
)

router = console_router()

#: why a referral is held (referrals.discover)
HOLD_REASONS: Final = {
    "": N_("Held for review"),
    "phone_prefix_burst": N_("Many sign-ups from similar phone numbers in a short time"),
    "referrer_cap": N_("The referrer reached the most referrals allowed"),
    "self_referral": N_("The referee referred their own referrer"),
}
REGISTRATION_LABELS: Final = {
    "registered": N_("Has a place"),
    "waitlisted": N_("On the waiting list"),
    "attended": N_("Attended"),
    "no_show": N_("Did not come"),
    "cancelled": N_("Cancelled"),
}
ERRORS: Final = {
    "referral_not_held": N_("This referral was already decided."),
    "referral_not_found": N_("This referral no longer exists."),
    "campaign_not_active": N_("Start the campaign before issuing its coupons."),
    "coupon_template_paused": N_("That coupon template is paused: it issues nothing."),
    "coupon_template_not_found": N_("Choose one of the coupon templates."),
    "event_not_found": N_("This event no longer exists."),
    "action_code_taken": N_("Another action already uses this code."),
    "campaign_not_found": N_("Choose one of the campaigns."),
}
CHECKIN_ERRORS: Final = {
    "checkin_code_not_found": N_("No place at this event has that check-in code."),
    "registration_not_active": N_(
        "That place was cancelled, is waiting, or is already checked in."
    ),
}
FAILED: Final = N_("That did not work; nothing was changed.")


# ---------------------------------------------------------------- referral review


def _referrals_page(
    request: Request, viewer: Viewer, *, error: str | None = None, status: int = 200
) -> HTMLResponse:
    ctx = {
        "nav": "campaigns",
        "rows": referrals.review_queue(get_session(request)),
        "reasons": HOLD_REASONS,
        "error": error,
        "can_write": viewer.can(perm.CAMPAIGNS_WRITE),
    }
    return render(request, "console/campaigns/referrals.html", ctx, status=status)


@router.get("/referrals")
def referral_queue(request: Request, viewer: CampaignsReader) -> HTMLResponse:
    return _referrals_page(request, viewer)


@router.post("/referrals/{referral_id}/decision")
def decide(
    request: Request,
    viewer: CampaignsWriter,
    referral_id: Annotated[int, Path(ge=1, le=2_147_483_647)],
    decision: Annotated[str, Form(pattern="^(approve|refuse)$")],
) -> Response:
    session = get_session(request)
    try:
        with session.begin_nested():
            referrals.decide(
                session,
                request_ctx(request, session, viewer.principal),
                referral_id,
                approve=decision == "approve",
            )
    except PatronError as exc:
        return _referrals_page(
            request, viewer, error=ERRORS.get(exc.code, FAILED), status=exc.status
        )
    flash = (
        N_("Referral approved: it is rewarded after the referee's first qualifying order.")
        if decision == "approve"
        else N_("Referral refused.")
    )
    return redirect(request, f"{CONSOLE_PREFIX}/referrals", flash=flash)


# ---------------------------------------------------------------- member events


@router.get("/member-events")
def events_index(request: Request, viewer: CampaignsReader) -> HTMLResponse:
    ctx = {"nav": "campaigns", "rows": member_events.overview(get_session(request))}
    return render(request, "console/campaigns/events.html", ctx)


def _event_page(
    request: Request, viewer: Viewer, code: str, *, error: str | None = None, status: int = 200
) -> HTMLResponse:
    session = get_session(request)
    e = member_events.get_event(session, code)
    ctx = {
        "nav": "campaigns",
        "e": e,
        "waiting": member_events.waitlisted(session, e.id),
        "rows": member_events.attendance(session, e.id),
        "labels": REGISTRATION_LABELS,
        "error": error,
        "can_write": viewer.can(perm.CAMPAIGNS_WRITE),
    }
    return render(request, "console/campaigns/event.html", ctx, status=status)


@router.get("/member-events/{code}")
def event_detail(request: Request, code: CampaignCode, viewer: CampaignsReader) -> HTMLResponse:
    return _event_page(request, viewer, code)


@router.post("/member-events/{code}/checkin")
def event_checkin(
    request: Request,
    code: CampaignCode,
    viewer: CampaignsWriter,
    checkin_code: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    session = get_session(request)
    try:
        with session.begin_nested():
            member_events.check_in(
                session,
                request_ctx(request, session, viewer.principal),
                code,
                checkin_code.strip().upper(),
            )
    except PatronError as exc:
        message = CHECKIN_ERRORS.get(exc.code, FAILED)
        return _event_page(request, viewer, code, error=message, status=exc.status)
    return redirect(request, f"{CONSOLE_PREFIX}/member-events/{code}", flash=N_("Checked in."))


@router.post("/member-events/{code}/close")
def event_close(request: Request, code: CampaignCode, viewer: CampaignsWriter) -> Response:
    session = get_session(request)
    try:
        with session.begin_nested():
            member_events.close(session, request_ctx(request, session, viewer.principal), code)
    except PatronError as exc:
        return _event_page(
            request, viewer, code, error=ERRORS.get(exc.code, FAILED), status=exc.status
        )
    return redirect(
        request,
        f"{CONSOLE_PREFIX}/member-events/{code}",
        flash=N_("Event closed: members with a place who did not come are marked as no-shows."),
    )


# ---------------------------------------------------------------- actions that earn

ACTION_KINDS: Final = {
    "share": N_("Sharing"),
    "review": N_("A review"),
    "survey": N_("A survey"),
    "quiz": N_("A quiz"),
}
ACTION_FIELDS: Final = (
    "code",
    "kind",
    "name",
    "points",
    "daily_cap",
    "total_cap",
    "campaign",
    "coupon",
)


def _actions_page(
    request: Request,
    viewer: Viewer,
    *,
    form: dict[str, str] | None = None,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    session = get_session(request)
    ctx = {
        "nav": "campaigns",
        "rows": actions.overview(session),
        "kinds": ACTION_KINDS,
        "campaign_list": [c for c in campaigns.listing(session) if c.status != "ended"],
        "templates": [t for t in coupons.list_templates(session) if t.status == "active"],
        "form": form or {"kind": "share", "points": "10", "daily_cap": "1"},
        "error": error,
        "can_write": viewer.can(perm.CAMPAIGNS_WRITE),
    }
    return render(request, "console/campaigns/actions.html", ctx, status=status)


@router.get("/campaign-actions")
def actions_index(request: Request, viewer: CampaignsReader) -> HTMLResponse:
    return _actions_page(request, viewer)


@router.post("/campaign-actions")
async def actions_create(request: Request, viewer: CampaignsWriter) -> Response:
    raw = await request.form()
    form = {k: str(raw.get(k, "")).strip()[:100] for k in ACTION_FIELDS}
    session = get_session(request)
    try:
        data = ActionIn.model_validate(
            {
                "code": form["code"],
                "kind": form["kind"],
                "name": form["name"],
                "points": int(form["points"]),
                "daily_cap": int(form["daily_cap"]) if form["daily_cap"] else None,
                "total_cap": int(form["total_cap"]) if form["total_cap"] else None,
                "campaign": form["campaign"] or None,
                "coupon": form["coupon"] or None,
            }
        )
    except (ValueError, ValidationError):
        message = N_(
            "Check the fields: a code in lower-case letters, a name, whole points of 1 or more, "
            "and caps of 1 or more when given."
        )
        return _actions_page(request, viewer, form=form, error=message, status=422)
    try:
        with session.begin_nested():
            actions.create_action(
                session, viewer.principal, data, now=request.app.state.clock.now()
            )
    except PatronError as exc:
        message = ERRORS.get(exc.code, FAILED)
        return _actions_page(request, viewer, form=form, error=message, status=exc.status)
    return redirect(request, f"{CONSOLE_PREFIX}/campaign-actions", flash=N_("Action saved."))


# ---------------------------------------------------------------- recall packs

STAGE_LABELS: Final = {
    "new": N_("Newly registered members"),
    "active": N_("Active buyers"),
    "dormant": N_("Dormant members"),
    "churned": N_("Churned members"),
}


def _recall_page(
    request: Request,
    viewer: Viewer,
    *,
    form: dict[str, object] | None = None,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    session = get_session(request)
    current = recall.get_settings(session)
    ctx = {
        "nav": "campaigns",
        "form": form or current.model_dump(),
        "stages": STAGE_LABELS,
        "templates": [t for t in coupons.list_templates(session) if t.status == "active"],
        "given": recall.given(session),
        "error": error,
        "can_write": viewer.can(perm.CAMPAIGNS_WRITE),
    }
    return render(request, "console/campaigns/recall.html", ctx, status=status)


@router.get("/recall")
def recall_index(request: Request, viewer: CampaignsReader) -> HTMLResponse:
    return _recall_page(request, viewer)


@router.post("/recall")
async def recall_save(request: Request, viewer: CampaignsWriter) -> Response:
    raw = await request.form()
    form: dict[str, object] = {
        "enabled": bool(raw.get("enabled")),
        "stages": [str(v) for v in raw.getlist("stages")][:4],
        "points": str(raw.get("points", "")).strip()[:10],
        "coupon_template": str(raw.get("coupon_template", "")).strip()[:64] or None,
        "window_days": str(raw.get("window_days", "")).strip()[:10],
        "batch": str(raw.get("batch", "")).strip()[:10],
    }
    try:
        value = RecallSettings.model_validate(form)
    except ValidationError:
        message = N_(
            "Check the fields: at least one stage, whole numbers for the points, the window and "
            "the batch, and points or a coupon when the packs are on."
        )
        return _recall_page(request, viewer, form=form, error=message, status=422)
    session = get_session(request)
    program.put_section(
        session, viewer.principal, recall.SECTION, value, now=request.app.state.clock.now()
    )
    return redirect(request, f"{CONSOLE_PREFIX}/recall", flash=N_("Recall pack settings saved."))


# ---------------------------------------------------------------- coupons to a campaign


@router.post("/campaigns/{code}/coupons")
def issue_coupons(
    request: Request,
    code: CampaignCode,
    viewer: CampaignsWriter,
    template: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    session = get_session(request)
    try:
        with session.begin_nested():
            coupons.get_template(session, template)
            campaigns.issue_coupons(
                session, request_ctx(request, session, viewer.principal), code, template
            )
    except PatronError as exc:
        message = ERRORS.get(exc.code, FAILED)
        return redirect(request, f"{CONSOLE_PREFIX}/campaigns/{code}", flash=message)
    return redirect(
        request,
        f"{CONSOLE_PREFIX}/campaigns/{code}",
        flash=N_(
            "Coupons issued to the campaign's audience; members who already hold one from this "
            "campaign got no second one."
        ),
    )
