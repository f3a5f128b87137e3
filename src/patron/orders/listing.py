"""The order list of the console: every order, filtered, sorted and paged — within what the
viewer may see (a clerk: their store's orders only, decided here from the principal)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patron.analytics import scope as scoping
from patron.auth.principal import Principal
from patron.kit import keyset
from patron.members.models import Member
from patron.orders.models import Order

#: column name → what it sorts by; each sort ends on the id so pages never overlap
SORTS: Final[dict[str, Any]] = {
    "date": Order.ordered_at,
    "total": Order.total_fen,
    "paid": Order.paid_fen,
    "points": Order.points_earned,
    "store": Order.store_code,
}
STATUSES: Final = ("completed", "partially_returned", "returned")


@dataclass(frozen=True)
class OrderFilters:
    q: str | None = None
    start: date | None = None
    end: date | None = None
    store: str | None = None
    region: str | None = None
    channel: str | None = None
    status: str | None = None
    sort: str = "date"
    descending: bool = True


@dataclass(frozen=True)
class OrderRow:
    order: Order
    member_no: str


@dataclass(frozen=True)
class OrderPage:
    rows: list[OrderRow]
    total: int
    scope: scoping.Scope


def search(
    session: Session,
    principal: Principal,
    filters: OrderFilters,
    *,
    limit: int,
    offset: int = 0,
    count: bool = True,
    after: keyset.Seek | None = None,
) -> OrderPage:
    """Orders matching ``filters`` newest first (or as sorted) within the principal's scope.
    Raises ``Invalid`` for a store, region or channel that does not exist. ``after`` seeks
    instead of an offset (``walk_of``), for walks through the whole list such as an export."""
    scope = scoping.resolve(
        session, principal, store=filters.store, region=filters.region, channel=filters.channel
    )
    where: list[Any] = scope.orders()
    if filters.q:
        q = filters.q.strip()
        member_ids = select(Member.id).where(Member.member_no == q.replace(" ", ""))
        where.append((Order.external_id == q) | Order.member_id.in_(member_ids))
    if filters.start is not None:
        where.append(Order.business_date >= filters.start)
    if filters.end is not None:
        where.append(Order.business_date <= filters.end)
    if filters.status is not None:
        where.append(Order.status == filters.status)
    walk = walk_of(filters)
    order_by = walk.order_by()
    if after is not None:
        where.append(walk.where(after))
    total = (
        int(session.scalar(select(func.count()).select_from(Order).where(*where)) or 0)
        if count
        else 0
    )
    rows = session.execute(
        select(Order, Member.member_no)
        .join(Member, Member.id == Order.member_id)
        .where(*where)
        .order_by(*order_by)
        .limit(limit)
        .offset(offset or None)
    ).all()
    return OrderPage([OrderRow(o, no) for o, no in rows], total, scope)


def walk_of(filters: OrderFilters) -> keyset.Keyset:
    """The order of ``search`` for ``filters``, for a walk by seeking (kit.keyset)."""
    return keyset.Keyset(SORTS.get(filters.sort, Order.ordered_at), Order.id, filters.descending)
