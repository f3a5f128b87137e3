"""Console: the service desk's ticket queue as a CSV or Excel download — the same view (all
open, VIP, mine, late, resolved) in the same order as the page, read in batches from
``service.tickets.queue`` while it is sent. Codes leave as words in the viewer's language;
the member is named by number only (no name or contact: the queue's reader may not hold
members:pii)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Final
from zoneinfo import ZoneInfo

from fastapi import Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from patron.members import service as members
from patron.service import tickets
from patron.web import i18n
from patron.web.console.exports import FORMATS, Rows, paged, table_response
from patron.web.console.page_kit import ServiceReader, console_router
from patron.web.console.service import QUEUE_SORTING, queue_filter
from patron.web.i18n import N_
from patron.web.service_labels import (
    CATEGORY_LABELS,
    CHANNEL_LABELS,
    PRIORITY_LABELS,
    QUEUE_LABELS,
    STATUS_LABELS,
)

router = console_router()

HEADER: Final = [
    N_("Ticket"),
    N_("Subject"),
    N_("Member number"),
    N_("Category"),
    N_("Priority"),
    N_("Queue"),
    N_("Channel"),
    N_("Opened"),
    N_("Answer due"),
    N_("First answer"),
    N_("Assigned to"),
    N_("Status"),
]


@router.get("/service/export")
def export_queue(
    request: Request,
    viewer: ServiceReader,
    view: Annotated[str, Query(pattern=r"^(all|vip|mine|breached|resolved)$")] = "all",
    sort: Annotated[str, Query(max_length=16)] = "",
    direction: Annotated[str, Query(alias="dir", max_length=4)] = "",
    fmt: Annotated[str, Query(alias="format", max_length=8)] = "csv",
) -> Response:
    """The queue's view with the page's sort."""
    sort, descending = QUEUE_SORTING.read(sort, direction)
    f = queue_filter(view, viewer)
    tz = ZoneInfo(request.app.state.settings.business_timezone)

    def word(labels: dict[str, str], code: str) -> str:
        return i18n.gettext(viewer.locale, labels[code]) if code in labels else code

    def batches(session: Session) -> Iterator[Rows]:
        def fetch(limit: int, offset: int) -> list[list[object]]:
            rows, _ = tickets.queue(
                session, f, limit=limit, offset=offset, sort=sort, descending=descending
            )
            owners = members.by_ids(session, list({t.member_id for t in rows}))

            def at(value: datetime | None) -> str:
                return value.astimezone(tz).strftime("%Y-%m-%d %H:%M") if value else ""

            return [
                [
                    t.ticket_no,
                    t.subject,
                    owners[t.member_id].member_no if t.member_id in owners else "",
                    word(CATEGORY_LABELS, t.category),
                    word(PRIORITY_LABELS, t.priority),
                    word(QUEUE_LABELS, t.queue),
                    word(CHANNEL_LABELS, t.channel),
                    at(t.created_at),
                    at(t.response_due_at),
                    at(t.first_response_at),
                    t.assignee or "",
                    word(STATUS_LABELS, t.status),
                ]
                for t in rows
            ]

        return paged(fetch)

    fmt = fmt if fmt in FORMATS else "csv"
    return table_response(request, viewer, fmt, f"tickets-{view}", HEADER, batches)
