"""Mall settings and the gift catalogue (R1). Stock, redemptions, flash sales and lotteries
have modules of their own; all of them flush, never commit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patron import context
from patron.audit import service as audit
from patron.auth.principal import Principal
from patron.errors import Invalid, NotFound
from patron.ledger import service as ledger
from patron.mall import domain
from patron.mall.domain import SECTION, GiftRules, MallSettings
from patron.mall.models import Gift, PriceChange, Redemption, Stock
from patron.mall.schemas import GiftIn
from patron.members.models import Member
from patron.program import service as program
from patron.risk import domain as risk_domain
from patron.tiers import service as tiers

#: the source type of the points postings mall redemptions make (their spend is cancelled only
#: by cancelling the redemption, which also gives the stock back)
SOURCE_TYPE = "mall"
LOTTERY_SOURCE = "mall_lottery"


def get_settings(session: Session) -> MallSettings:
    return program.get_section(session, SECTION, MallSettings)


def put_settings(session: Session, actor: Principal, value: MallSettings, now: datetime) -> None:
    program.put_section(session, actor, SECTION, value, now=now)


#: the sections a mall write reads besides those of every context (one preload statement):
#: the mall's own and the risk review's (the redemption's risk check)
SECTIONS: dict[str, type[BaseModel]] = {
    SECTION: MallSettings,
    risk_domain.SECTION: risk_domain.RiskSettings,
}


def make_ctx(session: Session, actor: Principal, now: datetime, tz: ZoneInfo) -> ledger.Ctx:
    """The context of a job, CLI or test; a request builds it with ``web.context.request_ctx``
    and ``SECTIONS``."""
    return context.build(session, actor, now, tz, SECTIONS)


def member_no_of(session: Session, member_id: int) -> str:
    return str(session.scalar(select(Member.member_no).where(Member.id == member_id)))


def check_warehouse(settings: MallSettings, code: str) -> None:
    if code not in settings.warehouse_codes():
        raise NotFound(
            "warehouse_not_found",
            f"No warehouse {code!r}; the warehouses are {', '.join(settings.warehouse_codes())}.",
            details={"warehouse": code},
        )


# --------------------------------------------------------------------------- gifts


def rules_of(gift: Gift) -> GiftRules:
    return GiftRules(
        code=gift.code,
        points=gift.points,
        is_active=gift.is_active,
        min_tier=gift.min_tier,
        sale_starts_at=gift.sale_starts_at,
        sale_ends_at=gift.sale_ends_at,
        limit_per_member=gift.limit_per_member,
        limit_window=gift.limit_window,
    )


def _snapshot(g: Gift) -> dict[str, Any]:
    return {
        "name": g.name,
        "category": g.category,
        "points": g.points,
        "cash_fen": g.cash_fen,
        "min_tier": g.min_tier,
        "sale_starts_at": g.sale_starts_at.isoformat() if g.sale_starts_at else None,
        "sale_ends_at": g.sale_ends_at.isoformat() if g.sale_ends_at else None,
        "limit_per_member": g.limit_per_member,
        "limit_window": g.limit_window,
        "active": g.is_active,
    }


def upsert_gift(session: Session, actor: Principal, data: GiftIn, *, now: datetime) -> Gift:
    settings = get_settings(session)
    if data.category not in settings.categories:
        raise Invalid(
            "unknown_category",
            f"Category {data.category!r} is not one of the mall's categories "
            f"({', '.join(settings.categories)}); add it in the mall settings first.",
            details={"field": "category"},
        )
    if data.min_tier is not None:
        codes = [t.code for t in tiers.get_ladder(session).tiers]
        if data.min_tier not in codes:
            raise Invalid(
                "unknown_tier",
                f"Tier {data.min_tier!r} is not on the ladder ({', '.join(codes)}).",
                details={"field": "min_tier"},
            )
    for field in ("sale_starts_at", "sale_ends_at"):
        value = getattr(data, field)
        if value is not None and value.tzinfo is None:
            raise Invalid("naive_datetime", f"{field} needs a timezone", details={"field": field})
    if data.sale_starts_at and data.sale_ends_at and data.sale_ends_at <= data.sale_starts_at:
        raise Invalid(
            "invalid_window",
            "The sale window must end after it starts.",
            details={"field": "sale_ends_at"},
        )
    gift = session.scalar(select(Gift).where(Gift.code == data.code))
    before = _snapshot(gift) if gift else None
    if gift is None:
        gift = Gift(code=data.code, created_at=now)
        session.add(gift)
    elif gift.points != data.points:
        # the operator's price: the history keeps it, and a markdown in progress ends
        session.add(
            PriceChange(
                gift_id=gift.id,
                old_points=gift.points,
                new_points=data.points,
                reason="operator",
                actor=actor.label[:120],
                created_at=now,
            )
        )
        gift.base_points = None
    for name in (
        "name",
        "description",
        "category",
        "points",
        "cash_fen",
        "min_tier",
        "sale_starts_at",
        "sale_ends_at",
        "limit_per_member",
        "limit_window",
        "is_active",
    ):
        setattr(gift, name, getattr(data, name))
    gift.updated_at = now
    session.flush()
    after = _snapshot(gift)
    if before != after:
        action = "mall.gift_create" if before is None else "mall.gift_update"
        audit.record(session, actor, action, "mall_gift", gift.code, before, after, at=now)
    return gift


def get_gift(session: Session, code: str) -> Gift:
    gift = session.scalar(select(Gift).where(Gift.code == code))
    if gift is None:
        raise NotFound("gift_not_found", f"No gift with code {code}.")
    return gift


@dataclass(frozen=True, slots=True)
class GiftView:
    gift: Gift
    available: int
    band: int
    band_label: str
    hot: bool


def hot_gift_ids(session: Session, settings: MallSettings, now: datetime) -> set[int]:
    """The "hot" tag: the most redeemed gifts (units, neither cancelled nor returned) of the
    last days."""
    if settings.hot_top == 0:
        return set()
    rows = session.execute(
        select(Redemption.gift_id, func.sum(Redemption.quantity).label("n"))
        .where(
            Redemption.status.not_in(domain.UNDONE),
            Redemption.created_at >= now - timedelta(days=settings.hot_days),
        )
        .group_by(Redemption.gift_id)
        .order_by(func.sum(Redemption.quantity).desc(), Redemption.gift_id)
        .limit(settings.hot_top)
    )
    return {int(r.gift_id) for r in rows}


def browse(
    session: Session,
    now: datetime,
    *,
    category: str | None = None,
    band: int | None = None,
    include_closed: bool = False,
) -> list[GiftView]:
    """Gifts with their available stock (all warehouses), value band and hot tag. Members see
    gifts on offer now; staff (``include_closed``) see every gift."""
    settings = get_settings(session)
    avail = (
        select(Stock.gift_id, func.sum(Stock.on_hand - Stock.reserved).label("available"))
        .group_by(Stock.gift_id)
        .subquery()
    )
    stmt = (
        select(Gift, func.coalesce(avail.c.available, 0))
        .outerjoin(avail, avail.c.gift_id == Gift.id)
        .order_by(Gift.category, Gift.points, Gift.code)
    )
    if category:
        stmt = stmt.where(Gift.category == category)
    if not include_closed:
        stmt = stmt.where(
            Gift.is_active.is_(True),
            (Gift.sale_starts_at.is_(None)) | (Gift.sale_starts_at <= now),
            (Gift.sale_ends_at.is_(None)) | (Gift.sale_ends_at > now),
        )
    hot = hot_gift_ids(session, settings, now)
    out: list[GiftView] = []
    for gift, available in session.execute(stmt):
        b = domain.value_band(gift.points, settings.band_bounds)
        if band is not None and b != band:
            continue
        out.append(
            GiftView(
                gift,
                int(available),
                b,
                domain.band_label(b, settings.band_bounds),
                gift.id in hot,
            )
        )
    return out


def view(session: Session, gift: Gift, now: datetime) -> GiftView:
    settings = get_settings(session)
    available = session.scalar(
        select(func.coalesce(func.sum(Stock.on_hand - Stock.reserved), 0)).where(
            Stock.gift_id == gift.id
        )
    )
    b = domain.value_band(gift.points, settings.band_bounds)
    return GiftView(
        gift,
        int(available or 0),
        b,
        domain.band_label(b, settings.band_bounds),
        gift.id in hot_gift_ids(session, settings, now),
    )


def gift_by_id(session: Session, gift_id: int) -> Gift:
    gift = session.get(Gift, gift_id)
    if gift is None:
        raise NotFound("gift_not_found", f"No gift {gift_id}.")
    return gift
