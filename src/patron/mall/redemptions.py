"""Redemption orders (R2, R8) and flash redemption (R6).

A redemption is one transaction: the member's ledger lock (``ledger.begin``), the limit count
under it, the flash sale's guarded counter, the stock's guarded reservation, the points spend
through the ledger flows, then the order row complete with its spend and code. Any refusal
raises, and the unit of work rolls everything back: no points without a unit, no unit without
points. Lock order: member ledger → flash sale → stock row (cancel: redemption row → member
ledger → flash sale → stock row; no path takes them the other way round).

State changes are guarded UPDATEs on ``status`` (``WHERE status = 'reserved'``), so a cancel
racing a verification, or one code verified at two stores at once, succeeds exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from patron.audit import service as audit
from patron.catalog.models import Store
from patron.errors import Conflict, Invalid, NotFound
from patron.ledger import flows
from patron.ledger import service as ledger
from patron.ledger.service import Ctx
from patron.mall import domain, service, stock
from patron.mall.models import FlashSale, Gift, Redemption
from patron.members.models import Member
from patron.risk import service as risk
from patron.tiers import service as tiers
from patron.webhooks import events


@dataclass(frozen=True, slots=True)
class RedeemRequest:
    gift_code: str
    quantity: int = 1
    delivery: str = "pickup"
    store_code: str | None = None
    flash_sale_id: int | None = None
    #: the device the request came from, when it says (risk review counts per device)
    device_id: str | None = None


def _store(session: Session, code: str | None) -> Store | None:
    if code is None:
        return None
    store = session.scalar(select(Store).where(Store.code == code))
    if store is None or not store.is_active:
        raise NotFound("store_not_found", f"No active store with code {code}.")
    return store


def _check_tier(session: Session, member_id: int, gift: Gift) -> None:
    if gift.min_tier is None:
        return
    ladder = tiers.get_ladder(session)
    ranks = {t.code: i for i, t in enumerate(ladder.tiers)}
    code = tiers.codes_of(session, [member_id], ladder.base.code)[member_id]
    domain.check_tier(service.rules_of(gift), ranks.get(code, 0), ranks)


def _units_so_far(session: Session, member_id: int, *conds: Any) -> int:
    return int(
        session.scalar(
            select(func.coalesce(func.sum(Redemption.quantity), 0)).where(
                Redemption.member_id == member_id,
                Redemption.status.not_in(domain.UNDONE),
                *conds,
            )
        )
        or 0
    )


def _take_flash(
    session: Session, ctx: Ctx, sale_id: int, gift: Gift, member_id: int, quantity: int
) -> FlashSale:
    sale = session.get(FlashSale, sale_id)
    if sale is None or sale.gift_id != gift.id:
        raise NotFound("flash_sale_not_found", f"No flash sale {sale_id} of gift {gift.code}.")
    if ctx.now < sale.starts_at:
        raise Conflict(
            "flash_not_started",
            f"The flash sale opens at {sale.starts_at.isoformat()}.",
            details={"starts_at": sale.starts_at.isoformat()},
        )
    if ctx.now >= sale.ends_at or sale.closed_at is not None:
        raise Conflict("flash_ended", "The flash sale has ended.")
    mine = _units_so_far(session, member_id, Redemption.flash_sale_id == sale.id)
    domain.check_limit(sale.per_member_limit, mine, quantity, "This flash sale")
    # The guard is the check: units are granted by this UPDATE only, never one more.
    res = session.execute(
        update(FlashSale)
        .where(FlashSale.id == sale.id, FlashSale.granted + quantity <= FlashSale.quantity)
        .values(granted=FlashSale.granted + quantity)
        .execution_options(synchronize_session=False)
    )
    if stock._rowcount(res) != 1:
        raise Conflict("flash_sold_out", "Sold out: every unit of this flash sale is taken.")
    return sale


def flash_gate(session: Session, now: datetime, sale_id: int, gift_code: str) -> FlashSale:
    """Refuse a flash attempt that cannot win before anything else is read: once a sale is
    sold out most attempts are losers (9,900 of 10,000 in benchmarks/flash.py), told at once
    for one read, before the member, the gift or the store. Only a read: the guarded UPDATE
    in ``_take_flash`` still decides who gets a unit. Returns the sale (its points price the
    risk check); pass it to ``redeem`` as ``gate``."""
    sale = session.scalar(
        select(FlashSale)
        .join(Gift, Gift.id == FlashSale.gift_id)
        .where(FlashSale.id == sale_id, Gift.code == gift_code)
    )
    if sale is None:
        raise NotFound("flash_sale_not_found", f"No flash sale {sale_id} of gift {gift_code}.")
    if is_open(sale, now) and sale.granted >= sale.quantity:
        raise Conflict("flash_sold_out", "Sold out: every unit of this flash sale is taken.")
    return sale


def redeem(
    session: Session,
    ctx: Ctx,
    member: Member,
    req: RedeemRequest,
    gate: FlashSale | None = None,
) -> tuple[Redemption, Gift]:
    """Reserve a gift for a member: points spent, stock reserved, code issued. For a flash
    sale, ``gate`` is what ``flash_gate`` returned if the caller asked it first."""
    quantity = domain.check_quantity(req.quantity)
    if req.delivery not in ("pickup", "ship"):
        raise Invalid("invalid_delivery", "delivery must be 'pickup' or 'ship'")
    if req.flash_sale_id is not None and (gate is None or gate.id != req.flash_sale_id):
        gate = flash_gate(session, ctx.now, req.flash_sale_id, req.gift_code)
    if member.status != "active":
        raise Conflict("member_inactive", "This membership is not active.")
    settings = service.get_settings(session)
    gift = service.get_gift(session, req.gift_code)
    store = _store(session, req.store_code)
    if req.flash_sale_id is None:
        domain.check_window(service.rules_of(gift), ctx.now)
    elif not gift.is_active:
        raise Conflict("gift_unavailable", f"Gift {gift.code} is not offered any more.")
    _check_tier(session, member.id, gift)
    # the points the member would spend: a flash unit costs the sale's points, not the gift's
    unit_points = gate.points if gate is not None else gift.points
    # Risk review (docs/risk.md): may hold the redemption for an SMS code or an operator;
    # it runs before anything is written, so a hold leaves nothing of the redemption behind.
    risk.guard_redemption(
        session,
        ctx,
        member,
        gift_code=gift.code,
        points=unit_points * quantity,
        store_code=store.code if store else None,
        device_id=req.device_id,
    )
    # The member's ledger lock: two redemptions of one member count each other's units.
    ledger.begin(session, ctx, member.id)
    sale = None
    if req.flash_sale_id is not None:
        sale = _take_flash(session, ctx, req.flash_sale_id, gift, member.id, quantity)
        unit_points = sale.points
    else:
        unit_points = gift.points
        if gift.limit_per_member is not None:
            start = domain.limit_window_start(service.rules_of(gift), ctx.now, ctx.tz)
            done = _units_so_far(
                session, member.id, Redemption.gift_id == gift.id, Redemption.created_at >= start
            )
            domain.check_limit(gift.limit_per_member, done, quantity, f"Gift {gift.code}")
    order = domain.warehouse_order(
        settings,
        store_code=store.code if store else None,
        region=store.region if store else member.region,
    )
    warehouse = stock.reserve(session, ctx, gift, order, quantity)
    if warehouse is None:
        raise Conflict(
            "out_of_stock",
            f"Gift {gift.code} is out of stock ({quantity} unit(s) wanted).",
            details={"gift_code": gift.code},
        )
    code = domain.new_code()
    points = unit_points * quantity
    spent = flows.spend(
        session,
        ctx,
        member.id,
        points=points,
        source_type=service.SOURCE_TYPE,
        source_id=code,
        reason=f"gift {gift.code} x{quantity}",
    )
    r = Redemption(
        code=code,
        member_id=member.id,
        gift_id=gift.id,
        flash_sale_id=sale.id if sale else None,
        quantity=quantity,
        points=points,
        cash_fen=gift.cash_fen * quantity,
        warehouse=warehouse,
        delivery=req.delivery,
        store_code=store.code if store else None,
        device_id=req.device_id,
        status="reserved",
        spend_posting_id=spent.posting_id,
        code_expires_at=domain.code_expiry(ctx.now, settings),
        created_at=ctx.now,
        updated_at=ctx.now,
    )
    session.add(r)
    session.flush()
    stock.record(
        session,
        ctx,
        gift.id,
        warehouse,
        "reservation",
        reserved=quantity,
        redemption_id=r.id,
        reason=f"redemption {code}",
    )
    _announce(session, ctx, r, gift, member.member_no, "reserved", "mall.redemption_reserved")
    return r, gift


def _announce(
    session: Session,
    ctx: Ctx,
    r: Redemption,
    gift: Gift,
    member_no: str | None,
    status: str,
    action: str,
) -> None:
    payload = {
        "code": r.code,
        "gift_code": gift.code,
        "quantity": r.quantity,
        "points": r.points,
        "cash_fen": r.cash_fen,
        "status": status,
        "warehouse": r.warehouse,
        "delivery": r.delivery,
        "store_code": r.verified_store or r.store_code,
        "carrier": r.carrier,
        "tracking_no": r.tracking_no,
    }
    if member_no is not None:
        payload["member_no"] = member_no
    events.emit_many(
        session,
        [events.NewEvent(f"mall.redemption.{status}", payload, r.member_id, member_no)],
        ctx.now,
    )
    audit.record(
        session,
        ctx.actor,
        action,  # a literal at each call: the console's audit filter offers each one
        "mall_redemption",
        r.code,
        None,
        {k: v for k, v in payload.items() if v is not None},
        at=ctx.now,
    )


# --------------------------------------------------------------------------- state changes


def get(session: Session, code: str) -> Redemption:
    r = session.scalar(select(Redemption).where(Redemption.code == domain.normalize_code(code)))
    if r is None:
        raise NotFound("redemption_not_found", f"No redemption with code {code}.")
    return r


def _move(
    session: Session, ctx: Ctx, code: str, to: str, *conds: Any, **values: Any
) -> Redemption | None:
    """The guarded state change: at most one caller moves a redemption out of a status."""
    froms = [s for s, tos in domain.MOVES.items() if to in tos]
    return session.scalars(
        update(Redemption)
        .where(Redemption.code == code, Redemption.status.in_(froms), *conds)
        .values(status=to, updated_at=ctx.now, **values)
        .returning(Redemption)
        .execution_options(synchronize_session=False, populate_existing=True)
    ).first()


def _refuse(session: Session, code: str, to: str, now: datetime) -> Conflict | NotFound:
    r = session.scalar(select(Redemption).where(Redemption.code == code))
    if r is None:
        return NotFound("code_unknown", f"No redemption has the code {code}.")
    if r.status == "cancelled":
        return Conflict("redemption_cancelled", f"Redemption {code} was cancelled.")
    if r.status == "returned":
        return Conflict("redemption_returned", f"Redemption {code} was returned.")
    if to == "returned":
        return Conflict(
            "not_shipped",
            f"Redemption {code} is {r.status}: only a shipped gift is returned "
            "(cancel a reserved one instead).",
            details={"status": r.status},
        )
    if to == "fulfilled":
        if r.delivery != "pickup":
            return Conflict("not_for_pickup", f"Redemption {code} is delivered by shipment.")
        if r.status in ("fulfilled", "received"):
            when = r.verified_at.isoformat() if r.verified_at else None
            where = f" at store {r.verified_store} ({when})" if r.verified_store else ""
            return Conflict(
                "code_used",
                f"Code {code} was already used{where}.",
                details={"verified_store": r.verified_store, "verified_at": when},
            )
        if r.code_expires_at <= now:
            return Conflict(
                "code_expired",
                f"Code {code} expired at {r.code_expires_at.isoformat()}.",
                details={"expired_at": r.code_expires_at.isoformat()},
            )
    if to == "shipped" and r.delivery != "ship":
        return Conflict("not_for_shipping", f"Redemption {code} is picked up at a store.")
    return Conflict(
        "invalid_transition",
        f"Redemption {code} is {r.status}; it cannot become {to}.",
        details={"status": r.status},
    )


def _gift_and_member_no(session: Session, r: Redemption) -> tuple[Gift, str | None]:
    """The gift for the event; the member's number comes from the event INSERT's subquery."""
    return service.gift_by_id(session, r.gift_id), None


def _give_back_flash(session: Session, r: Redemption) -> None:
    """A cancelled or returned flash unit goes back to its sale (never below zero: the
    constraint holds it), so the sale has granted exactly its live redemptions' units."""
    if r.flash_sale_id is not None:
        session.execute(
            update(FlashSale)
            .where(FlashSale.id == r.flash_sale_id)
            .values(granted=FlashSale.granted - r.quantity)
            .execution_options(synchronize_session=False)
        )


def cancel(session: Session, ctx: Ctx, code: str, reason: str = "") -> tuple[Redemption, Gift]:
    """Points and stock back, exactly once (the guarded status change decides who cancels)."""
    code = domain.normalize_code(code)
    r = _move(session, ctx, code, "cancelled", cancelled_at=ctx.now, cancel_reason=reason[:200])
    if r is None:
        raise _refuse(session, code, "cancelled", ctx.now)
    reversal = flows.cancel_spend(
        session, ctx, r.member_id, r.spend_posting_id, owner=service.SOURCE_TYPE
    )
    r.reversal_posting_id = reversal.posting_id
    _give_back_flash(session, r)
    stock.release(session, ctx, r, f"redemption {code} cancelled")
    session.flush()
    gift, member_no = _gift_and_member_no(session, r)
    _announce(session, ctx, r, gift, member_no, "cancelled", "mall.redemption_cancelled")
    return r, gift


def verify(session: Session, ctx: Ctx, raw_code: str, store_code: str) -> tuple[Redemption, Gift]:
    """核销: a clerk at ``store_code`` hands a reserved gift over against its code, once."""
    code = domain.normalize_code(raw_code)
    if not code:
        raise Invalid("code_required", "Scan or type the member's redemption code.")
    store = _store(session, store_code)
    assert store is not None
    r = _move(
        session,
        ctx,
        code,
        "fulfilled",
        Redemption.delivery == "pickup",
        Redemption.code_expires_at > ctx.now,
        verified_at=ctx.now,
        verified_store=store.code,
        verified_by=ctx.actor.label[:120],
    )
    if r is None:
        raise _refuse(session, code, "fulfilled", ctx.now)
    stock.hand_over(session, ctx, r, f"picked up at {store.code}")
    gift, member_no = _gift_and_member_no(session, r)
    _announce(session, ctx, r, gift, member_no, "fulfilled", "mall.redemption_fulfilled")
    return r, gift


def ship(
    session: Session, ctx: Ctx, code: str, carrier: str, tracking_no: str
) -> tuple[Redemption, Gift]:
    code = domain.normalize_code(code)
    r = _move(
        session,
        ctx,
        code,
        "shipped",
        Redemption.delivery == "ship",
        carrier=carrier[:32],
        tracking_no=tracking_no[:64],
        shipped_at=ctx.now,
    )
    if r is None:
        raise _refuse(session, code, "shipped", ctx.now)
    stock.hand_over(session, ctx, r, f"shipped by {carrier} {tracking_no}")
    gift, member_no = _gift_and_member_no(session, r)
    _announce(session, ctx, r, gift, member_no, "shipped", "mall.redemption_shipped")
    return r, gift


def return_gift(session: Session, ctx: Ctx, code: str, reason: str = "") -> tuple[Redemption, Gift]:
    """A shipped (or received) gift came back: the unit is on hand again in its warehouse and
    the points go back to the member, exactly once (the guarded status change decides)."""
    code = domain.normalize_code(code)
    r = _move(session, ctx, code, "returned", returned_at=ctx.now, return_reason=reason[:200])
    if r is None:
        raise _refuse(session, code, "returned", ctx.now)
    reversal = flows.cancel_spend(
        session, ctx, r.member_id, r.spend_posting_id, owner=service.SOURCE_TYPE
    )
    r.reversal_posting_id = reversal.posting_id
    # the unit is on hand again, so it is the sale's to grant again (while the sale is open)
    _give_back_flash(session, r)
    stock.take_back(session, ctx, r, f"redemption {code} returned")
    session.flush()
    gift, member_no = _gift_and_member_no(session, r)
    _announce(session, ctx, r, gift, member_no, "returned", "mall.redemption_returned")
    return r, gift


def receive(session: Session, ctx: Ctx, code: str) -> tuple[Redemption, Gift]:
    code = domain.normalize_code(code)
    r = _move(session, ctx, code, "received", received_at=ctx.now)
    if r is None:
        raise _refuse(session, code, "received", ctx.now)
    gift, member_no = _gift_and_member_no(session, r)
    _announce(session, ctx, r, gift, member_no, "received", "mall.redemption_received")
    return r, gift


# --------------------------------------------------------------------------- reads


def of_member(session: Session, member_id: int, limit: int = 50) -> list[tuple[Redemption, Gift]]:
    return [
        (r, g)
        for r, g in session.execute(
            select(Redemption, Gift)
            .join(Gift, Gift.id == Redemption.gift_id)
            .where(Redemption.member_id == member_id)
            .order_by(Redemption.id.desc())
            .limit(limit)
        )
    ]


# --------------------------------------------------------------------------- flash sales


def create_flash_sale(
    session: Session,
    ctx: Ctx,
    gift_code: str,
    *,
    points: int,
    quantity: int,
    per_member_limit: int,
    starts_at: datetime,
    ends_at: datetime,
) -> FlashSale:
    gift = service.get_gift(session, gift_code)
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise Invalid("naive_datetime", "starts_at and ends_at need a timezone")
    if ends_at <= starts_at:
        raise Invalid(
            "invalid_window", "A flash sale must end after it starts.", details={"field": "ends_at"}
        )
    sale = FlashSale(
        gift_id=gift.id,
        points=points,
        quantity=quantity,
        granted=0,
        per_member_limit=per_member_limit,
        starts_at=starts_at,
        ends_at=ends_at,
        created_at=ctx.now,
    )
    session.add(sale)
    session.flush()
    audit.record(
        session,
        ctx.actor,
        "mall.flash_sale_create",
        "mall_flash_sale",
        str(sale.id),
        None,
        {
            "gift_code": gift.code,
            "points": points,
            "quantity": quantity,
            "per_member_limit": per_member_limit,
            "starts_at": starts_at.isoformat(),
            "ends_at": ends_at.isoformat(),
        },
        at=ctx.now,
    )
    return sale


def _flash_snapshot(sale: FlashSale) -> dict[str, Any]:
    return {
        "points": sale.points,
        "quantity": sale.quantity,
        "per_member_limit": sale.per_member_limit,
        "starts_at": sale.starts_at.isoformat(),
        "ends_at": sale.ends_at.isoformat(),
    }


def _locked_sale(session: Session, sale_id: int) -> FlashSale:
    sale = session.scalar(
        select(FlashSale)
        .where(FlashSale.id == sale_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if sale is None:
        raise NotFound("flash_sale_not_found", f"No flash sale {sale_id}.")
    return sale


def update_flash_sale(
    session: Session,
    ctx: Ctx,
    sale_id: int,
    *,
    points: int,
    quantity: int,
    per_member_limit: int,
    starts_at: datetime,
    ends_at: datetime,
) -> FlashSale:
    """Change a flash sale that has not ended. Once it has started its price and start stay
    (members already redeemed at them); its quantity never goes below the units granted."""
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise Invalid("naive_datetime", "starts_at and ends_at need a timezone")
    sale = _locked_sale(session, sale_id)  # the lock: no unit is granted while it changes
    if sale.closed_at is not None or sale.ends_at <= ctx.now:
        raise Conflict("flash_ended", "The flash sale has ended; it can no longer be changed.")
    if sale.starts_at <= ctx.now and (points != sale.points or starts_at != sale.starts_at):
        raise Conflict(
            "flash_started",
            "The flash sale has started: its points and start can no longer change.",
            details={"field": "points" if points != sale.points else "starts_at"},
        )
    if ends_at <= starts_at or ends_at <= ctx.now:
        raise Invalid(
            "invalid_window",
            "A flash sale must end after it starts and after now.",
            details={"field": "ends_at"},
        )
    if quantity < sale.granted:
        raise Conflict(
            "flash_quantity_below_granted",
            f"{sale.granted} units are already granted; the quantity cannot be lower.",
            details={"field": "quantity", "granted": sale.granted},
        )
    before = _flash_snapshot(sale)
    sale.points, sale.quantity, sale.per_member_limit = points, quantity, per_member_limit
    sale.starts_at, sale.ends_at = starts_at, ends_at
    session.flush()
    after = _flash_snapshot(sale)
    if before != after:
        audit.record(
            session,
            ctx.actor,
            "mall.flash_sale_update",
            "mall_flash_sale",
            str(sale.id),
            before,
            after,
            at=ctx.now,
        )
    return sale


def close_flash_sale(session: Session, ctx: Ctx, sale_id: int) -> FlashSale:
    """End a flash sale now: units already granted stay granted (cancel them one by one)."""
    sale = _locked_sale(session, sale_id)
    if sale.closed_at is not None or sale.ends_at <= ctx.now:
        raise Conflict("flash_ended", "The flash sale has already ended.")
    sale.closed_at = ctx.now
    session.flush()
    audit.record(
        session,
        ctx.actor,
        "mall.flash_sale_close",
        "mall_flash_sale",
        str(sale.id),
        None,
        {"granted": sale.granted, "quantity": sale.quantity},
        at=ctx.now,
    )
    return sale


def get_flash_sale(session: Session, sale_id: int) -> tuple[FlashSale, Gift]:
    row = session.execute(
        select(FlashSale, Gift)
        .join(Gift, Gift.id == FlashSale.gift_id)
        .where(FlashSale.id == sale_id)
    ).first()
    if row is None:
        raise NotFound("flash_sale_not_found", f"No flash sale {sale_id}.")
    return row[0], row[1]


def is_open(sale: FlashSale, now: datetime) -> bool:
    return sale.closed_at is None and sale.starts_at <= now < sale.ends_at


def flash_sales(session: Session) -> list[tuple[FlashSale, str]]:
    return [
        (s, c)
        for s, c in session.execute(
            select(FlashSale, Gift.code)
            .join(Gift, Gift.id == FlashSale.gift_id)
            .order_by(FlashSale.starts_at.desc())
        )
    ]
