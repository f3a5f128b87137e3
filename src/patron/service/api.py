"""Service desk API: tickets (open, answer, assign, resolve), the knowledge base, NPS."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Depends, Path, Query, status
from sqlalchemy.orm import Session

from patron import context
from patron.auth import permissions as perm
from patron.auth.principal import Principal
from patron.kit.timeutil import business_tz
from patron.members import service as members
from patron.orders.models import Order
from patron.service import kb, surveys, tickets
from patron.service.domain import ServiceSettings
from patron.service.models import Article, Ticket
from patron.service.schemas import (
    ArticleIn,
    ArticleOut,
    AssignIn,
    NpsOut,
    NpsRowOut,
    ReplyIn,
    ResolveIn,
    TicketIn,
    TicketOut,
    TicketPage,
    TimelineOut,
)
from patron.web.deps import ClockDep, SessionDep, SettingsDep, require
from patron.web.openapi import errors
from patron.web.routing import api_router

router = api_router("/api/v1/service", tags=["service"])
Reader = Annotated[Principal, Depends(require(perm.SERVICE_READ))]
Writer = Annotated[Principal, Depends(require(perm.SERVICE_WRITE))]
Configurer = Annotated[Principal, Depends(require(perm.PROGRAM_CONFIGURE))]
TicketNo = Annotated[str, Path(pattern=r"^T[0-9]{8}$")]
Slug = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
Locale = Annotated[str, Path(pattern=r"^(zh_CN|en)$")]


def ticket_out(session: Session, t: Ticket, *, with_timeline: bool = False) -> TicketOut:
    member = members.by_ids(session, [t.member_id])[t.member_id]
    order = session.get(Order, t.order_id) if t.order_id else None
    return TicketOut(
        ticket_no=t.ticket_no,
        member_no=member.member_no,
        category=t.category,
        priority=t.priority,
        status=t.status,
        channel=t.channel,
        queue=t.queue,
        tier=t.tier_code,
        store_code=t.store_code,
        subject=t.subject,
        body=t.body,
        assignee=t.assignee,
        created_at=t.created_at,
        response_due_at=t.response_due_at,
        first_response_at=t.first_response_at,
        breached_at=t.breached_at,
        resolved_at=t.resolved_at,
        resolution=t.resolution,
        order=f"{order.source}:{order.external_id}" if order else None,
        adjustment_id=t.adjustment_id,
        timeline=[
            TimelineOut(at=e.at, kind=e.kind, actor=e.actor_label, body=e.body, data=e.data)
            for e in tickets.timeline(session, t)
        ]
        if with_timeline
        else None,
    )


@router.post(
    "/tickets",
    summary="Open a ticket for a member (a missing-points dispute names its order)",
    status_code=status.HTTP_201_CREATED,
    responses=errors(404),
)
def open_ticket(
    body: TicketIn, principal: Writer, session: SessionDep, clock: ClockDep
) -> TicketOut:
    member = members.get_member(session, body.member_no)
    order = (
        tickets.member_order(session, member.id, ref=body.order)
        if body.order or body.category == "missing_points"
        else None
    )
    t = tickets.open_ticket(
        session,
        principal,
        member,
        category=body.category,
        priority=body.priority,
        subject=body.subject,
        body=body.body,
        channel="api" if principal.kind == "apikey" else "console",
        store_code=body.store_code,
        order=order,
        now=clock.now(),
    )
    return ticket_out(session, t, with_timeline=True)


@router.get("/tickets", summary="The queue: unresolved tickets, most pressing first")
def list_tickets(
    principal: Reader,
    session: SessionDep,
    queue: Annotated[Literal["standard", "vip"] | None, Query()] = None,
    status_: Annotated[
        Literal["open", "in_progress", "resolved"] | None, Query(alias="status")
    ] = None,
    breached: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> TicketPage:
    rows, total = tickets.queue(
        session,
        tickets.QueueFilter(queue=queue, status=status_, breached=breached),
        limit=limit,
        offset=offset,
    )
    return TicketPage(items=[ticket_out(session, t) for t in rows], total=total)


@router.get("/tickets/{ticket_no}", summary="A ticket with its timeline", responses=errors(404))
def get_ticket(ticket_no: TicketNo, principal: Reader, session: SessionDep) -> TicketOut:
    return ticket_out(session, tickets.get(session, ticket_no), with_timeline=True)


@router.post(
    "/tickets/{ticket_no}/replies",
    summary="Answer the member (the first answer stops the response clock)",
    responses=errors(404),
)
def reply(
    ticket_no: TicketNo, body: ReplyIn, principal: Writer, session: SessionDep, clock: ClockDep
) -> TicketOut:
    t = tickets.reply(session, principal, ticket_no, body.body, clock.now())
    return ticket_out(session, t, with_timeline=True)


@router.post("/tickets/{ticket_no}/assign", summary="Assign to a staff user (or nobody)")
def assign(
    ticket_no: TicketNo, body: AssignIn, principal: Writer, session: SessionDep, clock: ClockDep
) -> TicketOut:
    t = tickets.assign(session, principal, ticket_no, body.assignee, clock.now())
    return ticket_out(session, t, with_timeline=True)


@router.post(
    "/tickets/{ticket_no}/resolve",
    summary="Resolve; a dispute's correction goes through the adjustment approval flow",
    responses=errors(404),
)
def resolve(
    ticket_no: TicketNo,
    body: ResolveIn,
    principal: Writer,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> TicketOut:
    ctx = context.build(session, principal, clock.now(), business_tz(settings.business_timezone))
    t = tickets.resolve(
        session,
        ctx,
        ticket_no,
        resolution=body.resolution,
        correction_points=body.correction_points,
    )
    return ticket_out(session, t, with_timeline=True)


def _article_out(a: Article) -> ArticleOut:
    return ArticleOut(
        slug=a.slug,
        locale=a.locale,
        title=a.title,
        body=a.body,
        keywords=a.keywords,
        published=a.published,
        updated_at=a.updated_at,
    )


@router.get("/articles", summary="Search the knowledge base (or list it without a query)")
def articles(
    principal: Reader,
    session: SessionDep,
    q: Annotated[str, Query(max_length=200)] = "",
    locale: Annotated[Literal["zh_CN", "en"], Query()] = "zh_CN",
) -> list[ArticleOut]:
    rows = kb.search(session, q, locale, limit=20) if q else kb.list_articles(session, locale)
    return [_article_out(a) for a in rows]


@router.put("/articles/{slug}/{locale}", summary="Create or replace an article")
def put_article(
    slug: Slug,
    locale: Locale,
    body: ArticleIn,
    principal: Writer,
    session: SessionDep,
    clock: ClockDep,
) -> ArticleOut:
    a = kb.save(
        session,
        principal,
        slug=slug,
        locale=locale,
        title=body.title,
        body=body.body,
        keywords=body.keywords,
        published=body.published,
        now=clock.now(),
    )
    return _article_out(a)


@router.get("/settings", summary="Response targets, the VIP queue, NPS surveys")
def get_settings(principal: Reader, session: SessionDep) -> ServiceSettings:
    return tickets.settings(session)


@router.put("/settings", summary="Change response targets, the VIP queue, NPS surveys")
def put_settings(
    body: ServiceSettings, principal: Configurer, session: SessionDep, clock: ClockDep
) -> ServiceSettings:
    return tickets.save_settings(session, principal, body, now=clock.now())


@router.get("/nps", summary="Net Promoter Score by tier or by store")
def nps(
    principal: Reader,
    session: SessionDep,
    by: Annotated[Literal["tier", "store"], Query()] = "tier",
) -> NpsOut:
    rows = surveys.nps_report(session, by)
    return NpsOut(
        by=by,
        nps=surveys.overall(rows),
        rows=[
            NpsRowOut(
                key=r.key,
                answers=r.answers,
                promoters=r.promoters,
                passives=r.passives,
                detractors=r.detractors,
                nps=r.nps,
                satisfaction=r.satisfaction,
            )
            for r in rows
        ],
    )
