"""Which orders and members a dashboard (or an order list) covers: every store, one store, one
region, one channel — and, for a clerk, only the store they work in.

The rule is enforced here, not in the page: ``resolve`` takes the principal, and a clerk's scope
is their own store whatever the request asks for (a filter may narrow it by channel, never widen
it). A clerk without a store sees nothing until an administrator sets one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import false, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from patron.auth.models import StaffUser
from patron.auth.principal import Principal
from patron.catalog.models import Store
from patron.errors import Invalid
from patron.members.models import Member
from patron.orders.models import Order

#: Order channels (``orders.schemas.OrderChannel``) a dashboard may be filtered by.
CHANNELS: Final = ("store", "online", "mini_program", "app")
#: Registration channels of members that count for an order channel.
MEMBER_CHANNELS: Final[dict[str, tuple[str, ...]]] = {
    "store": ("store", "kiosk"),
    "online": ("web", "partner"),
    "mini_program": ("mini_program",),
    "app": ("app",),
}
#: Roles bound to their own store.
STORE_BOUND_ROLES: Final = frozenset({"clerk"})


@dataclass(frozen=True)
class Scope:
    store: str | None = None
    region: str | None = None
    channel: str | None = None
    #: the store codes covered; None means every store (and orders without a store)
    stores: tuple[str, ...] | None = None
    #: the scope is the viewer's own store, not a choice they made
    locked: bool = False

    @property
    def everything(self) -> bool:
        return self.stores is None and self.channel is None

    def orders(self, order: Any = Order) -> list[ColumnElement[bool]]:
        """Conditions on orders (``order`` may be an alias of the table)."""
        out: list[ColumnElement[bool]] = []
        if self.stores is not None:
            out.append(order.store_code.in_(self.stores) if self.stores else false())
        if self.channel is not None:
            out.append(order.channel == self.channel)
        return out

    def members(self) -> list[ColumnElement[bool]]:
        """Conditions on members: where they registered."""
        out: list[ColumnElement[bool]] = []
        if self.stores is not None:
            out.append(Member.registration_store_code.in_(self.stores) if self.stores else false())
        if self.channel is not None:
            out.append(Member.registration_channel.in_(MEMBER_CHANNELS[self.channel]))
        return out


EVERYTHING: Final = Scope()


def bound_store(session: Session, principal: Principal) -> tuple[bool, str | None]:
    """(bound, store code): whether the principal only sees one store, and which."""
    if principal.kind != "staff" or principal.role not in STORE_BOUND_ROLES:
        return False, None
    if principal.id is None:
        return True, None
    return True, session.scalar(select(StaffUser.store_code).where(StaffUser.id == principal.id))


def resolve(
    session: Session,
    principal: Principal,
    *,
    store: str | None = None,
    region: str | None = None,
    channel: str | None = None,
) -> Scope:
    """The scope a principal asked for, narrowed to their store when they are bound to one."""
    store, region, channel = store or None, region or None, channel or None
    if channel is not None and channel not in CHANNELS:
        raise Invalid("unknown_channel", "Choose a sales channel from the list.")
    bound, own = bound_store(session, principal)
    if bound:
        return Scope(store=own, channel=channel, stores=(own,) if own else (), locked=True)
    if store is not None:
        found = session.scalar(select(Store.region).where(Store.code == store))
        if found is None:
            raise Invalid("unknown_store", f"There is no store with the code {store}.")
        if region is not None and found != region:
            # A store outside the chosen region: nothing matches both.
            return Scope(store=store, region=region, channel=channel, stores=())
        return Scope(store=store, region=region, channel=channel, stores=(store,))
    if region is not None:
        codes = tuple(session.scalars(select(Store.code).where(Store.region == region)))
        if not codes:
            raise Invalid("unknown_region", f"There is no store in the region {region}.")
        return Scope(region=region, channel=channel, stores=codes)
    return Scope(channel=channel)


def regions(session: Session) -> list[str]:
    return list(session.scalars(select(Store.region).distinct().order_by(Store.region)))
