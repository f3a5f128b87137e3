"""Console: the mall's flash sales and lottery pools — list, create, change and close them. The
services validate (odds summing to one, a fallback prize, a window that ends after it starts, a
quantity not below the units granted); their refusals are shown in words with nothing written.
Changing a pool makes a new version (past draws keep theirs); closing one stops its draws."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import Form, Path, Query, Request
from pydantic import ValidationError
from starlette.responses import Response

from patron.auth import permissions as perm
from patron.errors import Invalid, PatronError
from patron.kit.timeutil import business_tz
from patron.ledger.service import Ctx
from patron.mall import lottery, redemptions
from patron.mall import service as mall
from patron.mall.schemas import FlashSaleIn, PoolIn, PrizeIn
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
PAGE = CONSOLE_PREFIX + "/mall/promotions"
#: prize rows offered by the pool form (a pool holds at most 20; the API takes more than this)
PRIZE_ROWS = 6
SaleId = Annotated[int, Path(ge=1, le=2**31 - 1)]
PoolCode = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,32}$")]

MESSAGES = {
    "gift_not_found": N_("Choose one of the gifts."),
    "invalid_window": N_("A flash sale must end after it starts."),
    "lottery_odds_not_one": N_("The odds of the prizes must add up to exactly 100 percent."),
    "lottery_fallback_required": N_(
        "Mark exactly one prize as the fallback; it must have unlimited stock."
    ),
    "invalid_prize": N_("A points prize awards some points; other prizes award none."),
    "invalid_odds": N_("Enter odds as a percentage with at most four decimals."),
    "flash_ended": N_("This flash sale has ended; it can no longer be changed."),
    "flash_started": N_("This flash sale has started: its points and start can no longer change."),
    "flash_quantity_below_granted": N_(
        "More units are already granted than that; the quantity cannot be lower."
    ),
    "flash_sale_not_found": N_("This flash sale does not exist."),
    "lottery_not_found": N_("This lottery pool does not exist."),
}
FALLBACK = N_("That did not work; nothing was changed.")
INVALID_FLASH = N_(
    "Check the fields: whole points and units, a per-member limit, a start and an end."
)
INVALID_POOL = N_(
    "Check the fields: a code of letters and digits, a name, whole points and at least one prize."
)


def _status(sale: Any, now: datetime) -> str:
    if sale.closed_at is not None:
        return "closed"
    if sale.ends_at <= now:
        return "ended"
    return "upcoming" if now < sale.starts_at else "open"


def _page(
    request: Request,
    viewer: Viewer,
    *,
    error: str | None = None,
    status: int = 200,
    edit_flash: int | None = None,
    edit_pool: str | None = None,
) -> Response:
    session = get_session(request)
    now = request.app.state.clock.now()
    sales = redemptions.flash_sales(session)
    pools = lottery.pools(session)
    flash = next((s for s, _c in sales if s.id == edit_flash), None)
    pool = next(((p, prizes) for p, prizes in pools if p.code == edit_pool), None)
    tz = business_tz(request.app.state.settings.business_timezone)
    ctx: dict[str, Any] = {
        "nav": "mall",
        "now": now,
        "sales": [(s, c, _status(s, now)) for s, c in sales],
        "pools": pools,
        "gifts": mall.browse(session, now, include_closed=True),
        "prize_rows": range(max(PRIZE_ROWS, len(pool[1]) + 1 if pool else 0)),
        "can_manage": viewer.can(perm.MALL_MANAGE),
        "error": translate(request, error) if error else None,
        "edit_flash": flash,
        "edit_pool": pool,
        "local": lambda at: at.astimezone(tz).strftime("%Y-%m-%dT%H:%M"),
        "percent": lambda ppm: format(Decimal(ppm) / 10_000, "f"),
    }
    return render(request, "console/mall_promos.html", ctx, status=status)


@router.get(PAGE)
def promotions_page(
    request: Request,
    viewer: MallReader,
    flash: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    pool: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_-]{1,32}$")] = None,
) -> Response:
    return _page(request, viewer, edit_flash=flash, edit_pool=pool)


def _ctx(request: Request, viewer: Viewer) -> Ctx:
    return request_ctx(request, get_session(request), viewer.principal, mall.SECTIONS)


def _refused(request: Request, viewer: Viewer, exc: PatronError) -> Response:
    message = MESSAGES.get(exc.code, FALLBACK)
    return _page(request, viewer, error=message, status=max(exc.status, 400))


def _local(request: Request, raw: str) -> datetime:
    """A datetime-local field, read in the business timezone."""
    tz = business_tz(request.app.state.settings.business_timezone)
    return datetime.fromisoformat(raw.strip()).replace(tzinfo=tz)


def _whole(raw: str) -> int:
    return int(raw) if raw.strip().isdigit() else 0


FlashFields = tuple[str, str, str, str, str, str]


def _flash_form(request: Request, fields: FlashFields) -> FlashSaleIn:
    gift_code, points, quantity, per_member_limit, starts_at, ends_at = fields
    return FlashSaleIn(
        gift_code=gift_code,
        points=_whole(points),
        quantity=_whole(quantity),
        per_member_limit=_whole(per_member_limit),
        starts_at=_local(request, starts_at),
        ends_at=_local(request, ends_at),
    )


@router.post(CONSOLE_PREFIX + "/mall/flash-sales")
def create_flash_sale(
    request: Request,
    viewer: MallManager,
    gift_code: Annotated[str, Form(max_length=32)] = "",
    points: Annotated[str, Form(max_length=12)] = "",
    quantity: Annotated[str, Form(max_length=9)] = "",
    per_member_limit: Annotated[str, Form(max_length=6)] = "1",
    starts_at: Annotated[str, Form(max_length=32)] = "",
    ends_at: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    try:
        data = _flash_form(
            request, (gift_code, points, quantity, per_member_limit, starts_at, ends_at)
        )
    except (ValidationError, ValueError):
        return _page(request, viewer, error=INVALID_FLASH, status=422)
    try:
        redemptions.create_flash_sale(
            get_session(request),
            _ctx(request, viewer),
            data.gift_code,
            points=data.points,
            quantity=data.quantity,
            per_member_limit=data.per_member_limit,
            starts_at=data.starts_at,
            ends_at=data.ends_at,
        )
    except PatronError as exc:
        return _refused(request, viewer, exc)
    return redirect(request, PAGE, flash=N_("Flash sale created."))


@router.post(CONSOLE_PREFIX + "/mall/flash-sales/{sale_id}")
def update_flash_sale(
    request: Request,
    viewer: MallManager,
    sale_id: SaleId,
    points: Annotated[str, Form(max_length=12)] = "",
    quantity: Annotated[str, Form(max_length=9)] = "",
    per_member_limit: Annotated[str, Form(max_length=6)] = "1",
    starts_at: Annotated[str, Form(max_length=32)] = "",
    ends_at: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    try:
        data = _flash_form(request, ("X", points, quantity, per_member_limit, starts_at, ends_at))
    except (ValidationError, ValueError):
        return _page(request, viewer, error=INVALID_FLASH, status=422, edit_flash=sale_id)
    try:
        redemptions.update_flash_sale(
            get_session(request),
            _ctx(request, viewer),
            sale_id,
            points=data.points,
            quantity=data.quantity,
            per_member_limit=data.per_member_limit,
            starts_at=data.starts_at,
            ends_at=data.ends_at,
        )
    except PatronError as exc:
        message = MESSAGES.get(exc.code, FALLBACK)
        return _page(
            request, viewer, error=message, status=max(exc.status, 400), edit_flash=sale_id
        )
    return redirect(request, PAGE, flash=N_("Flash sale changed."))


@router.post(CONSOLE_PREFIX + "/mall/flash-sales/{sale_id}/close")
def close_flash_sale(request: Request, viewer: MallManager, sale_id: SaleId) -> Response:
    try:
        redemptions.close_flash_sale(get_session(request), _ctx(request, viewer), sale_id)
    except PatronError as exc:
        return _refused(request, viewer, exc)
    return redirect(request, PAGE, flash=N_("Flash sale closed."))


@router.post(CONSOLE_PREFIX + "/mall/lotteries/{code}/close")
def close_pool(request: Request, viewer: MallManager, code: PoolCode) -> Response:
    try:
        lottery.set_open(get_session(request), _ctx(request, viewer), code, False)
    except PatronError as exc:
        return _refused(request, viewer, exc)
    return redirect(request, PAGE, flash=N_("Lottery pool closed."))


@router.post(CONSOLE_PREFIX + "/mall/lotteries/{code}/open")
def open_pool(request: Request, viewer: MallManager, code: PoolCode) -> Response:
    try:
        lottery.set_open(get_session(request), _ctx(request, viewer), code, True)
    except PatronError as exc:
        return _refused(request, viewer, exc)
    return redirect(request, PAGE, flash=N_("Lottery pool opened."))


def _ppm(raw: str) -> int:
    """Odds typed as a percentage (``12.5``) in parts per million, exactly."""
    try:
        value = Decimal(raw.strip() or "0") * 10_000
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value != value.to_integral_value() or value < 0:
        raise Invalid("invalid_odds", f"Odds {raw!r} are not a percentage with four decimals.")
    return int(value)


def _prizes(
    names: list[str],
    kinds: list[str],
    awards: list[str],
    odds: list[str],
    stocks: list[str],
    fallback: str,
) -> list[PrizeIn]:
    prizes = []
    for i, name in enumerate(names):
        if not name.strip():
            continue  # an empty row of the form
        award, left = (awards[i : i + 1] or [""])[0].strip(), (stocks[i : i + 1] or [""])[0].strip()
        prizes.append(
            PrizeIn(
                name=name.strip(),
                kind=(kinds[i : i + 1] or ["none"])[0],
                award_points=int(award) if award.isdigit() else 0,
                ppm=_ppm((odds[i : i + 1] or [""])[0]),
                stock=int(left) if left.isdigit() else None,
                is_fallback=fallback == str(i),
            )
        )
    return prizes


@router.post(CONSOLE_PREFIX + "/mall/lotteries")
def save_pool(
    request: Request,
    viewer: MallManager,
    code: Annotated[str, Form(max_length=32)] = "",
    name: Annotated[str, Form(max_length=100)] = "",
    kind: Annotated[str, Form(pattern=r"^(wheel|blindbox)$")] = "wheel",
    cost_points: Annotated[str, Form(max_length=12)] = "",
    daily_limit: Annotated[str, Form(max_length=6)] = "3",
    prize_name: Annotated[list[str] | None, Form()] = None,
    prize_kind: Annotated[list[str] | None, Form()] = None,
    prize_points: Annotated[list[str] | None, Form()] = None,
    prize_odds: Annotated[list[str] | None, Form()] = None,
    prize_stock: Annotated[list[str] | None, Form()] = None,
    fallback: Annotated[str, Form(max_length=3)] = "",
) -> Response:
    session = get_session(request)
    try:
        prizes = _prizes(
            prize_name or [],
            prize_kind or [],
            prize_points or [],
            prize_odds or [],
            prize_stock or [],
            fallback,
        )
        data = PoolIn(
            code=code.strip(),
            name=name.strip(),
            kind=kind,
            cost_points=int(cost_points) if cost_points.strip().isdigit() else 0,
            daily_limit=int(daily_limit) if daily_limit.strip().isdigit() else 0,
            prizes=prizes,
        )
    except ValidationError:
        return _page(request, viewer, error=INVALID_POOL, status=422)
    except PatronError as exc:
        return _refused(request, viewer, exc)
    try:
        current, _prizes_now = lottery.get_pool(session, data.code)
        # a change keeps the pool open or closed as it was
        data = data.model_copy(update={"is_active": current.is_active})
    except PatronError:
        pass  # a new pool
    try:
        lottery.put_pool(session, _ctx(request, viewer), data)
    except PatronError as exc:
        return _refused(request, viewer, exc)
    return redirect(request, PAGE, flash=N_("Lottery pool saved."))
