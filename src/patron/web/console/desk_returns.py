"""Console: returns at the clerk desk — pick the member's order (the latest ones, older pages, or
the order number on the receipt), the lines and quantities coming back; orders/returns.py
refunds and claws back the points the returned goods earned.

Each return form carries a return id made when the page was shown, so a second tap of "Process
return" replays the first return instead of returning the goods twice.
"""

from __future__ import annotations

import re
import secrets
from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.responses import Response

from patron.catalog import service as catalog
from patron.errors import NotFound, PatronError
from patron.kit.ids import EXTERNAL_ID_PATTERN
from patron.members import service as members
from patron.members.models import Member
from patron.orders import returns
from patron.orders import service as orders
from patron.orders.models import Order, OrderReturn
from patron.orders.schemas import ReturnIn, ReturnLineIn
from patron.web.console.desk_common import (
    DESK,
    FORM_INVALID,
    make_ctx,
    member_view,
    message,
    now,
    tier_label,
)
from patron.web.console.members import ORDER_CHANNEL_LABELS, Pager
from patron.web.console.page_kit import OrdersWriter, console_router
from patron.web.i18n import N_
from patron.web.pages import Viewer, get_session, render, translate

router = console_router(full_paths=True)  # full paths: desk.py includes this router
RECENT = 10
MAX_QUANTITY = 100_000
MAX_LINE_NO = 10_000  # as orders.schemas.ReturnLineIn
ORDER_NO = EXTERNAL_ID_PATTERN


def _new_return_id() -> str:
    return f"R-{secrets.token_hex(4).upper()}"


def _page(
    request: Request,
    session: Session,
    viewer: Viewer,
    member: Member,
    *,
    errors: dict[str, str] | None = None,
    typed: dict[str, dict[int, str]] | None = None,
    status: int = 200,
    page: int = 1,
    order_no: str = "",
) -> HTMLResponse:
    rows, total = orders.member_orders(
        session,
        member.id,
        limit=RECENT,
        offset=(page - 1) * RECENT,
        external_id=order_no or None,
    )
    skus = sorted({ln.sku for o in rows for ln in o.lines})
    names = {p.sku: p.name for p in catalog.products_by_sku(session, skus).values()}
    ctx: dict[str, Any] = {
        "nav": "desk",
        "nav_sub": "returns",
        "member": member_view(request, session, viewer, member),
        "orders": rows,
        "total": total,
        "names": names,
        "errors": errors or {},
        "typed": typed or {},
        "return_ids": {o.external_id: _new_return_id() for o in rows},
        "pager": Pager(page, total, RECENT),
        "order_no": order_no,
        "order_channel_labels": ORDER_CHANNEL_LABELS,
    }
    return render(request, "console/desk/returns.html", ctx, status=status)


@router.get(DESK + "/returns")
def returns_page(
    request: Request,
    viewer: OrdersWriter,
    member: Annotated[str, Query(pattern=r"^[0-9]{10}$")],
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    order: Annotated[str, Query(max_length=64)] = "",
) -> HTMLResponse:
    session = get_session(request)
    found = members.get_member(session, member)
    order_no = order.strip()
    if order_no and not re.fullmatch(ORDER_NO, order_no):
        errors = {"order": translate(request, N_("Enter the order number as on the receipt."))}
        return _page(request, session, viewer, found, errors=errors, status=422)
    return _page(request, session, viewer, found, page=page, order_no=order_no)


def _whole(text: str, most: int) -> int | None:
    """``text`` as a whole number from 0 to ``most``, or None. The length is checked before
    ``int()``, which refuses (ValueError) a string of thousands of digits."""
    if not text.isascii() or not text.isdecimal() or len(text) > len(str(most)):
        return None
    value = int(text)
    return value if value <= most else None


def _wanted(
    request: Request, order: Order, line_no: list[str], qty: list[str]
) -> tuple[list[ReturnLineIn], dict[int, str], dict[str, str]]:
    """The lines coming back, what was typed, and errors keyed ``<order>:<line>``."""
    remaining = {ln.line_no: ln.quantity - ln.returned_quantity for ln in order.lines}
    wanted: list[ReturnLineIn] = []
    typed: dict[int, str] = {}
    errors: dict[str, str] = {}
    for no_text, q_text in zip(line_no, qty, strict=False):
        no = _whole(no_text, MAX_LINE_NO)
        if no is None or no not in remaining:
            continue
        text = q_text.strip()
        typed[no] = text[:20]  # shown back in the field
        if text in ("", "0"):
            continue
        quantity = _whole(text, MAX_QUANTITY)
        if quantity is None or quantity < 1:
            errors[f"{order.external_id}:{no}"] = translate(
                request, N_("Enter a whole number of items.")
            )
        elif quantity > remaining[no]:
            errors[f"{order.external_id}:{no}"] = translate(
                request, N_("Only {n} of this line can still be returned.")
            ).format(n=remaining[no])
        else:
            wanted.append(ReturnLineIn(line_no=no, quantity=quantity))
    if not wanted and not errors:
        errors[order.external_id] = translate(
            request, N_("Enter how many items of each line come back.")
        )
    return wanted, typed, errors


@router.post(DESK + "/returns")
def process_return(
    request: Request,
    viewer: OrdersWriter,
    member_no: Annotated[str, Form(pattern=r"^[0-9]{10}$")],
    source: Annotated[str, Form(pattern=r"^[a-z0-9_-]{1,32}$")],
    external_id: Annotated[str, Form(pattern=ORDER_NO)],
    return_id: Annotated[str, Form(pattern=ORDER_NO)],
    line_no: Annotated[list[str], Form(max_length=500)] = [],  # noqa: B006 - FastAPI form
    qty: Annotated[list[str], Form(max_length=500)] = [],  # noqa: B006 - FastAPI form
) -> Response:
    session = get_session(request)
    member = members.get_member(session, member_no)
    order = orders.get_order(session, source, external_id)
    if order.member_id != member.id:
        raise NotFound("order_not_found", f"No order {external_id} for this member.")
    done = orders.find_return(session, order.id, return_id)
    if done is not None:
        # A second tap of "Process return" (or a reload): show the return already made.
        return _done(request, session, viewer, member, order, done, None)
    wanted, typed, errors = _wanted(request, order, line_no, qty)
    if errors:
        return _page(
            request,
            session,
            viewer,
            member,
            errors=errors,
            typed={external_id: typed},
            status=422,
            order_no=external_id,
        )
    ctx = make_ctx(request, session, viewer)
    try:
        data = ReturnIn(external_id=return_id, returned_at=now(request), lines=wanted)
        result = returns.record_return(session, ctx, source, external_id, data)
    except (PatronError, ValidationError) as exc:
        if isinstance(exc, PatronError):
            text = message(request, exc)
        else:
            text = translate(request, FORM_INVALID)
        status = exc.status if isinstance(exc, PatronError) else 422
        return _page(
            request,
            session,
            viewer,
            member,
            errors={external_id: text},
            typed={external_id: typed},
            status=status,
            order_no=external_id,
        )
    return _done(request, session, viewer, member, order, result.record, result.tier_changed_to)


def _done(
    request: Request,
    session: Session,
    viewer: Viewer,
    member: Member,
    order: Order,
    record: OrderReturn,
    tier_changed_to: str | None,
) -> HTMLResponse:
    session.flush()
    names = {
        p.sku: p.name
        for p in catalog.products_by_sku(session, [ln.sku for ln in order.lines]).values()
    }
    by_no = {ln.line_no: ln for ln in order.lines}
    context = {
        "nav": "desk",
        "member": member_view(request, session, viewer, member),
        "order": order,
        "record": record,
        "lines": [(by_no[rl.line_no], rl) for rl in record.lines],
        "names": names,
        "tier_changed_to": tier_label(session, viewer, tier_changed_to)
        if tier_changed_to
        else None,
    }
    return render(request, "console/desk/return_done.html", context)
