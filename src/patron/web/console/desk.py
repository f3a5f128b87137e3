"""Console: the clerk desk — find or scan a member, ring up a basket, take points, commit.

Made for a tablet and a handheld scanner: a scanner types a code and presses Enter into the
focused field, so every step is one text field whose Enter does the obvious thing. The basket
lives in the page (hidden inputs) with an order number the page generated; committing twice
with the same number records one order. Quote and commit go through orders/checkout.py exactly
as the REST API does.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote as urlquote

from fastapi import Depends, Form, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.responses import Response

from patron.auth import permissions as perm
from patron.catalog import service as catalog
from patron.catalog.models import Store
from patron.errors import Conflict, NotFound, PatronError
from patron.kit.crypto import FieldCipher
from patron.kit.ids import format_member_no
from patron.kit.timeutil import business_tz
from patron.ledger import queries as ledger_queries
from patron.ledger.service import Ctx
from patron.members import card
from patron.members import service as members
from patron.members.models import Member
from patron.orders import checkout
from patron.orders import service as orders
from patron.orders.schemas import BasketLineIn, CommitIn, QuoteIn
from patron.web.i18n import N_
from patron.web.pages import (
    CONSOLE_PREFIX,
    StaffPage,
    Viewer,
    get_session,
    page_router,
    redirect,
    render,
    translate,
)

router = page_router(CONSOLE_PREFIX)
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
Reader = Annotated[Viewer, Depends(StaffPage(perm.MEMBERS_READ))]
Clerk = Annotated[Viewer, Depends(StaffPage(perm.ORDERS_WRITE))]

# Service errors a clerk can act on, in words for the counter (translated at display).
MESSAGES = {
    "card_token_invalid": N_("This member code is not valid; ask the member to refresh it."),
    "card_token_expired": N_("This member code has expired; ask the member to refresh it."),
    "member_not_found": N_("No active member has this code."),
    "member_not_active": N_("This member's account is not active; orders cannot be recorded."),
    "insufficient_points": N_("The member does not have that many points."),
    "points_over_cap": N_("More points than may pay for this basket."),
    "points_step": N_("Points must be used in whole steps; try a rounder number."),
    "unknown_sku": N_("A product in the basket is no longer on sale; remove it."),
    "store_not_found": N_("The chosen store no longer exists; choose the store again."),
    "order_conflict": N_(
        "This basket's order number was already used for a different sale; start a new basket."
    ),
    "quote_mismatch": N_(
        "Prices or rules changed since the quote. Check the new amounts with the customer, "
        "then commit again."
    ),
}


def message(request: Request, exc: PatronError) -> str:
    known = MESSAGES.get(exc.code)
    return translate(request, known) if known else exc.message


# ---- shared by the desk's pages --------------------------------------------------------------


def now(request: Request) -> datetime:
    value: datetime = request.app.state.clock.now()
    return value


def cipher(request: Request) -> FieldCipher:
    value: FieldCipher = request.app.state.cipher
    return value


def make_ctx(request: Request, session: Session, viewer: Viewer) -> Ctx:
    tz = business_tz(request.app.state.settings.business_timezone)
    return orders.make_ctx(session, viewer.principal, now(request), tz)


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
    tier, _benefits = orders.member_tier(session, ctx, member.id)
    bal = ledger_queries.balance(session, member.id, ctx.now)
    summary = members.to_summary(member, cipher(request), full_pii=viewer.can(perm.MEMBERS_PII))
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


def new_order_no(store_code: str | None, at: datetime, request: Request) -> str:
    """Readable and unique enough for a receipt: store, business day, random part."""
    tz = business_tz(request.app.state.settings.business_timezone)
    day = at.astimezone(tz).strftime("%Y%m%d")
    return f"{store_code or 'DESK'}-{day}-{secrets.token_hex(4).upper()}"


def _store_choices(session: Session) -> list[Store]:
    return [s for s in catalog.list_stores(session) if s.is_active]


# ---- the desk: store, lookup, member -------------------------------------------------------


def _find(request: Request, session: Session, q: str) -> tuple[list[Member], str | None]:
    """Members matching what the clerk typed or scanned, or why there are none."""
    text = q.strip()
    if not text:
        return [], translate(request, N_("Enter a phone number or member number, or scan a code."))
    if card.looks_like_token(text):
        key: bytes = request.app.state.keys["token_key"]
        try:
            return [card.resolve(session, text, key, now(request))], None
        except PatronError as exc:
            return [], message(request, exc)
    rows, _total = members.search(session, cipher(request), q=text, limit=10)
    if not rows:
        return [], translate(request, N_("No member has this phone number or member number."))
    return rows, None


@router.get("/desk")
def desk(
    request: Request,
    viewer: Reader,
    q: Annotated[str | None, Query(max_length=200)] = None,
    member: Annotated[str | None, Query(pattern=r"^[0-9]{10}$")] = None,
) -> Response:
    session = get_session(request)
    ctx: dict[str, Any] = {
        "nav": "desk",
        "store": current_store(request, session),
        "stores": _store_choices(session),
        "q": q or "",
        "errors": {},
        "matches": [],
        "member": None,
    }
    if q is not None:
        found, error = _find(request, session, q)
        if len(found) == 1 and found[0].status == "active":
            return redirect(request, f"{DESK}?member={found[0].member_no}")
        if error:
            ctx["errors"] = {"q": error}
            return render(request, "console/desk/index.html", ctx, status=422)
        ctx["matches"] = [member_view(request, session, viewer, m) for m in found]
        return render(request, "console/desk/index.html", ctx)
    if member is not None:
        m = members.get_member(session, member)
        ctx["member"] = member_view(request, session, viewer, m)
        if viewer.can(perm.ORDERS_WRITE) and m.status == "active":
            ctx["basket"] = Basket(
                order_no=new_order_no(_code(ctx["store"]), now(request), request)
            )
            ctx["payment_methods"] = PAYMENT_METHODS
    return render(request, "console/desk/index.html", ctx)


def _code(store: Store | None) -> str | None:
    return store.code if store else None


@router.post("/desk/store")
def choose_store(
    request: Request,
    viewer: Reader,
    store_code: Annotated[str, Form(max_length=32)] = "",
    back: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    session = get_session(request)
    codes = {s.code for s in _store_choices(session)}
    if store_code not in codes:
        ctx = {
            "nav": "desk",
            "store": None,
            "stores": _store_choices(session),
            "q": "",
            "matches": [],
            "member": None,
            "errors": {"store_code": translate(request, N_("Choose one of the stores."))},
        }
        return render(request, "console/desk/index.html", ctx, status=422)
    target = back if back.startswith(DESK) and not back.startswith("//") else DESK
    response = redirect(request, target)
    # Remembered on this tablet for a working year; the store is chosen once.
    response.set_cookie(
        STORE_COOKIE, store_code, max_age=365 * 86400, httponly=True, samesite="lax", path=DESK
    )
    return response


# ---- the basket ------------------------------------------------------------------------------


@dataclass
class Line:
    sku: str
    quantity: int
    text: str = ""  # the quantity as typed, shown back when it is not a number
    name: str = ""
    error: str | None = None


@dataclass
class Basket:
    order_no: str
    lines: list[Line] = field(default_factory=list)
    points_text: str = ""
    payment_method: str = "cash"
    errors: dict[str, str] = field(default_factory=dict)
    notice: str | None = None
    results: list[Any] = field(default_factory=list)  # product search results to add
    quote: dict[str, Any] | None = None
    signature: str = ""
    points_share_bp: int = 0  # the most of the total that points may pay, in basis points

    def sign(self, points: int) -> str:
        """What the quote shown was for; a commit of anything else is quoted again first."""
        return ",".join(f"{ln.sku}*{ln.quantity}" for ln in self.lines) + f"|{points}"


def _parse_lines(request: Request, skus: list[str], qtys: list[str]) -> list[Line]:
    lines: list[Line] = []
    for i, sku in enumerate(skus[:MAX_LINES]):
        text = (qtys[i] if i < len(qtys) else "1").strip()
        try:
            qty = int(text)
        except ValueError:
            qty = 0
        line = Line(sku=sku.strip(), quantity=qty, text=text)
        if not 1 <= qty <= MAX_QUANTITY:
            line.error = translate(request, N_("Enter a quantity from 1 to 100000."))
        lines.append(line)
    return lines


def _add(basket: Basket, sku: str) -> None:
    for line in basket.lines:
        if line.sku == sku:
            line.quantity = max(line.quantity, 0) + 1
            line.text = str(line.quantity)
            line.error = None
            return
    basket.lines.append(Line(sku=sku, quantity=1, text="1"))


def _apply(request: Request, session: Session, basket: Basket, action: str, add: str) -> None:
    """Change the basket as the clerk asked: add a SKU or search, + / − / remove a line."""
    verb, _sep, arg = action.partition(":")
    if verb in ("inc", "dec", "remove") and arg.isdigit() and int(arg) < len(basket.lines):
        line = basket.lines[int(arg)]
        if verb == "remove":
            basket.lines.remove(line)
        elif line.error is None:
            line.quantity = min(max(line.quantity + (1 if verb == "inc" else -1), 1), MAX_QUANTITY)
            line.text = str(line.quantity)
        return
    if verb == "pick" and arg:  # a product chosen from the search results
        add = arg
    elif verb != "add":
        return
    text = add.strip()
    if not text:
        return
    products = catalog.products_by_sku(session, [text, text.upper()])
    product = products.get(text) or products.get(text.upper())
    if product is not None and product.is_active:
        if len(basket.lines) >= MAX_LINES:
            basket.errors["add"] = translate(request, N_("The basket is full."))
        else:
            _add(basket, product.sku)
        return
    rows, _total = catalog.list_products(session, q=text, limit=8)
    basket.results = [p for p in rows if p.is_active]
    if not basket.results:
        basket.errors["add"] = translate(request, N_("No product on sale matches this.")) + (
            f" ({text})"
        )


def _quote_view(priced: checkout.Priced, names: dict[str, str]) -> dict[str, Any]:
    q = priced.quote
    return {
        "tier": q.tier_code,
        "birthday_month": q.birthday_month,
        "list_total_fen": q.list_total_fen,
        "member_price_saving_fen": q.member_price_saving_fen,
        "tier_discount_fen": q.tier_discount_fen,
        "birthday_discount_fen": q.birthday_discount_fen,
        "total_fen": q.total_fen,
        "balance": priced.balance,
        "max_points": q.max_points,
        "points_used": q.points_used,
        "points_fen": q.points_fen,
        "paid_fen": q.paid_fen,
        "points_earned": priced.earning.points,
        "growth_earned": priced.earning.growth,
        "lines": [
            {
                "sku": ql.sku,
                "name": names.get(ql.sku, ql.sku),
                "quantity": ql.quantity,
                "list_unit_fen": ql.list_unit_fen,
                "unit_price_fen": ql.unit_price_fen,
                "member_price": ql.member_price_applied,
                "net_fen": ql.net_fen,
            }
            for ql in q.lines
        ],
    }


def _quote(
    request: Request,
    session: Session,
    viewer: Viewer,
    member_no: str,
    basket: Basket,
    store: Store | None,
) -> int | None:
    """Quote the basket (and the points the clerk typed); returns the points to use, or None
    when something needs fixing first (the error is in ``basket.errors``)."""
    names = {
        p.sku: p.name
        for p in catalog.products_by_sku(session, [ln.sku for ln in basket.lines]).values()
    }
    for line in basket.lines:
        line.name = names.get(line.sku, line.sku)
    if not basket.lines or any(ln.error for ln in basket.lines):
        return None
    ctx = make_ctx(request, session, viewer)
    data = QuoteIn(
        member_no=member_no,
        channel="store",
        store_code=_code(store),
        lines=[BasketLineIn(sku=ln.sku, quantity=ln.quantity) for ln in basket.lines],
    )
    try:
        plain = checkout.quote(session, ctx, data)
    except PatronError as exc:
        basket.errors["form"] = message(request, exc)
        return None
    basket.quote = _quote_view(plain, names)
    basket.points_share_bp = orders.pricing_settings(session).max_points_share_bp
    text = basket.points_text.strip()
    if not text:
        return 0
    usable = plain.quote.max_points
    if not text.isdigit() or int(text) > usable:
        basket.errors["points"] = translate(
            request, N_("Enter a whole number of points from 0 to {usable}.")
        ).format(usable=f"{usable:,}")
        return None
    points = int(text)
    if points == 0:
        return 0
    try:
        priced = checkout.quote(session, ctx, data.model_copy(update={"points_to_use": points}))
    except PatronError as exc:
        basket.errors["points"] = message(request, exc)
        return None
    basket.quote = _quote_view(priced, names)
    return points


@router.post("/desk/basket")
def basket_action(
    request: Request,
    viewer: Clerk,
    member_no: Annotated[str, Form(pattern=r"^[0-9]{10}$")],
    order_no: Annotated[str, Form(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")],
    sku: Annotated[list[str], Form(max_length=MAX_LINES)] = [],  # noqa: B006 - FastAPI form
    qty: Annotated[list[str], Form(max_length=MAX_LINES)] = [],  # noqa: B006 - FastAPI form
    add: Annotated[str, Form(max_length=200)] = "",
    points: Annotated[str, Form(max_length=20)] = "",
    payment_method: Annotated[str, Form(max_length=16)] = "cash",
    action: Annotated[str, Form(max_length=100)] = "add",
    quoted: Annotated[str, Form(max_length=20_000)] = "",
    expected_total_fen: Annotated[int, Form(ge=0)] = 0,
    expected_points_earned: Annotated[int, Form(ge=0)] = 0,
) -> Response:
    session = get_session(request)
    member = members.get_member(session, member_no)
    store = current_store(request, session)
    basket = Basket(
        order_no=order_no,
        lines=_parse_lines(request, sku, qty),
        points_text=points,
        payment_method=payment_method if payment_method in dict(PAYMENT_METHODS) else "cash",
    )
    _apply(request, session, basket, action, add)
    use = _quote(request, session, viewer, member_no, basket, store)
    status = 422 if basket.errors or any(ln.error for ln in basket.lines) else 200
    if use is not None:
        basket.signature = basket.sign(use)
    if action == "commit" and status == 200:
        if store is None:
            basket.errors["form"] = translate(request, N_("Choose the store first."))
            status = 422
        elif use is None or basket.quote is None:
            basket.errors["form"] = translate(request, N_("Add products to the basket first."))
            status = 422
        elif quoted != basket.signature:
            # The basket or the points changed after the customer saw the amounts.
            basket.notice = translate(
                request, N_("The basket changed. Check the new amounts, then commit again.")
            )
            status = 409
        else:
            return _commit(
                request,
                viewer,
                member,
                store,
                basket,
                use,
                expected_total_fen,
                expected_points_earned,
            )
    ctx = {
        "nav": "desk",
        "store": store,
        "stores": _store_choices(session),
        "q": "",
        "errors": {},
        "matches": [],
        "member": member_view(request, session, viewer, member),
        "basket": basket,
        "payment_methods": PAYMENT_METHODS,
    }
    return render(request, "console/desk/index.html", ctx, status=status)


def _commit(
    request: Request,
    viewer: Viewer,
    member: Member,
    store: Store,
    basket: Basket,
    points: int,
    expected_total_fen: int,
    expected_points_earned: int,
) -> Response:
    session = get_session(request)
    try:
        data = CommitIn(
            member_no=member.member_no,
            channel="store",
            store_code=store.code,
            lines=[BasketLineIn(sku=ln.sku, quantity=ln.quantity) for ln in basket.lines],
            points_to_use=points,
            source=SOURCE,
            external_id=basket.order_no,
            expected_total_fen=expected_total_fen,
            expected_points_earned=expected_points_earned,
            payment_method=basket.payment_method,
        )
        order, _replayed = checkout.commit(session, make_ctx(request, session, viewer), data)
    except (PatronError, ValidationError) as exc:
        if isinstance(exc, Conflict) and exc.code == "quote_mismatch":
            basket.notice = message(request, exc)
            status = 409
        else:
            text = message(request, exc) if isinstance(exc, PatronError) else str(exc)
            basket.errors["form"] = text
            status = exc.status if isinstance(exc, PatronError) else 422
        ctx = {
            "nav": "desk",
            "store": store,
            "stores": _store_choices(session),
            "q": "",
            "errors": {},
            "matches": [],
            "member": member_view(request, session, viewer, member),
            "basket": basket,
            "payment_methods": PAYMENT_METHODS,
        }
        return render(request, "console/desk/index.html", ctx, status=status)
    # A second tap of "commit" replays the same order and lands on the same receipt.
    return redirect(request, f"{DESK}/receipt/{urlquote(order.external_id)}")


@router.get("/desk/receipt/{order_no}")
def receipt(request: Request, viewer: Clerk, order_no: str) -> HTMLResponse:
    session = get_session(request)
    order = orders.get_order(session, SOURCE, order_no)
    member = session.get(Member, order.member_id)
    assert member is not None
    names = {
        p.sku: p.name
        for p in catalog.products_by_sku(session, [ln.sku for ln in order.lines]).values()
    }
    method = next((p.method for p in order.payments if p.method != "points"), "cash")
    ctx = {
        "nav": "desk",
        "order": order,
        "names": names,
        "method": dict(PAYMENT_METHODS).get(method, method),
        "member": member_view(request, session, viewer, member),
    }
    return render(request, "console/desk/receipt.html", ctx)
