"""Console: the mall's stock turnover — the monthly report per gift and warehouse (CSV and
XLSX downloads through ``exports.table_response``), each warehouse's safety-stock alerts, a
chart of the stock per warehouse (ECharts), and a gift's page with its price history."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any, Final

from fastapi import Path, Query, Request
from sqlalchemy.orm import Session
from starlette.responses import Response

from patron.kit.timeutil import business_date, business_tz
from patron.mall import pricing, stock, turnover
from patron.mall import service as mall
from patron.web import i18n
from patron.web.console.exports import Rows, table_response
from patron.web.console.page_kit import MallReader, console_router
from patron.web.i18n import N_
from patron.web.pages import CONSOLE_PREFIX, Viewer, get_session, render

router = console_router(full_paths=True)
PAGE = CONSOLE_PREFIX + "/mall/turnover"
Month = Annotated[str | None, Query(pattern=r"^[0-9]{4}-[0-9]{2}$")]

HEADER: Final = [
    N_("Gift"),
    N_("Name"),
    N_("Warehouse"),
    N_("On hand at the start"),
    N_("Received"),
    N_("Transferred"),
    N_("Adjusted"),
    N_("Issued"),
    N_("On hand at the end"),
    N_("Redeemed"),
    N_("Turnover"),
    N_("Slow mover"),
]


def _month(request: Request, month: str | None) -> str:
    if month:
        return month
    tz = business_tz(request.app.state.settings.business_timezone)
    return business_date(request.app.state.clock.now(), tz).strftime("%Y-%m")


def _report(request: Request, session: Session, month: str) -> list[turnover.TurnoverRow]:
    tz = business_tz(request.app.state.settings.business_timezone)
    return turnover.monthly(session, month, tz, request.app.state.clock.now())


def ratio(permille: int | None) -> str:
    """Thousandths as a ratio with two decimals ("1.25"); "—" without stock."""
    return "—" if permille is None else f"{permille // 1000}.{permille % 1000 // 10:02d}"


@router.get(PAGE)
def turnover_page(request: Request, viewer: MallReader, month: Month = None) -> Response:
    session = get_session(request)
    month = _month(request, month)
    settings = mall.get_settings(session)
    names = {w.code: w.name for w in settings.warehouses}
    levels = stock.levels(session)
    gifts = sorted({code for code, _s in levels})
    available = {(c, s.warehouse): s.on_hand - s.reserved for c, s in levels}
    chart = {
        "gifts": gifts,
        "series": [
            {
                "name": names.get(w, w),
                "data": [available.get((g, w), 0) for g in gifts],
            }
            for w in settings.warehouse_codes()
        ],
    }
    ctx: dict[str, Any] = {
        "nav": "mall",
        "month": month,
        "rows": _report(request, session, month),
        "alerts": turnover.warehouse_alerts(session, request.app.state.clock.now()),
        "warehouse_names": names,
        "ratio": ratio,
        "chart_json": json.dumps(chart, ensure_ascii=False).replace("</", "<\\/"),
        "slow_days": settings.slow_mover_days,
    }
    return render(request, "console/mall_turnover.html", ctx)


@router.get(PAGE + "/export")
def export_turnover(
    request: Request,
    viewer: MallReader,
    month: Month = None,
    fmt: Annotated[str, Query(alias="format", pattern=r"^(csv|xlsx)$")] = "csv",
) -> Response:
    month = _month(request, month)
    yes, no = N_("yes"), N_("no")

    def batches(session: Session) -> Iterator[Rows]:
        yield [
            [
                r.gift.code,
                r.gift.name,
                r.warehouse,
                r.opening,
                r.received,
                r.transferred,
                r.adjusted,
                r.issued,
                r.closing,
                r.redeemed,
                ratio(r.turnover_permille),
                viewer_text(viewer, yes if r.slow_mover else no),
            ]
            for r in _report(request, session, month)
        ]

    return table_response(request, viewer, fmt, f"mall-turnover-{month}", HEADER, batches)


def viewer_text(viewer: Viewer, message: str) -> str:
    return i18n.gettext(viewer.locale, message)


@router.get(CONSOLE_PREFIX + "/mall/gifts/{code}")
def gift_page(
    request: Request,
    viewer: MallReader,
    code: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,32}$")],
) -> Response:
    session = get_session(request)
    gift = mall.get_gift(session, code)
    names = {w.code: w.name for w in mall.get_settings(session).warehouses}
    ctx = {
        "nav": "mall",
        "g": mall.view(session, gift, request.app.state.clock.now()),
        "levels": [s for _c, s in stock.levels(session, gift.code)],
        "warehouse_names": names,
        "history": pricing.history(session, gift),
    }
    return render(request, "console/mall_gift.html", ctx)
