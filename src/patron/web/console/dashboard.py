"""Console: the dashboard (home page) — KPI cards, trends, tiers and points for a date range."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import Depends, Query, Request
from fastapi.responses import HTMLResponse

from patron.analytics import domain
from patron.analytics import service as analytics
from patron.analytics.schemas import Dashboard
from patron.auth import permissions as perm
from patron.config import Settings
from patron.ops.replica import read_session
from patron.web.i18n import N_
from patron.web.pages import (
    CONSOLE_PREFIX,
    StaffPage,
    Viewer,
    page_router,
    parse_day,
    render,
    translate,
)

router = page_router(CONSOLE_PREFIX)

DEFAULT_DAYS = 30
# Message ids of the range form (domain.range_errors) and of the charts, for the catalogue.
MESSAGES = (
    N_("Enter a start date (YYYY-MM-DD)."),
    N_("Enter an end date (YYYY-MM-DD)."),
    N_("The start date must not be after the end date."),
    N_("The range may span at most two years."),
    N_("Choose 7, 30 or 90 days."),
)
SERIES = {
    "new_members": N_("New members"),
    "orders": N_("Number of orders"),
    "net_sales": N_("Net sales (¥)"),
    "points_issued": N_("Points issued"),
    "points_redeemed": N_("Points redeemed"),
    "points_expired": N_("Points expired"),
    "members": N_("Members"),
    "sales_share": N_("Share of sales"),
}


def _parse_day(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return parse_day(value.strip())
    except ValueError:
        return None


def chart_data(request: Request, board: Dashboard, zh: bool) -> str:
    """The charts' data as JSON safe to embed in a <script> element."""
    trend = board.trend
    data: dict[str, Any] = {
        "labels": trend.labels,
        "granularity": trend.granularity,
        "series": {key: translate(request, label) for key, label in SERIES.items()},
        "new_members": trend.new_members,
        "orders": trend.orders,
        # Integer fen, as everywhere: dash.js shows them as ¥ with two decimals.
        "net_sales_fen": trend.net_sales_fen,
        "points_issued": trend.points_issued,
        "points_redeemed": trend.points_redeemed,
        "points_expired": trend.points_expired,
        "tiers": [
            {
                "name": (row.name_zh if zh else "") or row.name,
                "members": row.members,
                "sales_fen": row.net_sales_fen,
            }
            for row in board.tiers
        ],
    }
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    # "</script>" or "<!--" inside a string must not end the element.
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@router.get("/")
def dashboard(
    request: Request,
    viewer: Annotated[Viewer, Depends(StaffPage(perm.MEMBERS_READ))],
    start_text: Annotated[str | None, Query(alias="from", max_length=32)] = None,
    end_text: Annotated[str | None, Query(alias="to", max_length=32)] = None,
    days: Annotated[str | None, Query(max_length=8)] = None,
) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    tz = ZoneInfo(settings.business_timezone)
    today = request.app.state.clock.now().astimezone(tz).date()
    errors: dict[str, str] = {}
    preset: int | None = None
    if start_text is None and end_text is None:
        if days is None:
            preset = DEFAULT_DAYS
        elif days.isdecimal() and int(days) in domain.PRESET_DAYS:
            preset = int(days)
        else:
            errors["days"] = "Choose 7, 30 or 90 days."
        start, end = domain.preset_range(today, preset or DEFAULT_DAYS)
        parsed_start: date | None = start
        parsed_end: date | None = end
    else:
        parsed_start, parsed_end = _parse_day(start_text), _parse_day(end_text)
        errors = domain.range_errors(parsed_start, parsed_end)
    ctx: dict[str, Any] = {
        "nav": "dashboard",
        "errors": errors,
        "presets": domain.PRESET_DAYS,
        "preset": preset,
        "from_value": parsed_start.isoformat() if parsed_start else (start_text or ""),
        "to_value": parsed_end.isoformat() if parsed_end else (end_text or ""),
        "today": today,
        "board": None,
    }
    if errors:
        return render(request, "console/dashboard.html", ctx, status=422)
    assert parsed_start is not None
    assert parsed_end is not None
    with read_session(request) as session:  # a replica when PATRON_READ_DATABASE_URL is set
        board = analytics.dashboard(
            session,
            start=parsed_start,
            end=parsed_end,
            now=request.app.state.clock.now(),
            tz=tz,
        )
    ctx["board"] = board
    ctx["chart_json"] = chart_data(request, board, viewer.locale == "zh_CN")
    return render(request, "console/dashboard.html", ctx)
