"""Portal: help and service — answers from the knowledge base while the member types a
subject, opening a ticket (a missing-points dispute picks one of the member's orders), the
member's tickets with their answers, a rating after a ticket is resolved, and the answer to a
scheduled NPS survey (``/portal/survey``, the link its message carries)."""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from patron.errors import NotFound, PatronError
from patron.members.models import Member
from patron.service import kb, surveys, tickets
from patron.service.models import Ticket
from patron.web.i18n import N_
from patron.web.pages import PORTAL_PREFIX, MemberPage, Viewer, page_router, redirect, render
from patron.web.portal import common
from patron.web.service_labels import CATEGORY_LABELS, STATUS_LABELS

router = page_router(PORTAL_PREFIX)
Signed = Annotated[Viewer, Depends(MemberPage())]
TicketNo = Annotated[str, Path(pattern=r"^T[0-9]{8}$")]
Slug = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]

MESSAGES: Final = {
    "dispute_order_required": N_("Choose the order whose points are missing."),
    "dispute_order_not_found": N_("Choose one of your orders."),
    "ticket_subject_required": N_("Write a subject."),
    "ticket_description_required": N_("Tell us what happened."),
    "ticket_reply_required": N_("Write your message."),
    "ticket_resolved": N_("This request is resolved. Open a new one if you need more help."),
    "ticket_category_invalid": N_("Choose what your request is about."),
    "survey_answered": N_("You already rated this request. Thank you!"),
    "survey_not_open": N_("This request is not waiting for your rating."),
    "survey_score_invalid": N_("Choose a score."),
}
SURVEY_MESSAGES: Final = {
    "survey_not_open": N_("No survey is waiting for your answer. Thank you!"),
    "survey_score_invalid": N_("Choose a score."),
}
#: what a member sees of the timeline (assignment and breach are the desk's business)
MEMBER_EVENTS: Final = {
    "opened": N_("You wrote"),
    "member_reply": N_("You wrote"),
    "reply": N_("Our answer"),
    "resolved": N_("Resolved"),
}


def _locale(viewer: Viewer) -> str:
    return viewer.locale if viewer.locale in kb.LOCALES else "en"


def _own(request: Request, member: Member, ticket_no: str) -> Ticket:
    t = tickets.get(common.session(request), ticket_no)
    if t.member_id != member.id:  # another member's ticket does not exist for this one
        raise NotFound("ticket_not_found", f"No ticket {ticket_no}.")
    return t


def _page(
    request: Request,
    viewer: Viewer,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    member = common.member(request, viewer)
    session = common.session(request)
    values = values or {}
    ctx = {
        "tab": "me",
        "member": member,
        "mine": tickets.of_member(session, member.id),
        "to_rate": {t.id for t in surveys.pending_for(session, member.id)},
        "orders": tickets.recent_orders(session, member.id),
        "suggestions": kb.search(session, values.get("subject", ""), _locale(viewer)),
        "values": values,
        "errors": errors or {},
        "category_labels": CATEGORY_LABELS,
        "status_labels": STATUS_LABELS,
    }
    return render(request, "portal/help.html", ctx, status=status)


@router.get("/help")
def help_page(request: Request, viewer: Signed) -> HTMLResponse:
    return _page(request, viewer)


@router.get("/help/suggest")
def suggest(
    request: Request, viewer: Signed, subject: Annotated[str, Query(max_length=200)] = ""
) -> HTMLResponse:
    """htmx: the articles that match what the member has typed so far."""
    found = kb.search(common.session(request), subject, _locale(viewer))
    return render(request, "portal/_help_suggest.html", {"suggestions": found, "q": subject})


@router.get("/help/articles/{slug}")
def article(request: Request, viewer: Signed, slug: Slug) -> HTMLResponse:
    a = kb.get(common.session(request), slug, _locale(viewer))
    if not a.published:
        raise NotFound("article_not_found", f"No article {slug}.")
    return render(request, "portal/help_article.html", {"tab": "me", "a": a})


@router.post("/help/tickets")
def open_ticket(
    request: Request,
    viewer: Signed,
    category: Annotated[str, Form(max_length=24)] = "",
    subject: Annotated[str, Form(max_length=200)] = "",
    body: Annotated[str, Form(max_length=4000)] = "",
    order_id: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    member = common.member(request, viewer)
    session = common.session(request)
    values = {"category": category, "subject": subject, "body": body, "order_id": order_id}
    field = "category"
    try:
        with session.begin_nested():
            order = None
            if category == "missing_points":
                field = "order_id"
                oid = int(order_id) if order_id.isdigit() else None
                if oid is None:
                    raise NotFound("dispute_order_required", "Choose the order.")
                order = tickets.member_order(session, member.id, order_id=oid)
            field = "form"
            t = tickets.open_ticket(
                session,
                common.actor(member),
                member,
                category=category,
                subject=subject,
                body=body,
                channel="portal",
                order=order,
                now=common.now(request),
            )
    except PatronError as exc:
        msg = MESSAGES.get(exc.code, exc.message)
        return _page(request, viewer, values, {field: msg}, 422)
    return redirect(
        request,
        f"{PORTAL_PREFIX}/help/{t.ticket_no}",
        flash=N_("Your request is sent. We will answer here."),
    )


def _ticket(
    request: Request,
    viewer: Viewer,
    ticket_no: str,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    member = common.member(request, viewer)
    session = common.session(request)
    t = _own(request, member, ticket_no)
    ctx = {
        "tab": "me",
        "t": t,
        "timeline": [e for e in tickets.timeline(session, t) if e.kind in MEMBER_EVENTS],
        "event_labels": MEMBER_EVENTS,
        "to_rate": t.id in {x.id for x in surveys.pending_for(session, member.id)},
        "category_labels": CATEGORY_LABELS,
        "status_labels": STATUS_LABELS,
        "errors": errors or {},
    }
    return render(request, "portal/help_ticket.html", ctx, status=status)


@router.get("/help/{ticket_no}")
def ticket_page(request: Request, viewer: Signed, ticket_no: TicketNo) -> HTMLResponse:
    return _ticket(request, viewer, ticket_no)


@router.post("/help/{ticket_no}/reply")
def reply(
    request: Request,
    viewer: Signed,
    ticket_no: TicketNo,
    body: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    member = common.member(request, viewer)
    session = common.session(request)
    _own(request, member, ticket_no)
    try:
        with session.begin_nested():
            tickets.reply(session, common.actor(member), ticket_no, body, common.now(request))
    except PatronError as exc:
        return _ticket(
            request, viewer, ticket_no, {"reply": MESSAGES.get(exc.code, exc.message)}, 422
        )
    return redirect(request, f"{PORTAL_PREFIX}/help/{ticket_no}", flash=N_("Message sent."))


@router.post("/help/{ticket_no}/survey")
def rate(
    request: Request,
    viewer: Signed,
    ticket_no: TicketNo,
    nps: Annotated[str, Form(max_length=2)] = "",
    satisfaction: Annotated[str, Form(max_length=1)] = "",
    comment: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    member = common.member(request, viewer)
    session = common.session(request)
    t = _own(request, member, ticket_no)
    if not nps.isdigit():
        return _ticket(
            request, viewer, ticket_no, {"survey": MESSAGES["survey_score_invalid"]}, 422
        )
    try:
        with session.begin_nested():
            surveys.answer(
                session,
                common.actor(member),
                member,
                nps=int(nps),
                satisfaction=int(satisfaction) if satisfaction.isdigit() else None,
                comment=comment,
                ticket=t,
                now=common.now(request),
            )
    except PatronError as exc:
        msg = MESSAGES.get(exc.code, exc.message)
        return _ticket(request, viewer, ticket_no, {"survey": msg}, 422)
    return redirect(
        request, f"{PORTAL_PREFIX}/help/{ticket_no}", flash=N_("Thank you for your rating.")
    )


def _survey(request: Request, viewer: Viewer, errors: dict[str, str], status: int) -> HTMLResponse:
    member = common.member(request, viewer)
    session = common.session(request)
    ctx = {
        "tab": "me",
        "open": surveys.invited(session, member.id, common.now(request)),
        "errors": errors,
    }
    return render(request, "portal/survey.html", ctx, status=status)


@router.get("/survey")
def survey_page(request: Request, viewer: Signed) -> HTMLResponse:
    return _survey(request, viewer, {}, 200)


@router.post("/survey")
def answer_survey(
    request: Request,
    viewer: Signed,
    nps: Annotated[str, Form(max_length=2)] = "",
    comment: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    member = common.member(request, viewer)
    session = common.session(request)
    if not nps.isdigit():
        return _survey(request, viewer, {"survey": MESSAGES["survey_score_invalid"]}, 422)
    try:
        with session.begin_nested():
            surveys.answer(
                session,
                common.actor(member),
                member,
                nps=int(nps),
                satisfaction=None,
                comment=comment,
                now=common.now(request),
            )
    except PatronError as exc:
        msg = SURVEY_MESSAGES.get(exc.code, exc.message)
        return _survey(request, viewer, {"survey": msg}, 422)
    return redirect(request, f"{PORTAL_PREFIX}/survey", flash=N_("Thank you for your rating."))
