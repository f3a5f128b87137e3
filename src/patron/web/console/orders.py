"""Console: the order list (filters, sortable columns, pages) and its CSV / Excel download.

What a viewer may see is decided by ``orders.listing`` from the principal: a clerk gets the
orders of their own store whatever the address asks for."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Annotated, Any, Final
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from patron.analytics import scope as scoping
from patron.catalog import service as catalog
from patron.errors import Invalid
from patron.kit import keyset
from patron.orders import listing
from patron.web import i18n
from patron.web.console.dashboard import CHANNEL_LABELS, SCOPE_ERRORS
from patron.web.console.exports import FORMATS, Rows, seek, table_response
from patron.web.console.members import ORDER_STATUS_LABELS, Pager
from patron.web.console.page_kit import OrdersReader, console_router
from patron.web.i18n import N_
from patron.web.pages import (
    get_session,
    parse_day,
    render,
)

router = console_router()

PAGE_SIZE: Final = 50
#: rows per statement while exporting
BATCH: Final = 1000
#: sortable columns: name → header
COLUMNS: Final = {
    "date": N_("Ordered"),
    "store": N_("Store"),
    "total": N_("Order total"),
    "paid": N_("Paid"),
    "points": N_("Points earned"),
}
MESSAGES: Final = (
    N_("Enter a date as YYYY-MM-DD."),
    N_("Choose an order status from the list."),
)
EXPORT_HEADER: Final = [
    N_("Order number"),
    N_("Ordered"),
    N_("Business day"),
    N_("Member number"),
    N_("Store"),
    N_("Channel"),
    N_("Status"),
    N_("Order total (¥)"),
    N_("Paid (¥)"),
    N_("Paid with points"),
    N_("Points earned"),
    N_("Refunded (¥)"),
]


def _day(text: str, field: str, errors: dict[str, str]) -> date | None:
    if not text.strip():
        return None
    try:
        return parse_day(text)
    except ValueError:
        errors[field] = "Enter a date as YYYY-MM-DD."
        return None


def read_filters(
    *,
    q: str,
    start: str,
    end: str,
    store: str,
    region: str,
    channel: str,
    status: str,
    sort: str,
    direction: str,
) -> tuple[listing.OrderFilters, dict[str, str]]:
    errors: dict[str, str] = {}
    if status and status not in listing.STATUSES:
        errors["status"] = "Choose an order status from the list."
    filters = listing.OrderFilters(
        q=q.strip() or None,
        start=_day(start, "from", errors),
        end=_day(end, "to", errors),
        store=store.strip() or None,
        region=region.strip() or None,
        channel=channel.strip() or None,
        status=status if status in listing.STATUSES else None,
        sort=sort if sort in listing.SORTS else "date",
        descending=direction != "asc",
    )
    return filters, errors


def _query(filters: listing.OrderFilters, **changes: str) -> dict[str, str]:
    params = {
        "q": filters.q or "",
        "from": filters.start.isoformat() if filters.start else "",
        "to": filters.end.isoformat() if filters.end else "",
        "store": filters.store or "",
        "region": filters.region or "",
        "channel": filters.channel or "",
        "status": filters.status or "",
        "sort": filters.sort if filters.sort != "date" else "",
        "dir": "" if filters.descending else "asc",
    }
    params.update(changes)
    return {k: v for k, v in params.items() if v}


def sort_links(filters: listing.OrderFilters) -> dict[str, dict[str, str]]:
    """Per column: the address that sorts by it (again: the other way) and its aria-sort."""
    out = {}
    for column in COLUMNS:
        current = filters.sort == column
        flip = "asc" if (current and filters.descending) else ""
        out[column] = {
            "href": "/console/orders?" + urlencode(_query(filters, sort=column, dir=flip, page="")),
            "aria": ("descending" if filters.descending else "ascending") if current else "none",
        }
    return out


@router.get("/orders")
def order_list(
    request: Request,
    viewer: OrdersReader,
    q: Annotated[str, Query(max_length=64)] = "",
    start: Annotated[str, Query(alias="from", max_length=32)] = "",
    end: Annotated[str, Query(alias="to", max_length=32)] = "",
    store: Annotated[str, Query(max_length=32)] = "",
    region: Annotated[str, Query(max_length=32)] = "",
    channel: Annotated[str, Query(max_length=16)] = "",
    status: Annotated[str, Query(max_length=24)] = "",
    sort: Annotated[str, Query(max_length=16)] = "date",
    direction: Annotated[str, Query(alias="dir", max_length=4)] = "desc",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> HTMLResponse:
    session = get_session(request)
    filters, errors = read_filters(
        q=q, start=start, end=end, store=store, region=region, channel=channel,
        status=status, sort=sort, direction=direction,
    )  # fmt: skip
    ctx: dict[str, Any] = {
        "nav": "orders",
        "filters": filters,
        "form": {"from": start, "to": end},
        "errors": errors,
        "stores": catalog.list_stores(session),
        "regions": scoping.regions(session),
        "channels": CHANNEL_LABELS,
        "statuses": ORDER_STATUS_LABELS,
        "columns": COLUMNS,
        "sorts": sort_links(filters),
        "results": [],
        "pager": Pager(1, 0, PAGE_SIZE),
        "scope": None,
    }
    if not errors:
        try:
            found = listing.search(
                session, viewer.principal, filters,
                limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE,
            )  # fmt: skip
        except Invalid as exc:
            field, message = SCOPE_ERRORS.get(exc.code, ("store", exc.message))
            errors[field] = message
        else:
            names = catalog.store_names(
                session, {r.order.store_code for r in found.rows if r.order.store_code}
            )
            ctx.update(
                results=found.rows,
                store_names=names,
                pager=Pager(page, found.total, PAGE_SIZE),
                scope=found.scope,
                query=_query(filters),
                export_query=urlencode(_query(filters)),
            )
            if found.scope.locked and found.scope.store:
                ctx["store_name"] = catalog.store_names(session, {found.scope.store}).get(
                    found.scope.store, found.scope.store
                )
    if errors:
        return render(request, "console/orders.html", ctx, status=422)
    return render(request, "console/orders.html", ctx)


def _yuan(fen: int) -> float:
    return round(fen / 100, 2)


@router.get("/orders/export")
def export_orders(
    request: Request,
    viewer: OrdersReader,
    fmt: Annotated[str, Query(alias="format", max_length=8)] = "csv",
    q: Annotated[str, Query(max_length=64)] = "",
    start: Annotated[str, Query(alias="from", max_length=32)] = "",
    end: Annotated[str, Query(alias="to", max_length=32)] = "",
    store: Annotated[str, Query(max_length=32)] = "",
    region: Annotated[str, Query(max_length=32)] = "",
    channel: Annotated[str, Query(max_length=16)] = "",
    status: Annotated[str, Query(max_length=24)] = "",
    sort: Annotated[str, Query(max_length=16)] = "date",
    direction: Annotated[str, Query(alias="dir", max_length=4)] = "desc",
) -> Response:
    """The order list with the page's filters and sort, read in batches while it is sent."""
    filters, errors = read_filters(
        q=q, start=start, end=end, store=store, region=region, channel=channel,
        status=status, sort=sort, direction=direction,
    )  # fmt: skip
    if errors:
        field, message = next(iter(errors.items()))
        raise Invalid(
            "invalid_order_filter",
            "A filter of the order list is not valid; open the list to see which.",
            details={"field": field, "reason": message},
        )
    # Refuse an unknown store or channel now, before the download starts.
    listing.search(get_session(request), viewer.principal, filters, limit=1, offset=0, count=False)
    locale = viewer.locale
    tz = ZoneInfo(request.app.state.settings.business_timezone)
    principal = viewer.principal

    def batches(session: Session) -> Iterator[Rows]:
        names: dict[str, str] = {}
        walk = listing.walk_of(filters)

        def fetch(after: keyset.Seek, limit: int) -> tuple[list[list[object]], keyset.Seek | None]:
            page = listing.search(
                session, principal, filters, limit=limit, count=False, after=after
            )
            missing = {r.order.store_code for r in page.rows if r.order.store_code} - set(names)
            names.update(catalog.store_names(session, missing))
            out = [_export_row(r, names, locale, tz) for r in page.rows]
            return out, walk.next(after, [r.order for r in page.rows], limit)

        return seek(fetch, walk.first())

    return table_response(
        request, viewer, fmt if fmt in FORMATS else "csv", "orders", EXPORT_HEADER, batches
    )


def _export_row(
    row: listing.OrderRow, names: dict[str, str], locale: str, tz: ZoneInfo
) -> list[object]:
    o = row.order
    at = o.ordered_at.astimezone(tz)
    channel = CHANNEL_LABELS.get(o.channel)
    status = ORDER_STATUS_LABELS.get(o.status)
    return [
        o.external_id,
        at.strftime("%Y-%m-%d %H:%M"),
        o.business_date.isoformat(),
        row.member_no,
        names.get(o.store_code or "", o.store_code or ""),
        i18n.gettext(locale, channel) if channel else o.channel,
        i18n.gettext(locale, status) if status else o.status,
        _yuan(o.total_fen),
        _yuan(o.paid_fen),
        o.points_used,
        o.points_earned,
        _yuan(o.refunded_fen),
    ]
