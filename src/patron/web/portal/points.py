"""Portal: points balance, expiry schedule and the history in plain language, with paging;
one order's detail (only the member's own)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from patron.catalog import service as catalog
from patron.ledger import queries as ledger_queries
from patron.ledger.models import PointsPosting
from patron.orders import service as orders
from patron.orders.models import Order
from patron.web.i18n import N_
from patron.web.pages import PORTAL_PREFIX, MemberPage, Viewer, page_router, render
from patron.web.portal import common, summary

router = page_router(PORTAL_PREFIX)
PAGE_SIZE = 20


@dataclass(frozen=True, slots=True)
class Entry:
    at: datetime
    points: int
    #: English message id with ``%(store)s`` where a store applies (translated in the template)
    text: str
    store: str
    order_id: int | None
    pending: bool


def _describe(p: PointsPosting, order: Order | None) -> str:
    online = order is not None and not order.store_code
    if p.kind == "earn":
        if p.source_type == "order":
            return N_("Earned online") if online else N_("Earned at %(store)s")
        if p.source_type == "checkin":
            return N_("Daily check-in")
        if p.source_type == "profile":
            return N_("Bonus for completing your profile")
        if p.source_type == "order_return":
            # the points that paid for goods brought back, given back as a new lot
            return (
                N_("Points payment returned (online order)")
                if online
                else N_("Points payment returned at %(store)s")
            )
        return N_("Earned")
    if p.kind == "redeem":
        return N_("Redeemed online") if online else N_("Redeemed at %(store)s")
    texts = {
        "release": N_("Pending points became available"),
        "expire": N_("Expired"),
        "repay": N_("Owed points settled"),
        "reversal": N_("Redemption cancelled, points returned"),
        "clawback": N_("Taken back for a return"),
        "adjust": N_("Adjusted by customer service"),
    }
    return texts.get(p.kind, N_("Points change"))


def _entries(session: Session, member_id: int, rows: list[PointsPosting]) -> list[Entry]:
    sources = [
        p.source_id for p in rows if p.source_type in ("order", "order_return") and p.source_id
    ]
    by_source = orders.order_places(session, member_id, sources)
    names = catalog.store_names(session, {o.store_code for o in by_source.values() if o.store_code})
    out = []
    for p in rows:
        order = by_source.get(p.source_id or "")
        store = ""
        if order is not None and order.store_code:
            store = names.get(order.store_code, order.store_code)
        out.append(
            Entry(
                at=p.created_at,
                points=p.available_delta + p.pending_delta
                if p.kind != "release"
                else p.available_delta,
                text=_describe(p, order),
                store=store,
                order_id=order.id if order is not None else None,
                pending=p.pending_delta > 0,
            )
        )
    return out


@router.get("/points")
def points(
    request: Request,
    viewer: Annotated[Viewer, Depends(MemberPage())],
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    member = common.member(request, viewer)
    ctx = common.ctx(request, member)
    session = common.session(request)
    rows, total = ledger_queries.history(
        session, member.id, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
    )
    pages = max(1, -(-total // PAGE_SIZE))
    return render(
        request,
        "portal/points.html",
        {
            "tab": "points",
            "points": summary.points_view(session, ctx, member.id),
            "entries": _entries(session, member.id, rows),
            "page": page,
            "pages": pages,
            "total": total,
        },
    )


@router.get("/orders/{order_id}")
def order_detail(
    request: Request,
    viewer: Annotated[Viewer, Depends(MemberPage())],
    order_id: Annotated[int, Path(ge=1, le=2**62)],
) -> HTMLResponse:
    member = common.member(request, viewer)
    session = common.session(request)
    order = orders.member_order(session, member.id, order_id)
    names = catalog.store_names(session, {order.store_code} if order.store_code else set())
    return render(
        request,
        "portal/order.html",
        {"tab": "points", "order": order, "store": names.get(order.store_code or "", "")},
    )
