"""Gather what an order needs in as few statements as possible, one per kind of fact, locks
taken in the fixed order: the order's natural key, the member's points account, then rule
budget rows.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any

from sqlalchemy import bindparam, exists, func, literal, select, true
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session, lazyload

from patron.catalog.models import Category, MemberPrice, Product, Store
from patron.ledger.domain import LotView
from patron.ledger.models import (
    GrowthPosting,
    PointsAccount,
    PointsLot,
    PointsPosting,
)
from patron.ledger.store import dialect, new_account, settling_due
from patron.members.models import Member
from patron.orders.models import Order, RuleBudgetUsage
from patron.orders.plan import MemberFacts, Settings
from patron.tiers import domain as tier_domain
from patron.tiers.models import MemberTier
from patron.webhooks import events


@dataclass(frozen=True, slots=True)
class Arrival:
    """The member an order names, whether the order is already recorded, whether its store
    exists and the categories of its SKUs — one statement."""

    member: Member | None
    existing_order_id: int | None
    store_known: bool
    #: category code by SKU, of the SKUs asked for that exist
    categories: dict[str, str]


def _categories_json(session: Session, skus: Sequence[str]) -> Any:
    """A scalar subquery: the [sku, category code] pairs of ``skus`` as one JSON array."""
    return _categories_subquery(dialect(session), sorted(set(skus)))


def _categories_subquery(dialect_name: str, skus: Any) -> Any:
    pg = dialect_name == "postgresql"
    pair = (
        func.json_build_array(Product.sku, Category.code)
        if pg
        else func.json_array(Product.sku, Category.code)
    )
    agg = func.json_agg(pair) if pg else func.json_group_array(pair)
    return (
        select(agg)
        .select_from(Product)
        .join(Category, Category.id == Product.category_id)
        .where(Product.sku.in_(skus))
        .scalar_subquery()
    )


def _pairs(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, str):  # SQLite returns the JSON text
        value = json.loads(value)
    return {str(sku): str(code) for sku, code in value}


def arrival(
    session: Session,
    member_no: str,
    source: str,
    external_id: str,
    store_code: str | None,
    skus: Sequence[str] = (),
) -> Arrival:
    stmt = _arrival_statement(dialect(session), store_code is not None, bool(skus))
    row = session.execute(
        stmt,
        {
            "member_no": member_no,
            "source": source,
            "external_id": external_id,
            "store_code": store_code,
            "skus": sorted(set(skus)),
        },
    ).first()
    if row is None:  # the caller looks the order up on its own, then answers 404
        return Arrival(None, None, False, {})
    events.prime_subscriptions(session, row[4])
    return Arrival(row[0], row[1], bool(row[2]), _pairs(row[3]))


@cache
def _arrival_statement(dialect_name: str, with_store: bool, with_skus: bool) -> Any:
    """The arrival statement of one shape, built once with bound parameters (see
    ``_facts_statement``)."""
    existing = (
        select(Order.id)
        .where(
            Order.source == bindparam("source", type_=Order.source.type),
            Order.external_id == bindparam("external_id", type_=Order.external_id.type),
        )
        .scalar_subquery()
    )
    store = (
        exists().where(Store.code == bindparam("store_code", type_=Store.code.type))
        if with_store
        else true()
    )
    cats = (
        _categories_subquery(dialect_name, bindparam("skus", expanding=True))
        if with_skus
        else literal(None)
    )
    return (
        select(
            Member,
            existing,
            store.label("store_known"),
            cats.label("categories"),
            # the order emits events: who subscribes is read here, not when it emits
            events.subscriptions_subquery(dialect_name).label("subscriptions"),
        )
        # consents and tags are not needed to record an order
        .options(lazyload("*"))
        .where(Member.member_no == bindparam("member_no", type_=Member.member_no.type))
    )


@dataclass(frozen=True, slots=True)
class PricedProduct:
    """What pricing a basket line needs of its product."""

    sku: str
    is_active: bool
    category: str
    price_fen: int
    #: member price by tier code
    member_prices: dict[str, int]


# Built once: the SKUs are an expanding parameter, so the compiled statement is reused.
_PRICED = (
    select(
        Product.sku,
        Product.is_active,
        Category.code,
        Product.price_fen,
        MemberPrice.tier_code,
        MemberPrice.price_fen,
    )
    .join(Category, Category.id == Product.category_id)
    .outerjoin(MemberPrice, MemberPrice.product_id == Product.id)
    .where(Product.sku.in_(bindparam("skus", expanding=True)))
)


def priced_products(session: Session, skus: Sequence[str]) -> dict[str, PricedProduct]:
    """Products by SKU with their category and member prices, in one statement of columns (a
    quote and a commit price the basket with them; loading ORM objects cost more than the
    statement)."""
    if not skus:
        return {}
    found: dict[str, PricedProduct] = {}
    for sku, active, category, price, tier, member_price in session.execute(
        _PRICED, {"skus": sorted(set(skus))}
    ):
        product = found.get(sku)
        if product is None:
            product = found[sku] = PricedProduct(sku, bool(active), category, int(price), {})
        if tier is not None:
            product.member_prices[tier] = int(member_price)
    return found


def categories(session: Session, skus: Sequence[str]) -> dict[str, str]:
    """Category code by SKU, of the SKUs that exist (all an order needs of its products)."""
    if not skus:
        return {}
    return _pairs(session.scalar(select(_categories_json(session, skus))))


@dataclass(frozen=True, slots=True)
class Account:
    available: int
    debt: int


def lock_account(session: Session, member_id: int, now: datetime) -> Account | None:
    """Take the member's ledger lock (creating the account on first use) with one upsert that
    returns the balances it locked.

    SQLite: the transaction's BEGIN IMMEDIATE already serialises every writer, so there is no
    row to lock; returns None and ``member_facts`` reads the balances with the other facts
    (the writer creates the account if the member has none)."""
    if dialect(session) != "postgresql":
        return None
    stmt = _lock_statement()
    row = session.execute(stmt, new_account(member_id, now)).one()
    return Account(int(row.available), int(row.debt))


@cache
def _lock_statement() -> Any:
    """The account lock's upsert, built once: the new account's values are bound at execution."""
    # The table, not the mapped class: an ORM insert takes the ORM's bulk path, which costs
    # more CPU than this one-row upsert.
    t: Any = PointsAccount.__table__
    ins = postgresql.insert(t)
    return ins.on_conflict_do_update(
        index_elements=[t.c.member_id],
        set_={"version": t.c.version + 1, "updated_at": ins.excluded.updated_at},
    ).returning(t.c.available, t.c.debt)


def member_facts(
    session: Session,
    member: Member,
    account: Account | None,
    settings: Settings,
    *,
    now: datetime,
    day: date,
    tz: Any,
    budgets: list[str],
    source_id: str,
    window_at: datetime | None = None,
) -> MemberFacts:
    """Everything else the plan needs about the member, in one statement (under the lock).
    Growth counts in the qualification window of ``window_at`` (default: now)."""
    mid = member.id
    start = tier_domain.window_start(settings.ladder.qualification_window, window_at or now, tz)
    row = session.execute(
        _facts_statement(account is None),
        {
            "mid": mid,
            "start": start,
            "day": day,
            "now": now,
            "points_earn": f"earn:order:{source_id}",
            "points_redeem": f"redeem:order:{source_id}",
        },
    ).one()
    used: dict[str, int] = {}
    if budgets:
        used = lock_budgets(session, budgets, now)
    return MemberFacts(
        member_id=mid,
        member_no=member.member_no,
        member_since=member.created_at,
        tier_row_code=row.tier,
        override_until=row.override_until,
        window_growth=int(row.window or 0),
        orders_so_far=int(row.n or 0),
        welcome_given=int(row.welcome or 0),
        points_today=int(row.today or 0),
        available=account.available if account else int(row.available or 0),
        debt=account.debt if account else int(row.debt or 0),
        settling_due=bool(row.settling_due),
        keys_taken=bool(row.points_key_taken) or bool(row.growth_key_taken),
        budget_used=used,
        birthday=member.birthday,
    )


@cache
def _facts_statement(with_balances: bool) -> Any:
    """The member-facts statement, built once with bound parameters: building it and its cache
    key for every order cost more CPU than running it. ``with_balances`` when the lock did not
    return the account's balances (SQLite)."""
    mid = bindparam("mid", type_=Order.member_id.type)
    now = bindparam("now", type_=PointsLot.expires_at.type)

    def scalar(q: Any) -> Any:
        return q.scalar_subquery()

    balances = (
        [
            select(col).where(PointsAccount.member_id == mid).scalar_subquery().label(name)
            for name, col in (("available", PointsAccount.available), ("debt", PointsAccount.debt))
        ]
        if with_balances
        else []
    )
    return select(
        scalar(select(func.count(Order.id)).where(Order.member_id == mid)).label("n"),
        scalar(
            select(func.coalesce(func.sum(Order.welcome_bonus), 0)).where(Order.member_id == mid)
        ).label("welcome"),
        scalar(
            select(func.coalesce(func.sum(Order.points_earned), 0)).where(
                Order.member_id == mid,
                Order.business_date == bindparam("day", type_=Order.business_date.type),
            )
        ).label("today"),
        scalar(
            select(func.coalesce(func.sum(GrowthPosting.amount), 0)).where(
                GrowthPosting.member_id == mid,
                GrowthPosting.effective_at
                >= bindparam("start", type_=GrowthPosting.effective_at.type),
            )
        ).label("window"),
        scalar(select(MemberTier.tier_code).where(MemberTier.member_id == mid)).label("tier"),
        scalar(select(MemberTier.override_until).where(MemberTier.member_id == mid)).label(
            "override_until"
        ),
        settling_due(mid, now).label("settling_due"),
        # a posting under the order's keys made elsewhere: the general path replays it
        exists()
        .where(
            PointsPosting.idempotency_key.in_(
                [bindparam("points_earn"), bindparam("points_redeem")]
            )
        )
        .label("points_key_taken"),
        exists()
        .where(GrowthPosting.idempotency_key == bindparam("points_earn"))
        .label("growth_key_taken"),
        *balances,
    )


def lock_budgets(session: Session, rule_ids: list[str], now: datetime) -> dict[str, int]:
    """Create missing budget rows, then lock them in rule order (after the member's account)."""
    ids = sorted(rule_ids)
    existing = set(
        session.scalars(select(RuleBudgetUsage.rule_id).where(RuleBudgetUsage.rule_id.in_(ids)))
    )
    for rule_id in ids:
        if rule_id not in existing:
            session.add(RuleBudgetUsage(rule_id=rule_id, points_used=0, updated_at=now))
    session.flush()
    q = (
        select(RuleBudgetUsage.rule_id, RuleBudgetUsage.points_used)
        .where(RuleBudgetUsage.rule_id.in_(ids))
        .order_by(RuleBudgetUsage.rule_id)
        .with_for_update()
    )
    return {r.rule_id: int(r.points_used) for r in session.execute(q)}


def open_lots(session: Session, member_id: int) -> tuple[LotView, ...]:
    """The member's lots that still hold points, locked in id order (fixed lock order)."""
    stmt = (
        select(PointsLot.id, PointsLot.remaining, PointsLot.expires_at)
        .where(PointsLot.member_id == member_id, PointsLot.remaining > 0)
        .order_by(PointsLot.id)
    )
    if dialect(session) == "postgresql":
        stmt = stmt.with_for_update()
    return tuple(LotView(r.id, r.remaining, r.expires_at) for r in session.execute(stmt))
