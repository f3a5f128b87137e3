"""Console: the service desk — the ticket queue (standard and VIP), a ticket's page with its
timeline and, for a missing-points dispute, the order and its postings; the knowledge base and
NPS by tier and store. Pages call ``patron.service``; refusals are shown in words."""

from __future__ import annotations

import re
from typing import Annotated, Any, Final

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from patron.auth import permissions as perm
from patron.catalog import service as catalog
from patron.errors import PatronError
from patron.kit.ids import CODE_PATTERN
from patron.members import service as members
from patron.service import kb, surveys, tickets
from patron.web.console.desk_common import tier_label
from patron.web.console.members import (
    ADJUSTMENT_STATUS_LABELS,
    PAGE_SIZE,
    POSTING_LABELS,
    Pager,
    cipher_of,
    ledger_ctx,
)
from patron.web.console.page_kit import ServiceReader, ServiceWriter, TicketNo, console_router
from patron.web.console.sorting import Sorting
from patron.web.i18n import N_
from patron.web.pages import (
    Viewer,
    get_session,
    redirect,
    render,
)
from patron.web.service_labels import (
    CATEGORY_LABELS,
    CHANNEL_LABELS,
    PRIORITY_LABELS,
    QUEUE_LABELS,
    STATUS_LABELS,
)

router = console_router()

#: refusals of the service in the operator's language (others show the service's message)
MESSAGES: Final = {
    "member_not_found": N_("No member with this number."),
    "dispute_order_required": N_("A missing-points dispute needs the order number."),
    "dispute_order_not_found": N_("This order is not one of the member's orders."),
    "ticket_subject_required": N_("Write a subject."),
    "ticket_description_required": N_("Describe the request."),
    "ticket_reply_required": N_("Write the answer."),
    "ticket_resolution_required": N_("Write what was done for the member."),
    "ticket_resolved": N_("This ticket is already resolved."),
    "assignee_not_found": N_("No active staff user with this user name."),
    "correction_not_dispute": N_("Only a missing-points dispute can credit points."),
    "correction_invalid": N_("Enter a number of points from 1 up."),
    "insufficient_points": N_("The member does not have enough points."),
    "reason_required": N_("An adjustment needs a reason."),
    "article_slug_invalid": N_("Use lower-case letters, digits and dashes."),
    "article_text_required": N_("An article needs a title and an answer."),
    "article_locale_invalid": N_("Choose Chinese or English."),
}
VIEWS: Final = {
    "all": N_("All open"),
    "vip": N_("VIP queue"),
    "mine": N_("Assigned to me"),
    "breached": N_("Response target missed"),
    "resolved": N_("Resolved"),
}
EVENT_LABELS: Final = {
    "opened": N_("Opened"),
    "reply": N_("Answered"),
    "member_reply": N_("The member wrote"),
    "assigned": N_("Assigned"),
    "breached": N_("Response target missed"),
    "resolved": N_("Resolved"),
}
LOCALE_LABELS: Final = {"zh_CN": N_("Chinese"), "en": N_("English")}
#: the queue's sortable columns (``tickets.QUEUE_SORTS``): most pressing first by default
#: (breached, then due soonest); newest and most urgent first, the others A→Z / soonest first
QUEUE_SORTING: Final = Sorting(
    "/console/service",
    {
        "pressing": False,
        "opened": True,
        "due": False,
        "priority": True,
        "category": False,
        "assignee": False,
    },
    default="pressing",
)


def _message(exc: PatronError) -> str:
    return MESSAGES.get(exc.code, exc.message)


def labels() -> dict[str, Any]:
    return {
        "category_labels": CATEGORY_LABELS,
        "priority_labels": PRIORITY_LABELS,
        "status_labels": STATUS_LABELS,
        "queue_labels": QUEUE_LABELS,
        "channel_labels": CHANNEL_LABELS,
        "event_labels": EVENT_LABELS,
    }


def queue_filter(view: str, viewer: Viewer) -> tickets.QueueFilter:
    """The tickets a view of the queue shows (``VIEWS``)."""
    return tickets.QueueFilter(
        queue="vip" if view == "vip" else None,
        status="resolved" if view == "resolved" else None,
        assignee=viewer.principal.label if view == "mine" else None,
        breached=view == "breached",
    )


@router.get("/service")
def queue_page(
    request: Request,
    viewer: ServiceReader,
    view: Annotated[str, Query(pattern=r"^(all|vip|mine|breached|resolved)$")] = "all",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    sort: Annotated[str, Query(max_length=16)] = "",
    direction: Annotated[str, Query(alias="dir", max_length=4)] = "",
) -> HTMLResponse:
    session = get_session(request)
    sort, descending = QUEUE_SORTING.read(sort, direction)
    f = queue_filter(view, viewer)
    rows, total = tickets.queue(
        session,
        f,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
        sort=sort,
        descending=descending,
    )
    order = QUEUE_SORTING.params(sort, descending)
    owners = members.by_ids(session, list({t.member_id for t in rows}))
    ctx = {
        "nav": "service",
        "rows": rows,
        "owners": {mid: m.member_no for mid, m in owners.items()},
        "names": {mid: m.name for mid, m in owners.items()},
        "tiers": {t.tier_code: tier_label(session, viewer, t.tier_code) for t in rows},
        "view": view,
        "views": VIEWS,
        "breached": tickets.breached_open(session),
        "now": request.app.state.clock.now(),
        "pager": Pager(page, total),
        "sorts": QUEUE_SORTING.links({"view": view}, sort, descending),
        # the pager and the queue's tabs keep the sort
        "query": {"view": view, **order},
        "order": order,
        **labels(),
    }
    return render(request, "console/service/queue.html", ctx)


@router.get("/service/badge")
def badge(request: Request, viewer: ServiceReader) -> HTMLResponse:
    """The menu's count of tickets past their response target (loaded by htmx)."""
    n = tickets.breached_open(get_session(request))
    return render(request, "console/service/_badge.html", {"n": n})


def _desk_store(request: Request) -> str | None:
    """The store the desk tablet chose (its cookie), when it is a well-formed store code."""
    code = request.cookies.get("patron_desk_store") or ""
    return code if re.fullmatch(CODE_PATTERN[1:-1], code) else None


def _new_form(
    request: Request, values: dict[str, str], errors: dict[str, str], status: int = 200
) -> HTMLResponse:
    ctx = {"nav": "service", "values": values, "errors": errors, **labels()}
    return render(request, "console/service/new.html", ctx, status=status)


@router.get("/service/new")
def new_ticket(
    request: Request,
    viewer: ServiceWriter,
    member: Annotated[str, Query(max_length=10)] = "",
) -> HTMLResponse:
    return _new_form(request, {"member_no": member, "priority": "normal"}, {})


@router.post("/service/new")
def create_ticket(
    request: Request,
    viewer: ServiceWriter,
    member_no: Annotated[str, Form(max_length=10)] = "",
    category: Annotated[str, Form(max_length=24)] = "other",
    priority: Annotated[str, Form(max_length=12)] = "normal",
    subject: Annotated[str, Form(max_length=200)] = "",
    body: Annotated[str, Form(max_length=4000)] = "",
    order: Annotated[str, Form(max_length=97)] = "",
) -> Response:
    session = get_session(request)
    values = {
        "member_no": member_no,
        "category": category,
        "priority": priority,
        "subject": subject,
        "body": body,
        "order": order,
    }
    field = "member_no"
    try:
        with session.begin_nested():
            m = members.get_member(session, member_no.strip())
            field = "order"
            found = (
                tickets.member_order(session, m.id, ref=order)
                if order.strip() or category == "missing_points"
                else None
            )
            field = "form"
            t = tickets.open_ticket(
                session,
                viewer.principal,
                m,
                category=category,
                priority=priority,
                subject=subject,
                body=body,
                channel="desk" if viewer.principal.role == "clerk" else "console",
                store_code=_desk_store(request),
                order=found,
                now=request.app.state.clock.now(),
            )
    except PatronError as exc:
        return _new_form(request, values, {field: _message(exc)}, 422)
    return redirect(request, f"/console/service/{t.ticket_no}", flash=N_("Ticket opened."))


# --- knowledge base ---------------------------------------------------------------------


def _kb_page(
    request: Request,
    viewer: Viewer,
    q: str,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    session = get_session(request)
    locale = viewer.locale if viewer.locale in kb.LOCALES else "en"
    rows = kb.search(session, q, locale, limit=50) if q else kb.list_articles(session)
    ctx = {
        "nav": "service",
        "rows": rows,
        "q": q,
        "values": values or {"locale": locale},
        "errors": errors or {},
        "locale_labels": LOCALE_LABELS,
        "can_write": viewer.can(perm.SERVICE_WRITE),
    }
    return render(request, "console/service/articles.html", ctx, status=status)


@router.get("/service/articles")
def articles(
    request: Request, viewer: ServiceReader, q: Annotated[str, Query(max_length=200)] = ""
) -> HTMLResponse:
    return _kb_page(request, viewer, q)


@router.post("/service/articles")
def save_article(
    request: Request,
    viewer: ServiceWriter,
    slug: Annotated[str, Form(max_length=64)] = "",
    locale: Annotated[str, Form(max_length=8)] = "zh_CN",
    title: Annotated[str, Form(max_length=200)] = "",
    body: Annotated[str, Form(max_length=20_000)] = "",
    keywords: Annotated[str, Form(max_length=300)] = "",
    published: Annotated[str, Form(max_length=4)] = "",
) -> Response:
    session = get_session(request)
    values = {
        "slug": slug,
        "locale": locale,
        "title": title,
        "body": body,
        "keywords": keywords,
    }
    try:
        with session.begin_nested():
            kb.save(
                session,
                viewer.principal,
                slug=slug.strip(),
                locale=locale,
                title=title,
                body=body,
                keywords=keywords,
                published=bool(published),
                now=request.app.state.clock.now(),
            )
    except PatronError as exc:
        return _kb_page(request, viewer, "", values, {"article": _message(exc)}, 422)
    return redirect(request, "/console/service/articles", flash=N_("Article saved."))


# --- NPS --------------------------------------------------------------------------------


@router.get("/service/nps")
def nps_page(request: Request, viewer: ServiceReader) -> HTMLResponse:
    session = get_session(request)
    by_tier = surveys.nps_report(session, "tier")
    by_store = surveys.nps_report(session, "store")
    stores = catalog.store_names(session, {r.key for r in by_store if r.key})
    ctx = {
        "nav": "service",
        "overall": surveys.overall(by_tier),
        "answers": sum(r.answers for r in by_tier),
        "by_tier": [(tier_label(session, viewer, r.key or ""), r) for r in by_tier],
        "by_store": [(stores.get(r.key or "", r.key), r) for r in by_store],
    }
    return render(request, "console/service/nps.html", ctx)


def _ticket_page(
    request: Request,
    viewer: Viewer,
    ticket_no: str,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    session = get_session(request)
    t = tickets.get(session, ticket_no)
    m = members.by_ids(session, [t.member_id])[t.member_id]
    summary = members.to_summary(
        session, m, cipher_of(request), full_pii=viewer.can(perm.MEMBERS_PII)
    )
    dispute = tickets.dispute(session, t)
    store_names = catalog.store_names(session, {t.store_code} if t.store_code else set())
    ctx = {
        "nav": "service",
        "t": t,
        "member": summary,
        "tier": tier_label(session, viewer, t.tier_code),
        "store": store_names.get(t.store_code or "", t.store_code or ""),
        "timeline": tickets.timeline(session, t),
        "dispute": dispute,
        "posting_labels": POSTING_LABELS,
        "adjustment_status_labels": ADJUSTMENT_STATUS_LABELS,
        "errors": errors or {},
        "can_write": viewer.can(perm.SERVICE_WRITE),
        "now": request.app.state.clock.now(),
        **labels(),
    }
    return render(request, "console/service/ticket.html", ctx, status=status)


@router.get("/service/{ticket_no}")
def ticket_page(request: Request, viewer: ServiceReader, ticket_no: TicketNo) -> HTMLResponse:
    return _ticket_page(request, viewer, ticket_no)


def _act(request: Request, viewer: Viewer, ticket_no: str, field: str, fn: Any) -> Response:
    session = get_session(request)
    try:
        with session.begin_nested():
            fn(session)
    except PatronError as exc:
        return _ticket_page(request, viewer, ticket_no, {field: _message(exc)}, 422)
    return redirect(request, f"/console/service/{ticket_no}", flash=N_("Saved."))


@router.post("/service/{ticket_no}/reply")
def reply(
    request: Request,
    viewer: ServiceWriter,
    ticket_no: TicketNo,
    body: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    now = request.app.state.clock.now()
    return _act(
        request,
        viewer,
        ticket_no,
        "reply",
        lambda s: tickets.reply(s, viewer.principal, ticket_no, body, now),
    )


@router.post("/service/{ticket_no}/assign")
def assign(
    request: Request,
    viewer: ServiceWriter,
    ticket_no: TicketNo,
    assignee: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    now = request.app.state.clock.now()
    who = assignee.strip() or None
    return _act(
        request,
        viewer,
        ticket_no,
        "assign",
        lambda s: tickets.assign(s, viewer.principal, ticket_no, who, now),
    )


@router.post("/service/{ticket_no}/resolve")
def resolve(
    request: Request,
    viewer: ServiceWriter,
    ticket_no: TicketNo,
    resolution: Annotated[str, Form(max_length=4000)] = "",
    correction_points: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    text = correction_points.strip().replace(",", "")
    if text and not text.isdigit():
        msg = MESSAGES["correction_invalid"]
        return _ticket_page(request, viewer, ticket_no, {"resolve": msg}, 422)
    points = int(text) if text else 0
    ctx = ledger_ctx(request, viewer)
    return _act(
        request,
        viewer,
        ticket_no,
        "resolve",
        lambda s: tickets.resolve(
            s, ctx, ticket_no, resolution=resolution, correction_points=points
        ),
    )
