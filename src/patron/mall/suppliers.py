"""Suppliers of the mall's gifts (R5): agreements with a validity and terms, quotes per gift,
a monthly comparison of the quotes, and each gift's preferred and backup supplier.

A purchase request goes to the gift's preferred supplier while that supplier has an agreement
in force on the day it is raised, else to the backup (same rule); with neither it is raised
without a supplier and the console says so. Its unit cost is the chosen supplier's latest
quote for the gift. All writes flush, never commit, and are audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patron.audit import service as audit
from patron.errors import Invalid, NotFound
from patron.kit.timeutil import business_date
from patron.ledger.service import Ctx
from patron.mall import domain, service
from patron.mall.models import Gift, GiftSuppliers, Supplier, SupplierAgreement, SupplierQuote


def get(session: Session, code: str) -> Supplier:
    supplier = session.scalar(select(Supplier).where(Supplier.code == code))
    if supplier is None:
        raise NotFound("supplier_not_found", f"No supplier with code {code}.")
    return supplier


def put(
    session: Session,
    ctx: Ctx,
    code: str,
    *,
    name: str,
    contact: str = "",
    is_active: bool = True,
) -> Supplier:
    supplier = session.scalar(select(Supplier).where(Supplier.code == code))
    before = None
    if supplier is None:
        supplier = Supplier(code=code, created_at=ctx.now)
        session.add(supplier)
    else:
        before = {"name": supplier.name, "contact": supplier.contact, "active": supplier.is_active}
    supplier.name, supplier.contact, supplier.is_active = name, contact, is_active
    supplier.updated_at = ctx.now
    session.flush()
    after = {"name": name, "contact": contact, "active": is_active}
    if before != after:
        audit.record(
            session,
            ctx.actor,
            "mall.supplier_put",
            "mall_supplier",
            code,
            before,
            after,
            at=ctx.now,
        )
    return supplier


def add_agreement(
    session: Session,
    ctx: Ctx,
    supplier_code: str,
    *,
    ref: str,
    valid_from: date,
    valid_to: date,
    terms: str = "",
) -> SupplierAgreement:
    supplier = get(session, supplier_code)
    if valid_to < valid_from:
        raise Invalid(
            "invalid_window",
            "An agreement must end on or after the day it starts.",
            details={"field": "valid_to"},
        )
    taken = session.scalar(
        select(SupplierAgreement.id).where(
            SupplierAgreement.supplier_id == supplier.id, SupplierAgreement.ref == ref
        )
    )
    if taken is not None:
        raise Invalid(
            "agreement_exists",
            f"Supplier {supplier_code} already has an agreement {ref}; give the new one its own "
            "reference.",
            details={"field": "ref"},
        )
    row = SupplierAgreement(
        supplier_id=supplier.id,
        ref=ref,
        valid_from=valid_from,
        valid_to=valid_to,
        terms=terms,
        created_at=ctx.now,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        ctx.actor,
        "mall.supplier_agreement",
        "mall_supplier",
        supplier_code,
        None,
        {
            "ref": ref,
            "valid_from": valid_from.isoformat(),
            "valid_to": valid_to.isoformat(),
            "terms": terms,
        },
        at=ctx.now,
    )
    return row


def add_quote(
    session: Session,
    ctx: Ctx,
    supplier_code: str,
    gift_code: str,
    *,
    unit_cost_fen: int,
    quoted_on: date | None = None,
    min_quantity: int = 1,
    lead_days: int = 7,
) -> SupplierQuote:
    supplier = get(session, supplier_code)
    gift = service.get_gift(session, gift_code)
    row = SupplierQuote(
        supplier_id=supplier.id,
        gift_id=gift.id,
        unit_cost_fen=unit_cost_fen,
        min_quantity=min_quantity,
        lead_days=lead_days,
        quoted_on=quoted_on or business_date(ctx.now, ctx.tz),
        created_at=ctx.now,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        ctx.actor,
        "mall.supplier_quote",
        "mall_supplier",
        supplier_code,
        None,
        {
            "gift_code": gift.code,
            "unit_cost_fen": unit_cost_fen,
            "min_quantity": min_quantity,
            "lead_days": lead_days,
            "quoted_on": row.quoted_on.isoformat(),
        },
        at=ctx.now,
    )
    return row


def set_for_gift(
    session: Session, ctx: Ctx, gift_code: str, preferred: str, backup: str | None
) -> GiftSuppliers:
    gift = service.get_gift(session, gift_code)
    if backup is not None and backup == preferred:
        raise Invalid(
            "same_supplier",
            "The backup supplier must differ from the preferred one.",
            details={"field": "backup"},
        )
    pref = get(session, preferred)
    back = get(session, backup) if backup else None
    row = session.get(GiftSuppliers, gift.id)
    before = None
    if row is None:
        row = GiftSuppliers(gift_id=gift.id)
        session.add(row)
    else:
        before = {
            "preferred": _code(session, row.preferred_supplier_id),
            "backup": _code(session, row.backup_supplier_id),
        }
    row.preferred_supplier_id = pref.id
    row.backup_supplier_id = back.id if back else None
    row.updated_at = ctx.now
    session.flush()
    after = {"preferred": preferred, "backup": backup}
    if before != after:
        audit.record(
            session,
            ctx.actor,
            "mall.gift_suppliers",
            "mall_gift",
            gift.code,
            before,
            after,
            at=ctx.now,
        )
    return row


def _code(session: Session, supplier_id: int | None) -> str | None:
    if supplier_id is None:
        return None
    return session.scalar(select(Supplier.code).where(Supplier.id == supplier_id))


def in_force_ids(session: Session, day: date) -> set[int]:
    """Suppliers (active ones) with an agreement in force on ``day``."""
    return set(
        session.scalars(
            select(SupplierAgreement.supplier_id)
            .join(Supplier, Supplier.id == SupplierAgreement.supplier_id)
            .where(
                Supplier.is_active.is_(True),
                SupplierAgreement.valid_from <= day,
                SupplierAgreement.valid_to >= day,
            )
            .distinct()
        )
    )


@dataclass(frozen=True, slots=True)
class Choice:
    supplier: Supplier | None
    role: str | None  # preferred | backup | None
    unit_cost_fen: int | None


def choose(session: Session, gift_id: int, day: date) -> Choice:
    """The supplier a purchase request of a gift goes to on ``day`` and its latest quote."""
    row = session.get(GiftSuppliers, gift_id)
    if row is None:
        return Choice(None, None, None)
    chosen, role = domain.pick_supplier(
        row.preferred_supplier_id, row.backup_supplier_id, in_force_ids(session, day)
    )
    if chosen is None:
        return Choice(None, None, None)
    cost = session.scalar(
        select(SupplierQuote.unit_cost_fen)
        .where(
            SupplierQuote.supplier_id == chosen,
            SupplierQuote.gift_id == gift_id,
            SupplierQuote.quoted_on <= day,
        )
        .order_by(SupplierQuote.quoted_on.desc(), SupplierQuote.id.desc())
        .limit(1)
    )
    return Choice(session.get(Supplier, chosen), role, cost)


@dataclass(frozen=True, slots=True)
class QuoteLine:
    supplier_code: str
    supplier_name: str
    unit_cost_fen: int
    min_quantity: int
    lead_days: int
    quoted_on: date
    role: str | None  # preferred | backup | None
    in_force: bool
    cheapest: bool


@dataclass(frozen=True, slots=True)
class Comparison:
    gift: Gift
    lines: list[QuoteLine]
    complete: bool  # quotes from at least ``min_quotes`` suppliers


def comparison(
    session: Session, month: str, day: date, gift_code: str | None = None
) -> list[Comparison]:
    """The month's quotes per gift: each supplier's latest quote of the month, cheapest first,
    with whether the supplier's agreement is in force on ``day`` (today)."""
    first, last = domain.month_bounds(month)
    settings = service.get_settings(session)
    latest = (
        select(
            SupplierQuote.gift_id,
            SupplierQuote.supplier_id,
            func.max(SupplierQuote.id).label("quote_id"),
        )
        .where(SupplierQuote.quoted_on >= first, SupplierQuote.quoted_on <= last)
        .group_by(SupplierQuote.gift_id, SupplierQuote.supplier_id)
        .subquery()
    )
    stmt = (
        select(SupplierQuote, Supplier, Gift)
        .join(latest, latest.c.quote_id == SupplierQuote.id)
        .join(Supplier, Supplier.id == SupplierQuote.supplier_id)
        .join(Gift, Gift.id == SupplierQuote.gift_id)
        .order_by(Gift.code, SupplierQuote.unit_cost_fen, Supplier.code)
    )
    if gift_code is not None:
        stmt = stmt.where(Gift.code == gift_code)
    roles = {
        r.gift_id: {r.preferred_supplier_id: "preferred", r.backup_supplier_id: "backup"}
        for r in session.scalars(select(GiftSuppliers))
    }
    forced = in_force_ids(session, day)
    grouped: dict[int, tuple[Gift, list[tuple[SupplierQuote, Supplier]]]] = {}
    for quote, supplier, gift in session.execute(stmt):
        grouped.setdefault(gift.id, (gift, []))[1].append((quote, supplier))
    out = []
    for gift_id, (gift, rows) in grouped.items():
        low = min(q.unit_cost_fen for q, _s in rows)
        lines = [
            QuoteLine(
                s.code,
                s.name,
                q.unit_cost_fen,
                q.min_quantity,
                q.lead_days,
                q.quoted_on,
                roles.get(gift_id, {}).get(s.id),
                s.id in forced,
                q.unit_cost_fen == low,
            )
            for q, s in rows
        ]
        out.append(Comparison(gift, lines, len(lines) >= settings.min_quotes))
    return out


@dataclass(frozen=True, slots=True)
class SupplierView:
    supplier: Supplier
    agreements: list[SupplierAgreement]
    in_force: bool


def listing(session: Session, day: date) -> list[SupplierView]:
    suppliers = list(session.scalars(select(Supplier).order_by(Supplier.code)))
    by_supplier: dict[int, list[SupplierAgreement]] = {}
    for a in session.scalars(
        select(SupplierAgreement).order_by(SupplierAgreement.valid_from.desc())
    ):
        by_supplier.setdefault(a.supplier_id, []).append(a)
    forced = in_force_ids(session, day)
    return [SupplierView(s, by_supplier.get(s.id, []), s.id in forced) for s in suppliers]


def gift_suppliers(session: Session) -> dict[int, tuple[str, str | None]]:
    """gift id → (preferred code, backup code)."""
    codes = {int(i): str(c) for i, c in session.execute(select(Supplier.id, Supplier.code))}
    return {
        r.gift_id: (codes[r.preferred_supplier_id], codes.get(r.backup_supplier_id or 0))
        for r in session.scalars(select(GiftSuppliers))
    }


def codes_by_id(session: Session) -> dict[int, str]:
    return {int(i): str(c) for i, c in session.execute(select(Supplier.id, Supplier.code))}
