"""Console: tables as CSV or Excel (XLSX) downloads — the member list with its current filters,
a member's points history and the audit log with its filters.

Rows come in batches from the same services as the pages (never SQL here). A CSV streams: its
batches are read while the response is sent, in a session of their own, so a large export
holds neither the whole table in memory nor a request's transaction slot for long. An XLSX
file cannot be sent before it is complete (it is a zip), so XlsxWriter writes it row by row to
a temporary file in constant-memory mode and the file is then sent and removed. Every text
cell goes through ``kit.csvsafe`` (formula injection); numbers stay numbers; headers and
labels are in the viewer's language."""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Annotated, Final
from zoneinfo import ZoneInfo

import xlsxwriter
from fastapi import Query, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask

from patron.audit.models import AuditRecord
from patron.auth import permissions as perm
from patron.db import Database
from patron.kit import csvsafe, keyset
from patron.ledger import queries
from patron.members import service as members
from patron.ops.replica import read_database, read_only
from patron.tiers import service as tiers
from patron.web import i18n
from patron.web.console import audit_labels, history_text
from patron.web.console.members import MEMBER_SORTING, STATUSES, cipher_of, tier_name
from patron.web.console.page_kit import MembersReader, PointsReader, console_router
from patron.web.i18n import N_
from patron.web.pages import Viewer, get_session

router = console_router()

#: rows read per statement while exporting
BATCH: Final = 1000
#: an export stops there; the page says to narrow the filters for more
MAX_ROWS: Final = 1_000_000
FORMATS: Final = ("csv", "xlsx")
XLSX_TYPE: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

Rows = Iterable[list[object]]
#: given a session, the table's rows batch by batch
Batches = Callable[[Session], Iterator[Rows]]


def table_response(
    request: Request,
    viewer: Viewer,
    fmt: str,
    name: str,
    header: list[str],
    batches: Batches,
    *,
    replica: bool = False,
) -> Response:
    """The table as a download; ``header`` holds message ids, translated here. With
    ``replica`` (reports that may lag) the rows come from the read replica when one is set."""
    titles = [i18n.gettext(viewer.locale, h) for h in header]
    # The rows are read in a read-only session of their own, in one snapshot: pages read one
    # after the other neither repeat nor skip a row written meanwhile, and on SQLite the
    # export holds no write lock while it is built or sent.
    db: Database = (read_database(request) if replica else None) or request.app.state.db
    if fmt == "xlsx":
        with read_only(db) as session:
            return _xlsx(session, name, titles, batches)

    def stream() -> Iterator[str]:
        # A BOM: spreadsheet apps then read the UTF-8 (Chinese names) correctly.
        yield "\ufeff" + _csv_lines([titles])
        # Opened here, not in the request: the request's session has ended when the body is
        # sent.
        with read_only(db) as session:
            for rows in batches(session):
                yield _csv_lines(csvsafe.row(r) for r in rows)

    return StreamingResponse(
        stream(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


def _csv_lines(rows: Iterable[Iterable[object]]) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    return buf.getvalue()


def _xlsx(session: Session, name: str, titles: list[str], batches: Batches) -> Response:
    fd, path = tempfile.mkstemp(suffix=".xlsx")
    os.close(fd)
    book = xlsxwriter.Workbook(path, {"constant_memory": True, "strings_to_formulas": False})
    try:
        sheet = book.add_worksheet(name[:31])
        bold = book.add_format({"bold": True})
        sheet.write_row(0, 0, titles, bold)
        row_no = 1
        for rows in batches(session):
            for values in rows:
                sheet.write_row(row_no, 0, csvsafe.row(values))
                row_no += 1
        book.close()
    except BaseException:
        book.close()
        os.unlink(path)
        raise
    return FileResponse(
        path,
        media_type=XLSX_TYPE,
        filename=f"{name}.xlsx",
        background=BackgroundTask(os.unlink, path),
    )


def seek(
    fetch: Callable[[keyset.Seek, int], tuple[list[list[object]], keyset.Seek | None]],
    start: keyset.Seek,
) -> Iterator[Rows]:
    """Batches from ``fetch(seek, limit)``, which returns its rows and where the next batch
    starts (None: nothing more), until MAX_ROWS: the batches seek (kit.keyset), so a long
    export reads each row once."""
    position: keyset.Seek | None = start
    sent = 0
    while position is not None and sent < MAX_ROWS:
        rows, position = fetch(position, min(BATCH, MAX_ROWS - sent))
        if rows:
            yield rows
        sent += len(rows)


def paged(fetch: Callable[[int, int], list[list[object]]]) -> Iterator[Rows]:
    """Batches from ``fetch(limit, offset)`` until one comes back short or MAX_ROWS is reached."""
    offset = 0
    while offset < MAX_ROWS:
        rows = fetch(BATCH, offset)
        if rows:
            yield rows
        if len(rows) < BATCH:
            return
        offset += BATCH


def _fmt(value: str) -> str:
    return value if value in FORMATS else "csv"


# ---- members ---------------------------------------------------------------------------------

MEMBER_HEADER: Final = [
    N_("Member number"),
    N_("Name"),
    N_("Phone"),
    N_("Tier"),
    N_("Tags"),
    N_("Status"),
    N_("Joined"),
]


@router.get("/members/export")
def export_members(
    request: Request,
    viewer: MembersReader,
    fmt: Annotated[str, Query(alias="format", max_length=8)] = "csv",
    q: Annotated[str, Query(max_length=64)] = "",
    tag: Annotated[str, Query(max_length=32)] = "",
    tier: Annotated[str, Query(max_length=32)] = "",
    status: Annotated[str, Query(max_length=16)] = "",
    channel: Annotated[str, Query(max_length=16)] = "",
    store: Annotated[str, Query(max_length=32)] = "",
    sort: Annotated[str, Query(max_length=16)] = "joined",
    direction: Annotated[str, Query(alias="dir", max_length=4)] = "",
) -> Response:
    """The member list with the filters and the sort the list page had (newest first unless
    a column header was clicked)."""
    sort, descending = MEMBER_SORTING.read(sort, direction)
    cipher = cipher_of(request)
    full = viewer.can(perm.MEMBERS_PII)
    statuses = dict(STATUSES)

    def batches(session: Session) -> Iterator[Rows]:
        ladder = tiers.get_ladder(session)
        names = {t.code: tier_name(t, viewer.locale) for t in ladder.tiers}

        walk = members.search_keyset(sort, descending)

        def fetch(after: keyset.Seek, limit: int) -> tuple[list[list[object]], keyset.Seek | None]:
            rows, _ = members.search(
                session,
                cipher,
                q=q.strip() or None,
                tag=tag.strip() or None,
                tier=tier if tier in names else None,
                base_tier=ladder.base.code,
                status=status if status in statuses else None,
                channel=channel or None,
                store_code=store.strip() or None,
                limit=limit,
                count_limit=0,
                sort=sort,
                descending=descending,
                after=after,
            )
            codes = tiers.codes_of(session, [m.id for m in rows], ladder.base.code)
            out: list[list[object]] = []
            for m, s in zip(
                rows, members.summaries(session, rows, cipher, full_pii=full), strict=True
            ):
                out.append(
                    [
                        s.member_no,
                        s.name or "",
                        s.phone,
                        names.get(codes[m.id], codes[m.id]),
                        " ".join(s.tags),
                        i18n.gettext(viewer.locale, statuses.get(s.status, s.status)),
                        s.created_at.date().isoformat(),
                    ]
                )
            return out, walk.next(after, rows, limit)

        return seek(fetch, walk.first())

    return table_response(request, viewer, _fmt(fmt), "members", MEMBER_HEADER, batches)


# ---- a member's points history ---------------------------------------------------------------

POINTS_HEADER: Final = [
    N_("When"),
    N_("What happened"),
    N_("Details"),
    N_("Available"),
    N_("Pending"),
    N_("Points debt"),
    N_("By"),
]


@router.get("/members/{member_no}/points/export")
def export_points(
    request: Request,
    member_no: str,
    viewer: PointsReader,
    fmt: Annotated[str, Query(alias="format", max_length=8)] = "csv",
) -> Response:
    member_id = members.get_member(get_session(request), member_no).id
    tz = request.app.state.settings.business_timezone

    def say(phrase: history_text.Phrase) -> str:
        return i18n.gettext(viewer.locale, phrase[0]) % phrase[1]

    def batches(session: Session) -> Iterator[Rows]:
        names = {t.code: tier_name(t, viewer.locale) for t in tiers.get_ladder(session).tiers}

        def fetch(limit: int, offset: int) -> list[list[object]]:
            postings, _ = queries.history(session, member_id, limit=limit, offset=offset)
            return [
                [
                    _local(line.posting.created_at, tz),
                    say(line.sentence),
                    " · ".join(say(d) for d in line.details),
                    line.posting.available_delta,
                    line.posting.pending_delta,
                    line.posting.debt_delta,
                    line.posting.actor or "",
                ]
                for line in history_text.lines(session, member_id, postings, names)
            ]

        return paged(fetch)

    name = f"points-{member_no}"
    return table_response(request, viewer, _fmt(fmt), name, POINTS_HEADER, batches)


def _local(at: datetime, tz: str) -> str:
    return at.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")


# ---- the audit log ---------------------------------------------------------------------------

AUDIT_HEADER: Final = [
    N_("Time"),
    N_("Actor"),
    N_("Action"),
    N_("Entity"),
    N_("Before"),
    N_("After"),
]


def audit_export(
    request: Request,
    viewer: Viewer,
    fmt: str,
    search: Callable[[Session, int, int, keyset.Seek | None], list[AuditRecord]],
    *,
    walk: keyset.Keyset | None = None,
) -> Response:
    """The audit log with the filters of its page (``search(session, limit, offset,
    after)``); with ``walk`` (the time order) the batches seek instead of paging."""
    tz = request.app.state.settings.business_timezone

    def label(msg: str) -> str:
        return i18n.gettext(viewer.locale, msg)

    def values(items: list[audit_labels.Shown]) -> str:
        return "; ".join(
            f"{label(s.label)}: " + (label(s.value) % (s.values or {}) if s.translate else s.value)
            for s in items
        )

    def batches(session: Session) -> Iterator[Rows]:
        names = {t.code: tier_name(t, viewer.locale) for t in tiers.get_ladder(session).tiers}

        def rows_of(records: list[AuditRecord]) -> list[list[object]]:
            out: list[list[object]] = []
            for row in audit_labels.rows(session, records, names, ZoneInfo(tz)):
                r = row.record
                action = audit_labels.ACTION_LABELS.get(r.action)
                entity = audit_labels.ENTITY_LABELS.get(r.entity_type)
                out.append(
                    [
                        _local(r.at, tz),
                        r.actor_label,
                        label(action) if action else r.action,
                        f"{label(entity) if entity else r.entity_type} {row.entity}",
                        values(row.before),
                        values(row.after),
                    ]
                )
            return out

        def fetch(limit: int, offset: int) -> list[list[object]]:
            return rows_of(search(session, limit, offset, None))

        if walk is None:
            return paged(fetch)
        sort_walk = walk

        def seek_fetch(
            after: keyset.Seek, limit: int
        ) -> tuple[list[list[object]], keyset.Seek | None]:
            records = search(session, limit, 0, after)
            return rows_of(records), sort_walk.next(after, records, limit)

        return seek(seek_fetch, walk.first())

    return table_response(request, viewer, _fmt(fmt), "audit", AUDIT_HEADER, batches)
