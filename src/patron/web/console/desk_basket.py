"""Console: the clerk desk's basket — add products by SKU or search, quote, take points,
commit, and the receipt.

The basket lives in the page (hidden inputs) with an order number made when it opened;
committing twice with the same number records one order. Quote and commit go through
orders/checkout.py exactly as the REST API does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import quote as urlquote

from fastapi import Form, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.responses import Response

from patron.catalog import service as catalog
from patron.catalog.models import Store
from patron.errors import Conflict, PatronError
from patron.kit.ids import EXTERNAL_ID_PATTERN
from patron.members import service as members
from patron.members.models import Member
from patron.orders import checkout
from patron.orders import service as orders
from patron.orders.schemas import BasketLineIn, CommitIn, QuoteIn
from patron.web.console.desk_common import (
    DESK,
    FORM_INVALID,
    MAX_LINES,
    MAX_QUANTITY,
    PAYMENT_METHODS,
    SOURCE,
    current_store,
    make_ctx,
    member_view,
    message,
    page_context,
)
from patron.web.console.page_kit import OrdersWriter, console_router
from patron.web.i18n import N_
from patron.web.pages import (
    Viewer,
    get_session,
    redirect,
    render,
    translate,
)

router = console_router(full_paths=True)  # full paths: desk.py includes this router
SKU = re.compile(r"[A-Za-z0-9_.-]{1,64}")  # as orders.schemas.Sku
COUPON_SPLIT = re.compile(r"[\s,;，；]+")
COUPON = re.compile(r"[A-Za-z0-9]{4,20}")  # as coupons.schemas.CouponCode
#: what the clerk reads when a coupon cannot be used (codes from patron.coupons)
COUPON_MESSAGES = {
    "unknown_coupon": N_("No coupon has this code; check it with the member's wallet."),
    "coupon_not_member": N_("This coupon belongs to another member."),
    "coupon_used": N_("This coupon was already used."),
    "coupon_already_used": N_("This coupon was used meanwhile; quote again without it."),
    "coupon_voided": N_("This coupon was voided."),
    "coupon_expired": N_("This coupon has expired."),
    "coupon_not_yet_valid": N_("This coupon is not valid yet."),
    "coupon_wrong_store": N_("This coupon cannot be used in this store."),
    "coupon_wrong_tier": N_("This coupon is for other membership tiers."),
    "coupon_not_applicable": N_("This coupon applies to none of the goods in the basket."),
    "coupon_below_threshold": N_("The basket does not reach this coupon's minimum spend yet."),
}


def _message(request: Request, exc: PatronError) -> str:
    if exc.code in COUPON_MESSAGES:
        return translate(request, COUPON_MESSAGES[exc.code])
    return message(request, exc)


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
    coupons_text: str = ""  # coupon codes as typed or scanned (patron.coupons)

    def coupon_codes(self) -> list[str]:
        return [c.upper() for c in COUPON_SPLIT.split(self.coupons_text) if c][:10]

    def sign(self, points: int) -> str:
        """What the quote shown was for; a commit of anything else is quoted again first."""
        lines = ",".join(f"{ln.sku}*{ln.quantity}" for ln in self.lines)
        return lines + f"|{points}|" + ",".join(self.coupon_codes())


def _parse_lines(request: Request, skus: list[str], qtys: list[str]) -> list[Line]:
    lines: list[Line] = []
    for i, sku in enumerate(skus[:MAX_LINES]):
        # Cut before int(): a quantity is a few digits, and int() of thousands raises.
        text = (qtys[i] if i < len(qtys) else "1").strip()[:20]
        try:
            qty = int(text)
        except ValueError:
            qty = 0
        line = Line(sku=sku.strip(), quantity=qty, text=text)
        if not SKU.fullmatch(line.sku):
            line.error = translate(request, N_("This is not a product code; remove the line."))
        elif not 1 <= qty <= MAX_QUANTITY:
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
    if verb in ("inc", "dec", "remove") and arg.isdecimal() and int(arg) < len(basket.lines):
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
        basket.errors["add"] = translate(
            request, N_("No product on sale matches “{text}”.")
        ).format(text=text)


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
        "coupon_discount_fen": q.coupon_discount_fen,
        "coupons": [
            {"code": a.code, "discount_fen": a.discount_fen, "gift_sku": a.gift_sku}
            for a in (priced.coupons.selection.applied if priced.coupons else ())
        ],
        "coupons_left_out": [
            {"code": code, "reason": reason}
            for code, reason, _text in (priced.coupons.selection.left_out if priced.coupons else ())
        ],
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
    codes = basket.coupon_codes()
    if any(not COUPON.fullmatch(c) for c in codes):
        basket.errors["coupons"] = translate(request, N_("This is not a coupon code."))
        return None
    data = QuoteIn(
        member_no=member_no,
        channel="store",
        store_code=store.code if store else None,
        lines=[BasketLineIn(sku=ln.sku, quantity=ln.quantity) for ln in basket.lines],
        coupon_codes=codes,
    )
    try:
        plain = checkout.quote(session, ctx, data)
    except PatronError as exc:
        # A product taken off sale since it was scanned: mark its line.
        where = str(exc.details.get("field", "")).split(".")
        if len(where) > 1 and where[0] == "lines" and where[1].isdecimal():
            basket.lines[int(where[1])].error = message(request, exc)
        elif where[0] == "coupon_codes":
            basket.errors["coupons"] = _message(request, exc)
        else:
            basket.errors["form"] = message(request, exc)
        return None
    basket.quote = _quote_view(plain, names)
    basket.points_share_bp = orders.pricing_settings(session).max_points_share_bp
    text = basket.points_text.strip()
    if not text:
        return 0
    usable = plain.quote.max_points
    if not text.isdecimal() or int(text) > usable:
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


@router.post(DESK + "/basket")
def basket_action(
    request: Request,
    viewer: OrdersWriter,
    member_no: Annotated[str, Form(pattern=r"^[0-9]{10}$")],
    order_no: Annotated[str, Form(pattern=EXTERNAL_ID_PATTERN)],
    sku: Annotated[list[str], Form(max_length=MAX_LINES)] = [],  # noqa: B006 - FastAPI form
    qty: Annotated[list[str], Form(max_length=MAX_LINES)] = [],  # noqa: B006 - FastAPI form
    add: Annotated[str, Form(max_length=200)] = "",
    points: Annotated[str, Form(max_length=20)] = "",
    payment_method: Annotated[str, Form(max_length=16)] = "cash",
    action: Annotated[str, Form(max_length=100)] = "add",
    coupons: Annotated[str, Form(max_length=300)] = "",
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
        coupons_text=coupons,
    )
    if action == "commit" and store is not None:
        # Taps of "commit" on one basket take turns (the lock lasts until this page's
        # transaction ends); a tap after the sale went through gets the same receipt, not a
        # new quote against the balance the first tap already changed.
        orders.lock_order(session, SOURCE, order_no)
    if action == "commit" and store is not None and orders.find_order(session, SOURCE, order_no):
        used = int(points) if points.strip().isdecimal() else 0
        return _commit(
            request, viewer, member, store, basket, used, expected_total_fen, expected_points_earned
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
    ctx = page_context(request, session, viewer, member, basket=basket)
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
            coupon_codes=basket.coupon_codes(),
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
            text = (
                _message(request, exc)
                if isinstance(exc, PatronError)
                else translate(request, FORM_INVALID)
            )
            basket.errors["form"] = text
            status = exc.status if isinstance(exc, PatronError) else 422
        ctx = page_context(request, session, viewer, member, basket=basket)
        return render(request, "console/desk/index.html", ctx, status=status)
    # A second tap of "commit" replays the same order and lands on the same receipt.
    return redirect(request, f"{DESK}/receipt/{urlquote(order.external_id)}")


@router.get(DESK + "/receipt/{order_no}")
def receipt(request: Request, viewer: OrdersWriter, order_no: str) -> HTMLResponse:
    session = get_session(request)
    order = orders.get_order(session, SOURCE, order_no)
    member = session.get(Member, order.member_id)
    assert member is not None
    names = {
        p.sku: p.name
        for p in catalog.products_by_sku(session, [ln.sku for ln in order.lines]).values()
    }
    method = next((p.method for p in order.payments if p.method != "points"), "cash")
    stores = catalog.store_names(session, {order.store_code} if order.store_code else set())
    ctx = {
        "nav": "desk",
        "order": order,
        "store_name": stores.get(order.store_code or "", order.store_code or ""),
        # member price, tier and birthday discounts: list price minus what the lines came to
        "saved_fen": sum(ln.discount_fen for ln in order.lines),
        "list_fen": sum(ln.unit_price_fen * ln.quantity for ln in order.lines),
        "names": names,
        "method": dict(PAYMENT_METHODS).get(method, method),
        "member": member_view(request, session, viewer, member),
    }
    return render(request, "console/desk/receipt.html", ctx)
