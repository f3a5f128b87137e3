"""Console: the mall's suppliers — their agreements (validity and terms), quotes per gift, the
monthly comparison of quotes and each gift's preferred and backup supplier. Refusals are
shown in words with nothing written."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from fastapi import Form, Query, Request
from starlette.responses import Response

from patron.auth import permissions as perm
from patron.errors import Invalid, PatronError
from patron.kit.timeutil import business_date, business_tz
from patron.ledger.service import Ctx
from patron.mall import service as mall
from patron.mall import suppliers
from patron.web.console.page_kit import MallManager, MallReader, console_router
from patron.web.context import request_ctx
from patron.web.i18n import N_
from patron.web.pages import (
    CONSOLE_PREFIX,
    Viewer,
    get_session,
    redirect,
    render,
    translate,
)

router = console_router(full_paths=True)
PAGE = CONSOLE_PREFIX + "/mall/suppliers"
CODE = re.compile(r"[A-Za-z0-9_-]{1,32}")

MESSAGES = {
    "supplier_not_found": N_("Choose one of the suppliers."),
    "gift_not_found": N_("Choose one of the gifts."),
    "invalid_window": N_("An agreement must end on or after the day it starts."),
    "agreement_exists": N_("This supplier already has an agreement with that reference."),
    "same_supplier": N_("The backup supplier must differ from the preferred one."),
    "invalid_supplier": N_("Give the supplier a code of letters and digits and a name."),
    "invalid_agreement": N_("Give the agreement a reference and its first and last day."),
    "invalid_quote": N_(
        "Enter the unit cost in yuan (at most 2 decimals), whole units and days, and a date."
    ),
    "invalid_month": N_("Choose a month."),
}
FALLBACK = N_("That did not work; nothing was changed.")


def _today(request: Request) -> date:
    tz = business_tz(request.app.state.settings.business_timezone)
    return business_date(request.app.state.clock.now(), tz)


def _page(
    request: Request,
    viewer: Viewer,
    *,
    month: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    session = get_session(request)
    today = _today(request)
    month = month or today.strftime("%Y-%m")
    gifts = mall.browse(session, request.app.state.clock.now(), include_closed=True)
    chosen = suppliers.gift_suppliers(session)
    ctx: dict[str, Any] = {
        "nav": "mall",
        "today": today,
        "month": month,
        "suppliers": suppliers.listing(session, today),
        "gifts": gifts,
        "chosen": [(v.gift, chosen.get(v.gift.id)) for v in gifts],
        "comparison": suppliers.comparison(session, month, today),
        "min_quotes": mall.get_settings(session).min_quotes,
        "can_manage": viewer.can(perm.MALL_MANAGE),
        "error": translate(request, error) if error else None,
    }
    return render(request, "console/mall_suppliers.html", ctx, status=status)


@router.get(PAGE)
def suppliers_page(
    request: Request,
    viewer: MallReader,
    month: Annotated[str | None, Query(pattern=r"^[0-9]{4}-[0-9]{2}$")] = None,
) -> Response:
    return _page(request, viewer, month=month)


def _ctx(request: Request, viewer: Viewer) -> Ctx:
    return request_ctx(request, get_session(request), viewer.principal, mall.SECTIONS)


def _run(request: Request, viewer: Viewer, action: Any, done: str) -> Response:
    try:
        action()
    except PatronError as exc:
        message = MESSAGES.get(exc.code, FALLBACK)
        return _page(request, viewer, error=message, status=max(exc.status, 400))
    return redirect(request, PAGE, flash=done)


def _date(raw: str) -> date | None:
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        return None


def _yuan_to_fen(raw: str) -> int:
    m = re.fullmatch(r"(\d{1,9})(?:\.(\d{1,2}))?", raw.strip())
    fen = int(m.group(1)) * 100 + int((m.group(2) or "0").ljust(2, "0")) if m else 0
    if fen <= 0:
        raise Invalid("invalid_quote", f"{raw!r} is not an amount in yuan.")
    return fen


def _whole(raw: str, *, low: int = 1) -> int | None:
    text = raw.strip()
    return int(text) if text.isdigit() and len(text) <= 7 and int(text) >= low else None


@router.post(PAGE)
def save_supplier(
    request: Request,
    viewer: MallManager,
    code: Annotated[str, Form(max_length=32)] = "",
    name: Annotated[str, Form(max_length=100)] = "",
    contact: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    def act() -> None:
        if not CODE.fullmatch(code.strip()) or not name.strip():
            raise Invalid("invalid_supplier", "A supplier needs a code and a name.")
        suppliers.put(
            get_session(request),
            _ctx(request, viewer),
            code.strip(),
            name=name.strip(),
            contact=contact.strip(),
        )

    return _run(request, viewer, act, N_("Supplier saved."))


@router.post(PAGE + "/agreements")
def add_agreement(
    request: Request,
    viewer: MallManager,
    supplier: Annotated[str, Form(max_length=32)] = "",
    ref: Annotated[str, Form(max_length=40)] = "",
    valid_from: Annotated[str, Form(max_length=10)] = "",
    valid_to: Annotated[str, Form(max_length=10)] = "",
    terms: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    def act() -> None:
        first, last = _date(valid_from), _date(valid_to)
        if not ref.strip() or first is None or last is None:
            raise Invalid(
                "invalid_agreement", "An agreement needs a reference, a first and a last day."
            )
        suppliers.add_agreement(
            get_session(request),
            _ctx(request, viewer),
            supplier,
            ref=ref.strip(),
            valid_from=first,
            valid_to=last,
            terms=terms.strip(),
        )

    return _run(request, viewer, act, N_("Agreement added."))


@router.post(PAGE + "/quotes")
def add_quote(
    request: Request,
    viewer: MallManager,
    supplier: Annotated[str, Form(max_length=32)] = "",
    gift_code: Annotated[str, Form(max_length=32)] = "",
    unit_cost: Annotated[str, Form(max_length=16)] = "",
    min_quantity: Annotated[str, Form(max_length=8)] = "1",
    lead_days: Annotated[str, Form(max_length=4)] = "7",
    quoted_on: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    def act() -> None:
        on = _date(quoted_on) if quoted_on.strip() else None
        least, lead = _whole(min_quantity), _whole(lead_days, low=0)
        if (quoted_on.strip() and on is None) or least is None or lead is None:
            raise Invalid("invalid_quote", "Whole units and days, and a date.")
        suppliers.add_quote(
            get_session(request),
            _ctx(request, viewer),
            supplier,
            gift_code,
            unit_cost_fen=_yuan_to_fen(unit_cost),
            quoted_on=on,
            min_quantity=least,
            lead_days=lead,
        )

    return _run(request, viewer, act, N_("Quote added."))


@router.post(PAGE + "/gifts")
def choose_suppliers(
    request: Request,
    viewer: MallManager,
    gift_code: Annotated[str, Form(max_length=32)] = "",
    preferred: Annotated[str, Form(max_length=32)] = "",
    backup: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    return _run(
        request,
        viewer,
        lambda: suppliers.set_for_gift(
            get_session(request), _ctx(request, viewer), gift_code, preferred, backup or None
        ),
        N_("Suppliers of the gift saved."),
    )
