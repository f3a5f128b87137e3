"""Console: campaigns — create and schedule them with a preview of their reach and maximum
cost, start / pause / end them, see their results against the control group."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Annotated, Any, Final

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from patron.auth import permissions as perm
from patron.campaigns import results as campaign_results
from patron.campaigns import service as campaigns
from patron.campaigns.schemas import CampaignIn
from patron.coupons import service as coupons
from patron.errors import PatronError
from patron.kit.timeutil import business_date, business_tz
from patron.segments import service as segments
from patron.web import i18n
from patron.web.console.exports import Rows, table_response
from patron.web.console.page_kit import (
    CampaignCode,
    CampaignsReader,
    CampaignsWriter,
    console_router,
)
from patron.web.i18n import N_
from patron.web.pages import (
    CONSOLE_PREFIX,
    Viewer,
    get_session,
    redirect,
    render,
)

router = console_router()

SCHEDULE_LABELS: Final = {
    "one_off": N_("One-off dates"),
    "weekly": N_("Member day every week"),
    "monthly": N_("Member day every month"),
    "last_weekend": N_("Last weekend of the month"),
    "annual": N_("Every year on the same dates"),
    "birthday_month": N_("Birthday month"),
}
STATUS_LABELS: Final = {
    "draft": N_("Draft"),
    "active": N_("Active"),
    "paused": N_("Paused"),
    "ended": N_("Ended"),
}
ERRORS: Final = {
    "campaign_code_taken": N_("Another campaign already uses this code."),
    "campaign_status_invalid": N_("The campaign cannot move to that status."),
    "unknown_segment": N_("Choose one of the saved segments."),
}
FORM_FIELDS: Final = (
    "code",
    "name",
    "kind",
    "start",
    "end",
    "days",
    "multiplier",
    "budget_points",
    "budget_yuan",
    "control_percent",
    "tiers",
    "segment",
)


def _tz(request: Request) -> Any:
    return business_tz(request.app.state.settings.business_timezone)


def _ints(text: str) -> list[int]:
    return [int(p) for p in text.replace("，", ",").split(",") if p.strip()]


def _parse(form: dict[str, str]) -> CampaignIn:
    """The form as the API's model; a ValueError or ValidationError means bad input."""
    kind = form.get("kind", "one_off")
    schedule: dict[str, Any] = {"kind": kind}
    if kind == "one_off":
        schedule |= {"start": form.get("start"), "end": form.get("end")}
    elif kind == "weekly":
        schedule["weekdays"] = _ints(form.get("days", ""))
    elif kind == "monthly":
        schedule["days"] = _ints(form.get("days", ""))
    elif kind == "annual":
        # the year of the dates is ignored: the same month-days every year
        start, end = date.fromisoformat(form["start"]), date.fromisoformat(form["end"])
        schedule |= {
            "start_month": start.month,
            "start_day": start.day,
            "end_month": end.month,
            "end_day": end.day,
        }
    multiplier = form.get("multiplier", "").strip()
    yuan = form.get("budget_yuan", "").strip()
    points = form.get("budget_points", "").strip()
    control = form.get("control_percent", "").strip()
    tiers = [t.strip() for t in form.get("tiers", "").split(",") if t.strip()]
    return CampaignIn.model_validate(
        {
            "code": form.get("code", "").strip(),
            "name": form.get("name", "").strip(),
            "schedule": schedule,
            "audience": {"tiers": tiers, "segment": form.get("segment", "").strip() or None},
            "multiplier_bp": round(float(multiplier) * 10_000) if multiplier else None,
            "budget_points": int(points) if points else None,
            "budget_fen": round(float(yuan) * 100) if yuan else None,
            "control_bp": round(float(control) * 100) if control else None,
        }
    )


def _page(
    request: Request,
    viewer: Viewer,
    *,
    form: dict[str, str] | None = None,
    preview: campaigns.Preview | None = None,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    session = get_session(request)
    settings = campaigns.get_settings(session)
    rows = [
        {
            "c": c,
            "cap": campaigns.points_cap(c, settings),
            "used": campaigns.points_used(session, c.id),
        }
        for c in campaigns.listing(session)
    ]
    ctx = {
        "nav": "campaigns",
        "rows": rows,
        "form": form or {"kind": "one_off", "multiplier": "2"},
        "preview": preview,
        "segments": segments.list_segments(session),
        "error": error,
        "schedule_labels": SCHEDULE_LABELS,
        "status_labels": STATUS_LABELS,
        "can_write": viewer.can(perm.CAMPAIGNS_WRITE),
    }
    return render(request, "console/campaigns/index.html", ctx, status=status)


@router.get("/campaigns")
def index(request: Request, viewer: CampaignsReader) -> HTMLResponse:
    return _page(request, viewer)


@router.post("/campaigns")
async def create(request: Request, viewer: CampaignsWriter) -> Response:
    raw = await request.form()
    form = {k: str(raw.get(k, ""))[:200] for k in (*FORM_FIELDS, "action")}
    return _create(request, viewer, form)


def _create(request: Request, viewer: Viewer, form: dict[str, str]) -> Response:
    session = get_session(request)
    try:
        data = _parse(form)
    except (ValueError, KeyError, ValidationError):
        return _page(
            request,
            viewer,
            form=form,
            error=N_(
                "Check the fields: a code, a name, a schedule, and a budget for a multiplier."
            ),
            status=422,
        )
    if form.get("action") == "preview":
        tz = _tz(request)
        now = request.app.state.clock.now()
        try:
            shown = campaigns.preview(session, data, today=business_date(now, tz), tz=tz, now=now)
        except PatronError as exc:
            message = ERRORS.get(exc.code, N_("That did not work; nothing was changed."))
            return _page(request, viewer, form=form, error=message, status=exc.status)
        return _page(request, viewer, form=form, preview=shown)
    try:
        with session.begin_nested():
            campaigns.create(session, viewer.principal, data, now=request.app.state.clock.now())
    except PatronError as exc:
        message = ERRORS.get(exc.code, N_("That did not work; nothing was changed."))
        return _page(request, viewer, form=form, error=message, status=exc.status)
    return redirect(request, f"{CONSOLE_PREFIX}/campaigns", flash=N_("Campaign saved as a draft."))


@router.post("/campaigns/{code}/status")
def set_status(
    request: Request,
    code: CampaignCode,
    viewer: CampaignsWriter,
    status: Annotated[str, Form(pattern="^(active|paused|ended)$")],
) -> Response:
    session = get_session(request)
    try:
        with session.begin_nested():
            campaigns.set_status(
                session, viewer.principal, code, status, now=request.app.state.clock.now()
            )
    except PatronError as exc:
        message = ERRORS.get(exc.code, N_("That did not work; nothing was changed."))
        return _page(request, viewer, error=message, status=exc.status)
    return redirect(request, f"{CONSOLE_PREFIX}/campaigns/{code}", flash=N_("Campaign updated."))


@router.get("/campaigns/{code}")
def detail(request: Request, code: CampaignCode, viewer: CampaignsReader) -> HTMLResponse:
    session = get_session(request)
    c = campaigns.get(session, code)
    tz = _tz(request)
    today: date = business_date(request.app.state.clock.now(), tz)
    ctx = {
        "nav": "campaigns",
        "c": c,
        "r": campaign_results.results(session, c, today=today, tz=tz),
        "cap": campaigns.points_cap(c, campaigns.get_settings(session)),
        "templates": [t for t in coupons.list_templates(session) if t.status == "active"],
        "reach": campaigns.reach(session, campaigns.audience_of(c), tz),
        "schedule_labels": SCHEDULE_LABELS,
        "status_labels": STATUS_LABELS,
        "can_write": viewer.can(perm.CAMPAIGNS_WRITE),
    }
    return render(request, "console/campaigns/detail.html", ctx)


def results_rows(r: campaign_results.Results, locale: str) -> list[list[object]]:
    """The results card as (figure, value) rows: money in fen, the ROI as a plain ratio."""

    def t(message: str) -> str:
        return i18n.gettext(locale, message)

    rows: list[list[object]] = [
        [t("First day"), "" if r.first_day is None else r.first_day.isoformat()],
        [t("Last day"), "" if r.last_day is None else r.last_day.isoformat()],
        [t("Participants"), r.participants],
    ]
    for label, g in ((N_("Campaign group"), r.treatment), (N_("Control group"), r.control)):
        rows += [
            [f"{t(label)}: {t(N_('Members'))}", g.members],
            [f"{t(label)}: {t(N_('Buyers'))}", g.buyers],
            [f"{t(label)}: {t(N_('Orders'))}", g.orders],
            [f"{t(label)}: {t(N_('Sales (fen)'))}", g.sales_fen],
        ]
    rows += [
        [t("Points given"), r.points],
        [t(N_("Coupons redeemed")), r.coupons_redeemed],
        [t(N_("Coupon discount (fen)")), r.coupon_cost_fen],
        [t(N_("Cost (fen)")), r.cost_fen],
        [
            t(N_("Sales beyond the control group (fen)")),
            "" if r.incremental_sales_fen is None else r.incremental_sales_fen,
        ],
        [t("Return on cost"), "" if r.roi is None else round(r.roi, 4)],
    ]
    return rows


@router.get("/campaigns/{code}/results/export")
def export_results(
    request: Request,
    code: CampaignCode,
    viewer: CampaignsReader,
    fmt: Annotated[str, Query(alias="format", max_length=8)] = "csv",
) -> Response:
    """The campaign's results (as on its page) as CSV or XLSX, like the analytics reports."""
    tz = _tz(request)
    today: date = business_date(request.app.state.clock.now(), tz)
    campaigns.get(get_session(request), code)  # an unknown code is a 404 before any download

    def batches(session: Any) -> Iterator[Rows]:
        c = campaigns.get(session, code)
        yield results_rows(campaign_results.results(session, c, today=today, tz=tz), viewer.locale)

    return table_response(
        request,
        viewer,
        fmt if fmt in ("csv", "xlsx") else "csv",
        f"campaign-{code}-results",
        [N_("Figure"), N_("Value")],
        batches,
    )
