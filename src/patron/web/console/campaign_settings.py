"""Console: the campaign settings (budget cap, point cost, default control share) and the
referral settings (rewards — points, coupons, growth and the tier-up option — the cap per
referrer and the abuse limits), each a form with its errors beside the fields.

The forms validate with the settings models the REST API uses and save through the same
service calls (``campaigns.put_settings``, ``referrals.put_settings``), which write the audit
record; a save made by someone else after the page was opened is refused, as on the
configuration pages.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any, Final

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from patron.auth import permissions as perm
from patron.campaigns import referrals
from patron.campaigns import service as campaigns
from patron.campaigns.domain import REFERRAL_SECTION, SECTION, CampaignSettings, ReferralSettings
from patron.coupons import service as coupons
from patron.kit.timeutil import business_tz
from patron.program import service as program
from patron.web.console.config import changed_since_opened, draft, with_version
from patron.web.console.config_forms import DraftForm, percent_text, yuan_text
from patron.web.console.page_kit import CampaignsReader, CampaignsWriter, Posted, console_router
from patron.web.i18n import N_
from patron.web.pages import CONSOLE_PREFIX, Viewer, get_session, redirect, render

router = console_router()
CAMPAIGN_PAGE: Final = CONSOLE_PREFIX + "/campaign-settings"
REFERRAL_PAGE: Final = CONSOLE_PREFIX + "/referral-settings"
SAVED: Final = N_("Settings saved.")
NO_TEMPLATE: Final = N_("No coupon template has this code.")


def _now(request: Request) -> datetime:
    now: datetime = request.app.state.clock.now()
    return now


def _page(
    request: Request,
    viewer: Viewer,
    template: str,
    key: str,
    values: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
    **extra: Any,
) -> HTMLResponse:
    ctx = {
        "nav": "campaigns",
        "info": program.section_info(get_session(request), key),
        "values": values,
        "errors": errors,
        "can_write": viewer.can(perm.CAMPAIGNS_WRITE),
        **extra,
    }
    return render(request, template, ctx, status=status)


# ---- campaign settings -----------------------------------------------------------------------


def campaign_values(s: CampaignSettings) -> dict[str, str]:
    return {
        "budget_cap": percent_text(s.budget_cap_bp),
        "point_cost": yuan_text(s.point_cost_fen_per_100),
        "default_control": percent_text(s.default_control_bp),
    }


def parse_campaign(form: DraftForm) -> CampaignSettings | None:
    form.scaled("budget_cap", ("budget_cap_bp",), "percent")
    form.scaled("point_cost", ("point_cost_fen_per_100",), "money")
    form.scaled("default_control", ("default_control_bp",), "percent")
    return form.validate(CampaignSettings)


def _campaign_page(
    request: Request,
    viewer: Viewer,
    values: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
) -> HTMLResponse:
    return _page(
        request, viewer, "console/campaigns/settings.html", SECTION, values, errors, status
    )


@router.get("/campaign-settings")
def campaign_settings(request: Request, viewer: CampaignsReader) -> HTMLResponse:
    values = campaign_values(campaigns.get_settings(get_session(request)))
    return _campaign_page(request, viewer, with_version(request, SECTION, values), {})


@router.post("/campaign-settings")
def campaign_settings_save(request: Request, viewer: CampaignsWriter, raw: Posted) -> Response:
    form = draft(request, raw)
    value = parse_campaign(form)
    if value is None:
        return _campaign_page(request, viewer, dict(raw), form.errors, 422)
    if changed_since_opened(request, form, SECTION):
        return _campaign_page(request, viewer, dict(raw), form.errors, 409)
    campaigns.put_settings(get_session(request), viewer.principal, value, now=_now(request))
    return redirect(request, CAMPAIGN_PAGE, flash=SAVED)


# ---- referral settings -----------------------------------------------------------------------

_REFERRAL_INTS: Final = (
    "referrer_points",
    "referee_points",
    "referrer_growth",
    "max_per_referrer",
    "burst_limit",
    "burst_hours",
    "prefix_digits",
)


def referral_values(request: Request, s: ReferralSettings) -> dict[str, str]:
    tz = business_tz(request.app.state.settings.business_timezone)
    return {
        "enabled": "on" if s.enabled else "",
        "joined_after": s.joined_after.astimezone(tz).date().isoformat() if s.joined_after else "",
        **{name: str(getattr(s, name)) for name in _REFERRAL_INTS},
        "referrer_coupon": s.referrer_coupon or "",
        "referee_coupon": s.referee_coupon or "",
        "referrer_tier_up": "on" if s.referrer_tier_up else "",
        "min_order": yuan_text(s.min_order_fen),
    }


def parse_referral(
    request: Request, form: DraftForm, current: ReferralSettings
) -> ReferralSettings | None:
    form.flag("enabled", ("enabled",))
    day = form.day("joined_after", ("joined_after",), optional=True)
    if day is not None:
        tz = business_tz(request.app.state.settings.business_timezone)
        kept = current.joined_after
        # the same day as shown keeps the instant the API may have set within it
        same = kept is not None and kept.astimezone(tz).date() == day
        form.put(
            ("joined_after",), kept if same else datetime.combine(day, time(), tz).astimezone(UTC)
        )
    for name in _REFERRAL_INTS:
        form.integer(name, (name,))
    for name in ("referrer_coupon", "referee_coupon"):
        form.bind(name, (name,), "text")
        form.put((name,), form.get(name) or None)
    form.flag("referrer_tier_up", ("referrer_tier_up",))
    form.scaled("min_order", ("min_order_fen",), "money")
    return form.validate(ReferralSettings)


def _referral_page(
    request: Request,
    viewer: Viewer,
    values: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
) -> HTMLResponse:
    session = get_session(request)
    choices = [(t.code, f"{t.name} · {t.code}") for t in coupons.list_templates(session)]
    return _page(
        request,
        viewer,
        "console/campaigns/referral_settings.html",
        REFERRAL_SECTION,
        values,
        errors,
        status,
        coupon_choices=choices,
    )


@router.get("/referral-settings")
def referral_settings(request: Request, viewer: CampaignsReader) -> HTMLResponse:
    values = referral_values(request, referrals.get_settings(get_session(request)))
    return _referral_page(request, viewer, with_version(request, REFERRAL_SECTION, values), {})


@router.post("/referral-settings")
def referral_settings_save(request: Request, viewer: CampaignsWriter, raw: Posted) -> Response:
    session = get_session(request)
    form = draft(request, raw)
    value = parse_referral(request, form, referrals.get_settings(session))
    if value is None:
        return _referral_page(request, viewer, dict(raw), form.errors, 422)
    if changed_since_opened(request, form, REFERRAL_SECTION):
        return _referral_page(request, viewer, dict(raw), form.errors, 409)
    known = {t.code for t in coupons.list_templates(session)}
    for name in ("referrer_coupon", "referee_coupon"):
        code = getattr(value, name)
        if code is not None and code not in known:
            form.error(name, NO_TEMPLATE)
    if form.errors:
        return _referral_page(request, viewer, dict(raw), form.errors, 422)
    referrals.put_settings(session, viewer.principal, value, now=_now(request))
    return redirect(request, REFERRAL_PAGE, flash=SAVED)
