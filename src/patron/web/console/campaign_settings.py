"""Console: the campaign settings (budget cap, point cost, default control share), the
referral settings (rewards — points, coupons, growth and the tier-up option — the cap per
referrer and the abuse limits) and the points milestones with their coupons, each a form with
its errors beside the fields.

The forms validate with the settings models the REST API uses and save through the same
service calls (``campaigns.put_settings``, ``referrals.put_settings``,
``milestones.put_settings``), which write the audit record; a save made by someone else after
the page was opened is refused, as on the configuration pages.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any, Final

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from patron.auth import permissions as perm
from patron.campaigns import milestones, referrals
from patron.campaigns import service as campaigns
from patron.campaigns.domain import REFERRAL_SECTION, SECTION, CampaignSettings, ReferralSettings
from patron.coupons import service as coupons
from patron.kit.timeutil import business_tz
from patron.program import service as program
from patron.web.console.config import changed_since_opened, draft, with_version
from patron.web.console.config_forms import DraftForm, Loc, percent_text, rows, yuan_text
from patron.web.console.page_kit import CampaignsReader, CampaignsWriter, Posted, console_router
from patron.web.i18n import N_
from patron.web.pages import CONSOLE_PREFIX, Viewer, get_session, redirect, render

router = console_router()
CAMPAIGN_PAGE: Final = CONSOLE_PREFIX + "/campaign-settings"
REFERRAL_PAGE: Final = CONSOLE_PREFIX + "/referral-settings"
MILESTONE_PAGE: Final = CONSOLE_PREFIX + "/milestones"
#: rows the milestones form shows: the saved ones and blank ones up to this many
MILESTONE_ROWS: Final = 6
MILESTONE_FIELDS: Final = ("code", "name", "points", "benefit", "coupon")
DUPLICATE_CODE: Final = N_("Another milestone has this code.")
SAVED: Final = N_("Settings saved.")
NO_TEMPLATE: Final = N_("No coupon template has this code.")


def _now(request: Request) -> datetime:
    now: datetime = request.app.state.clock.now()
    return now


def _coupon_choices(request: Request) -> list[tuple[str, str]]:
    return [(t.code, f"{t.name} · {t.code}") for t in coupons.list_templates(get_session(request))]


def _unknown_coupons(request: Request, form: DraftForm, chosen: dict[str, str | None]) -> None:
    """An error beside each coupon field naming no template (form field → code)."""
    known = {t.code for t in coupons.list_templates(get_session(request))}
    for name, code in chosen.items():
        if code is not None and code not in known:
            form.error(name, NO_TEMPLATE)


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
    return _page(
        request,
        viewer,
        "console/campaigns/referral_settings.html",
        REFERRAL_SECTION,
        values,
        errors,
        status,
        coupon_choices=_coupon_choices(request),
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
    chosen = {"referrer_coupon": value.referrer_coupon, "referee_coupon": value.referee_coupon}
    _unknown_coupons(request, form, chosen)
    if form.errors:
        return _referral_page(request, viewer, dict(raw), form.errors, 422)
    referrals.put_settings(session, viewer.principal, value, now=_now(request))
    return redirect(request, REFERRAL_PAGE, flash=SAVED)


# ---- points milestones -----------------------------------------------------------------------


def milestone_values(s: milestones.MilestoneSettings) -> dict[str, str]:
    values: dict[str, str] = {}
    for i, m in enumerate(s.milestones):
        p = f"ms-{i}-"
        values |= {
            p + "code": m.code,
            p + "name": m.name,
            p + "points": str(m.points),
            p + "benefit": m.benefit,
            p + "coupon": m.coupon or "",
        }
    for i in range(len(s.milestones), max(MILESTONE_ROWS, len(s.milestones) + 1)):
        values |= {f"ms-{i}-{f}": "" for f in MILESTONE_FIELDS}
    return values


def parse_milestones(form: DraftForm) -> tuple[milestones.MilestoneSettings | None, list[int]]:
    """The milestones of the rows filled in (blank rows are unused), and which form row each
    milestone came from (for the errors of the service's own checks)."""
    kept: list[int] = []
    for row in rows(form.raw, "ms"):
        p = f"ms-{row}-"
        if not any(form.get(p + f) for f in MILESTONE_FIELDS):
            continue
        loc: Loc = ("milestones", len(kept))
        kept.append(row)
        form.text(p + "code", (*loc, "code"))
        form.text(p + "name", (*loc, "name"))
        form.integer(p + "points", (*loc, "points"))
        form.text(p + "benefit", (*loc, "benefit"))
        form.bind(p + "coupon", (*loc, "coupon"), "text")
        form.put((*loc, "coupon"), form.get(p + "coupon") or None)
    if not kept:
        form.put(("milestones",), [])
    codes = [form.get(f"ms-{row}-code") for row in kept]

    def locate(form: DraftForm, loc: Loc) -> str | None:
        # the model's one cross-row rule: codes differ; the second use of a code is marked
        for i, code in enumerate(codes):
            if code in codes[:i]:
                name = f"ms-{kept[i]}-code"
                form.error(name, DUPLICATE_CODE)
                return name
        return None

    return form.validate(milestones.MilestoneSettings, locate), kept


def _milestone_page(
    request: Request,
    viewer: Viewer,
    values: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
) -> HTMLResponse:
    shown = sorted({int(k.split("-")[1]) for k in values if k.startswith("ms-")})
    return _page(
        request,
        viewer,
        "console/campaigns/milestones.html",
        milestones.SECTION,
        values,
        errors,
        status,
        coupon_choices=_coupon_choices(request),
        milestone_rows=shown[:20] or list(range(MILESTONE_ROWS)),
    )


@router.get("/milestones")
def milestone_settings(request: Request, viewer: CampaignsReader) -> HTMLResponse:
    values = milestone_values(milestones.get_settings(get_session(request)))
    return _milestone_page(request, viewer, with_version(request, milestones.SECTION, values), {})


@router.post("/milestones")
def milestone_settings_save(request: Request, viewer: CampaignsWriter, raw: Posted) -> Response:
    form = draft(request, raw)
    value, kept = parse_milestones(form)
    if value is None:
        return _milestone_page(request, viewer, dict(raw), form.errors, 422)
    if changed_since_opened(request, form, milestones.SECTION):
        return _milestone_page(request, viewer, dict(raw), form.errors, 409)
    chosen = {f"ms-{row}-coupon": m.coupon for row, m in zip(kept, value.milestones, strict=True)}
    _unknown_coupons(request, form, chosen)
    if form.errors:
        return _milestone_page(request, viewer, dict(raw), form.errors, 422)
    milestones.put_settings(get_session(request), viewer.principal, value, now=_now(request))
    return redirect(request, MILESTONE_PAGE, flash=SAVED)
