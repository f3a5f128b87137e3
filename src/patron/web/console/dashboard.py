"""Console: the dashboard (home page) — KPI cards, trends, tiers and points for a date range."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any, Final
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from patron.analytics import domain
from patron.analytics import scope as scoping
from patron.analytics import service as analytics
from patron.analytics.schemas import Dashboard
from patron.catalog import service as catalog
from patron.config import Settings
from patron.errors import Invalid, NotFound
from patron.ops.replica import read_session
from patron.web import i18n
from patron.web.console.exports import FORMATS, Rows, table_response
from patron.web.console.page_kit import MembersReader, console_router
from patron.web.i18n import N_
from patron.web.pages import (
    Viewer,
    parse_day,
    render,
    translate,
)

router = console_router()

DEFAULT_DAYS = 30
# Message ids of the range form (domain.range_errors) and of the charts, for the catalogue.
MESSAGES = (
    N_("Enter a start date (YYYY-MM-DD)."),
    N_("Enter an end date (YYYY-MM-DD)."),
    N_("The start date must not be after the end date."),
    N_("The range may span at most two years."),
    N_("Choose 7, 30 or 90 days."),
    N_("Choose a date range from the list."),
    N_("Choose a sales channel from the list."),
    N_("Choose a store from the list."),
    N_("Choose a region from the list."),
)
PRESET_ERRORS: Final = {
    "days": "Choose 7, 30 or 90 days.",
    "preset": "Choose a date range from the list.",
}
#: The range buttons, in order: a named range or a number of days ending today.
PRESETS: Final = (
    ("yesterday", N_("Yesterday")),
    ("7", N_("Last 7 days")),
    ("30", N_("Last 30 days")),
    ("this_month", N_("This month")),
    ("last_month", N_("Last month")),
    ("this_year", N_("This year")),
)
CHANNEL_LABELS: Final = {
    "store": N_("In store"),
    "online": N_("Online shop"),
    "mini_program": N_("Mini-program"),
    "app": N_("App"),
}
#: Compared figures: key of PeriodFigures, label, shown as money or as a count.
FIGURES: Final = (
    ("net_sales_fen", N_("Net sales"), "money"),
    ("orders", N_("Orders"), "number"),
    ("average_order_fen", N_("Average order value"), "money"),
    ("buyers", N_("Buying members"), "number"),
    ("new_members", N_("New members"), "number"),
    ("points_issued", N_("Points issued"), "number"),
    ("points_redeemed", N_("Points redeemed"), "number"),
)
SCOPE_ERRORS: Final = {
    "unknown_channel": ("channel", "Choose a sales channel from the list."),
    "unknown_store": ("store", "Choose a store from the list."),
    "unknown_region": ("region", "Choose a region from the list."),
}
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


@dataclass
class BoardRequest:
    """A dashboard request read from the address: range, filters and what went wrong."""

    preset: str | None = None
    start: date | None = None
    end: date | None = None
    start_text: str = ""
    end_text: str = ""
    store: str = ""
    region: str = ""
    channel: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    def query(self, **changes: str) -> str:
        """This request's address parameters with ``changes`` (empty values left out)."""
        params = {"store": self.store, "region": self.region, "channel": self.channel}
        if self.preset is not None:
            params["preset"] = self.preset
        else:
            params["from"], params["to"] = self.start_text, self.end_text
        if "preset" in changes:
            params.pop("from", None)
            params.pop("to", None)
        params.update(changes)
        return urlencode({k: v for k, v in params.items() if v})


def read_request(
    today: date,
    *,
    preset: str | None,
    days: str | None,
    start_text: str | None,
    end_text: str | None,
    store: str,
    region: str,
    channel: str,
) -> BoardRequest:
    req = BoardRequest(store=store.strip(), region=region.strip(), channel=channel.strip())
    if start_text is None and end_text is None:
        # ``days`` is the older form of the day presets (7, 30, 90).
        name = preset if preset is not None else (days if days is not None else str(DEFAULT_DAYS))
        if name.isdecimal() and int(name) in domain.PRESET_DAYS:
            req.start, req.end = domain.preset_range(today, int(name))
        elif name in domain.NAMED_PRESETS:
            req.start, req.end = domain.named_range(today, name)
        else:
            key = "days" if preset is None else "preset"
            req.errors[key] = PRESET_ERRORS[key]
            name = str(DEFAULT_DAYS)
            req.start, req.end = domain.preset_range(today, DEFAULT_DAYS)
        req.preset = name
    else:
        req.start, req.end = _parse_day(start_text), _parse_day(end_text)
        req.errors = domain.range_errors(req.start, req.end)
    req.start_text = req.start.isoformat() if req.start else (start_text or "")
    req.end_text = req.end.isoformat() if req.end else (end_text or "")
    return req


def load_board(
    request: Request, viewer: Viewer, req: BoardRequest
) -> tuple[Dashboard | None, dict[str, Any]]:
    """The dashboard of a request (None when the request has errors) and the filter choices."""
    settings: Settings = request.app.state.settings
    with read_session(request) as session:  # a replica when PATRON_READ_DATABASE_URL is set
        stores = catalog.list_stores(session)
        choices: dict[str, Any] = {"stores": stores, "regions": scoping.regions(session)}
        try:
            # The service decides what the viewer may see: a clerk gets their store only.
            scope = scoping.resolve(
                session,
                viewer.principal,
                store=req.store,
                region=req.region,
                channel=req.channel,
            )
        except Invalid as exc:
            field_name, message = SCOPE_ERRORS.get(exc.code, ("store", exc.message))
            req.errors[field_name] = message
            return None, choices
        choices["scope"] = scope
        if scope.locked:
            choices["store_name"] = next(
                (s.name for s in stores if s.code == scope.store), scope.store
            )
        if req.errors:
            return None, choices
        assert req.start is not None
        assert req.end is not None
        board = analytics.dashboard(
            session,
            start=req.start,
            end=req.end,
            now=request.app.state.clock.now(),
            tz=ZoneInfo(settings.business_timezone),
            scope=scope,
        )
    return board, choices


def comparison_rows(board: Dashboard) -> list[dict[str, Any]]:
    """Each compared figure: this period, the previous one, last year's, and the changes."""
    rows = []
    for key, label, kind in FIGURES:
        now, before, year = (
            board.current.figure(key),
            board.previous.figure(key),
            board.last_year.figure(key),
        )
        rows.append(
            {
                "key": key,
                "label": label,
                "kind": kind,
                "current": now,
                "previous": before,
                "last_year": year,
                "vs_previous": domain.change(now, before),
                "vs_last_year": domain.change(now, year),
            }
        )
    return rows


@router.get("/")
def dashboard(
    request: Request,
    viewer: MembersReader,
    start_text: Annotated[str | None, Query(alias="from", max_length=32)] = None,
    end_text: Annotated[str | None, Query(alias="to", max_length=32)] = None,
    days: Annotated[str | None, Query(max_length=8)] = None,
    preset: Annotated[str | None, Query(max_length=16)] = None,
    store: Annotated[str, Query(max_length=32)] = "",
    region: Annotated[str, Query(max_length=32)] = "",
    channel: Annotated[str, Query(max_length=16)] = "",
) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    tz = ZoneInfo(settings.business_timezone)
    today = request.app.state.clock.now().astimezone(tz).date()
    req = read_request(
        today,
        preset=preset,
        days=days,
        start_text=start_text,
        end_text=end_text,
        store=store,
        region=region,
        channel=channel,
    )
    board, choices = load_board(request, viewer, req)
    ctx: dict[str, Any] = {
        "nav": "dashboard",
        "req": req,
        "errors": req.errors,
        "presets": [(key, label, "/console/?" + req.query(preset=key)) for key, label in PRESETS],
        "preset": req.preset,
        "channels": CHANNEL_LABELS,
        "from_value": req.start_text,
        "to_value": req.end_text,
        "today": today,
        "board": board,
        **choices,
    }
    if board is None:
        return render(request, "console/dashboard.html", ctx, status=422)
    ctx["comparisons"] = comparison_rows(board)
    ctx["export_query"] = req.query()
    ctx["chart_json"] = chart_data(request, board, viewer.locale == "zh_CN")
    return render(request, "console/dashboard.html", ctx)


# ---- the dashboard's tables as downloads -----------------------------------------------------

TABLES: Final = ("kpis", "figures", "tiers", "trend")
KPIS_HEADER: Final = [N_("Figure"), N_("Value")]
FIGURES_HEADER: Final = [
    N_("Figure"),
    N_("This period"),
    N_("Previous period"),
    N_("Change vs previous period"),
    N_("Same period last year"),
    N_("Change vs last year"),
]
TIERS_HEADER: Final = [
    N_("Tier"),
    N_("Members"),
    N_("Share"),
    N_("Net sales (¥)"),
    N_("Share of sales"),
]
TREND_HEADER: Final = [
    N_("Period starting"),
    N_("New members"),
    N_("Number of orders"),
    N_("Net sales (¥)"),
    N_("Points issued"),
    N_("Points redeemed"),
    N_("Points expired"),
]


def _yuan(fen: int) -> float:
    # Spreadsheets sum numbers: amounts leave as yuan with two decimals, not as text.
    return round(fen / 100, 2)


def _share(ratio: domain.Ratio | None) -> float | str:
    value = ratio.value if ratio is not None else None
    return "" if value is None else round(value, 4)


def kpi_rows(board: Dashboard) -> list[tuple[str, object]]:
    """The key figures' cards and the points panel: label (message id) and value — money in
    yuan, rates as fractions, counts as integers. Expiries, balances and the liability are
    programme-wide figures, left out of a store, region or channel view as on the page."""
    m, s, p = board.members, board.sales, board.points
    frequency = s.frequency.value
    rows: list[tuple[str, object]] = [
        (N_("Members in total"), m.total),
        (N_("New members in range"), m.new_in_range),
        (N_("Active rate"), _share(m.active_rate)),
        (N_("Repurchase rate"), _share(s.repurchase_rate)),
        (N_("Net sales (¥)"), _yuan(s.net_sales_fen)),
        (N_("Number of orders"), s.orders),
        (N_("Average order value (¥)"), _yuan(s.average_order_fen)),
        (N_("Purchase frequency"), "" if frequency is None else round(frequency, 4)),
        (N_("Issued in range"), p.issued),
        (N_("Redeemed in range"), p.redeemed),
    ]
    if p.program_wide:
        rows += [
            (N_("Expired in range"), p.expired),
            (N_("Outstanding now"), p.outstanding),
            (N_("Pending points"), p.pending),
            (N_("Points debt"), p.debt),
            (N_("Points liability (¥)"), _yuan(p.liability_fen)),
        ]
    return rows


def table_rows(board: Dashboard, table: str, locale: str) -> tuple[list[str], list[list[object]]]:
    """One dashboard table as a header (message ids) and rows of plain values."""
    if table == "kpis":
        return list(KPIS_HEADER), [[i18n.gettext(locale, k), v] for k, v in kpi_rows(board)]
    if table == "figures":
        rows: list[list[object]] = []
        for row in comparison_rows(board):
            money = row["kind"] == "money"
            cell = _yuan if money else int
            rows.append(
                [
                    i18n.gettext(locale, row["label"]),
                    cell(row["current"]),
                    cell(row["previous"]),
                    _share(row["vs_previous"]),
                    cell(row["last_year"]),
                    _share(row["vs_last_year"]),
                ]
            )
        return list(FIGURES_HEADER), rows
    if table == "tiers":
        zh = locale == "zh_CN"
        return list(TIERS_HEADER), [
            [
                (t.name_zh if zh else "") or t.name,
                t.members,
                _share(t.member_share),
                _yuan(t.net_sales_fen),
                _share(t.sales_share),
            ]
            for t in board.tiers
        ]
    trend = board.trend
    return list(TREND_HEADER), [
        [label, *(_yuan(v) if k == 2 else v for k, v in enumerate(values))]
        for label, *values in zip(
            trend.labels,
            trend.new_members,
            trend.orders,
            trend.net_sales_fen,
            trend.points_issued,
            trend.points_redeemed,
            trend.points_expired,
            strict=True,
        )
    ]


@router.get("/dashboard/export/{table}")
def export_table(
    request: Request,
    table: str,
    viewer: MembersReader,
    fmt: Annotated[str, Query(alias="format", max_length=8)] = "csv",
    start_text: Annotated[str | None, Query(alias="from", max_length=32)] = None,
    end_text: Annotated[str | None, Query(alias="to", max_length=32)] = None,
    days: Annotated[str | None, Query(max_length=8)] = None,
    preset: Annotated[str | None, Query(max_length=16)] = None,
    store: Annotated[str, Query(max_length=32)] = "",
    region: Annotated[str, Query(max_length=32)] = "",
    channel: Annotated[str, Query(max_length=16)] = "",
) -> Response:
    """A dashboard table for the same range and filters as the page (at most 731 rows)."""
    if table not in TABLES:
        raise NotFound("not_found", "There is no such dashboard table.")
    settings: Settings = request.app.state.settings
    today = request.app.state.clock.now().astimezone(ZoneInfo(settings.business_timezone)).date()
    req = read_request(
        today,
        preset=preset,
        days=days,
        start_text=start_text,
        end_text=end_text,
        store=store,
        region=region,
        channel=channel,
    )
    board, _ = load_board(request, viewer, req)
    if board is None:
        field_name, message = next(iter(req.errors.items()))
        raise Invalid(
            "invalid_dashboard_range",
            "The range or a filter is not valid; open the dashboard to see which.",
            details={"field": field_name, "reason": message},
        )
    header, rows = table_rows(board, table, viewer.locale)

    def batches(session: Session) -> Iterator[Rows]:
        yield rows

    name = f"dashboard-{table}-{board.start.isoformat()}-{board.end.isoformat()}"
    return table_response(request, viewer, fmt if fmt in FORMATS else "csv", name, header, batches)
