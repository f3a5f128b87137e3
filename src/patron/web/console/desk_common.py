"""What the clerk desk's pages share: the desk's store, the member card shown to the clerk, the
service context, and service errors in words for the counter."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from fastapi import Request
from sqlalchemy.orm import Session

from patron.auth import permissions as perm
from patron.catalog import service as catalog
from patron.catalog.models import Store
from patron.errors import NotFound, PatronError
from patron.kit.crypto import FieldCipher
from patron.kit.ids import format_member_no
from patron.kit.timeutil import business_tz
from patron.ledger import queries as ledger_queries
from patron.ledger.service import Ctx
from patron.members import service as members
from patron.members.models import Member
from patron.orders import service as orders
from patron.tiers import service as tiers
from patron.web.console.members import tier_name
from patron.web.context import request_ctx
from patron.web.i18n import N_
from patron.web.pages import (
    CONSOLE_PREFIX,
    Viewer,
    translate,
)

DESK = CONSOLE_PREFIX + "/desk"
STORE_COOKIE = "patron_desk_store"
SOURCE = "desk"  # orders rung up here are recorded with this source
MAX_LINES = 200
MAX_QUANTITY = 100_000
PAYMENT_METHODS = (
    ("cash", N_("Cash")),
    ("wechat", N_("WeChat Pay")),
    ("alipay", N_("Alipay")),
    ("card", N_("Bank card")),
)

# Service errors a clerk can act on, in words for the counter (translated at display).
MESSAGES = {
    "card_token_invalid": N_("This member code is not valid; ask the member to refresh it."),
    "card_token_expired": N_("This member code has expired; ask the member to refresh it."),
    "member_not_found": N_("No active member has this code."),
    "member_not_active": N_("This member's account is not active; orders cannot be recorded."),
    "points_over_balance": N_("The member does not have that many points."),
    "points_share_exceeded": N_("More points than may pay for this basket."),
    "points_step": N_("Points must be used in whole steps; try a rounder number."),
    "unknown_sku": N_("A product in the basket is no longer on sale; remove it."),
    "store_not_found": N_("The chosen store no longer exists; choose the store again."),
    "unknown_store": N_("The chosen store no longer exists; choose the store again."),
    "order_conflict": N_(
        "This basket's order number was already used for a different sale; start a new basket."
    ),
    "quote_mismatch": N_(
        "Prices or rules changed since the quote. Check the new amounts with the customer, "
        "then commit again."
    ),
    "return_exceeds_purchase": N_(
        "More items are coming back than remain on the order; check the quantities."
    ),
    "return_conflict": N_(
        "This return was already recorded with other quantities; reload the page."
    ),
}
#: Any other refusal: the service's own text is for integrators, not for the counter.
FALLBACK = N_("That did not work; nothing was changed.")
#: A form whose values the desk never sends (edited, or from an old page).
FORM_INVALID = N_("This form was changed or is out of date; reload the page and try again.")


def message(request: Request, exc: PatronError) -> str:
    return translate(request, MESSAGES.get(exc.code, FALLBACK))


# ---- shared by the desk's pages --------------------------------------------------------------


def now(request: Request) -> datetime:
    value: datetime = request.app.state.clock.now()
    return value


def cipher(request: Request) -> FieldCipher:
    value: FieldCipher = request.app.state.cipher
    return value


def make_ctx(request: Request, session: Session, viewer: Viewer) -> Ctx:
    return request_ctx(request, session, viewer.principal)


def current_store(request: Request, session: Session) -> Store | None:
    """The store chosen on this tablet (a cookie), if it still exists and is open."""
    code = request.cookies.get(STORE_COOKIE)
    if not code:
        return None
    try:
        store = catalog.get_store(session, code)
    except NotFound:
        return None
    return store if store.is_active else None


def member_view(
    request: Request, session: Session, viewer: Viewer, member: Member
) -> dict[str, Any]:
    """What the clerk sees about the member: personal data masked unless the role allows."""
    ctx = make_ctx(request, session, viewer)
    code, _benefits = orders.member_tier(session, ctx, member.id)
    tier = tier_label(session, viewer, code)
    bal = ledger_queries.balance(session, member.id, ctx.now)
    summary = members.to_summary(
        session, member, cipher(request), full_pii=viewer.can(perm.MEMBERS_PII)
    )
    return {
        "member_no": member.member_no,
        "card_number": format_member_no(member.member_no),
        "name": member.name,
        "phone": summary.phone,
        "status": member.status,
        "tier": tier,
        "available": bal.available,
        "pending": bal.pending,
        "debt": bal.debt,
    }


def tier_label(session: Session, viewer: Viewer, code: str) -> str:
    """A tier's name in the viewer's language; a code no longer on the ladder as it is."""
    for t in tiers.get_ladder(session).tiers:
        if t.code == code:
            return tier_name(t, viewer.locale)
    return code


def new_order_no(store_code: str | None, at: datetime, request: Request) -> str:
    """Readable and unique enough for a receipt: store, business day, random part."""
    tz = business_tz(request.app.state.settings.business_timezone)
    day = at.astimezone(tz).strftime("%Y%m%d")
    return f"{store_code or 'DESK'}-{day}-{secrets.token_hex(4).upper()}"


def store_choices(session: Session) -> list[Store]:
    return [s for s in catalog.list_stores(session) if s.is_active]


def page_context(
    request: Request, session: Session, viewer: Viewer, member: Member | None, **more: Any
) -> dict[str, Any]:
    """The desk page's context: store, lookup and (when chosen) the member."""
    return {
        "nav": "desk",
        "store": current_store(request, session),
        "stores": store_choices(session),
        "q": "",
        "errors": {},
        "matches": [],
        "member": member_view(request, session, viewer, member) if member else None,
        "payment_methods": PAYMENT_METHODS,
        **more,
    }
