"""Compile a validated rule tree into ONE select of member ids (no per-member Python).

Every condition is a boolean SQL expression on ``members.id``: plain columns, ``EXISTS`` and
correlated aggregates over orders, so the database plans the whole tree at once.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    exists,
    false,
    func,
    not_,
    or_,
    select,
    true,
)

from patron.analytics.models import MemberRecommendation, MemberScore
from patron.campaigns.models import Campaign, CampaignParticipation
from patron.catalog.models import Category, Product
from patron.ledger.models import PointsAccount
from patron.members.models import Member, MemberConsent, MemberTag, Tag
from patron.orders.models import Order, OrderLine
from patron.segments import domain as d
from patron.segments.models import StaticList, StaticListMember
from patron.segments.personas import PERSONAS
from patron.tiers.models import MemberTier

# Orders that count as purchases: a fully returned order is none.
PURCHASE_STATUSES = ("completed", "partially_returned")


def _purchases(*extra: ColumnElement[bool]) -> list[ColumnElement[bool]]:
    return [Order.member_id == Member.id, Order.status.in_(PURCHASE_STATUSES), *extra]


def _bounded(expr: Any, lo: int | None, hi: int | None) -> ColumnElement[bool]:
    parts = []
    if lo is not None:
        parts.append(expr >= lo)
    if hi is not None:
        parts.append(expr <= hi)
    return and_(*parts)


def last_purchase_at() -> Any:
    return select(func.max(Order.ordered_at)).where(*_purchases()).scalar_subquery()


def lifecycle_stage(now: datetime, s: d.LifecycleSettings) -> ColumnElement[str]:
    """The member's stage as a SQL CASE (see docs/segments.md for the definitions)."""
    new_since = now - timedelta(days=s.new_days)
    active_since = now - timedelta(days=s.active_days)
    churned_before = now - timedelta(days=s.churned_days)
    last = last_purchase_at()
    first = select(func.min(Order.ordered_at)).where(*_purchases()).scalar_subquery()
    return case(
        (
            and_(Member.created_at >= new_since, or_(first.is_(None), first >= new_since)),
            "new",
        ),
        (last >= active_since, "active"),
        (func.coalesce(last, Member.created_at) < churned_before, "churned"),
        else_="dormant",
    )


class _Compiler:
    def __init__(self, now: datetime, tz: ZoneInfo, lifecycle: d.LifecycleSettings) -> None:
        self.now, self.tz, self.lifecycle = now, tz, lifecycle

    def _day_start(self, day: date) -> datetime:
        return datetime.combine(day, time(), self.tz)

    def node(self, n: d.Group | Any) -> ColumnElement[bool]:
        if isinstance(n, d.Group):
            parts = [self.node(r) for r in n.rules]
            return and_(true(), *parts) if n.op == "and" else or_(false(), *parts)
        return self.cond(n)

    def cond(self, c: Any) -> ColumnElement[bool]:
        match c:
            case d.TierCond():
                has = exists().where(
                    MemberTier.member_id == Member.id, MemberTier.tier_code.in_(c.values)
                )
                return has if c.op == "in" else not_(has)
            case d.TagCond():
                return self._tags(c)
            case d.PlaceCond():
                col = Member.city if c.field == "city" else Member.region
                if c.op == "in":
                    return col.in_(c.values)
                return or_(col.is_(None), col.not_in(c.values))
            case d.RegisteredCond():
                parts = []
                if c.on_or_after is not None:
                    parts.append(Member.created_at >= self._day_start(c.on_or_after))
                if c.on_or_before is not None:
                    end = self._day_start(c.on_or_before + timedelta(days=1))
                    parts.append(Member.created_at < end)
                return and_(*parts)
            case d.PointsCond():
                balance = func.coalesce(
                    select(PointsAccount.available)
                    .where(PointsAccount.member_id == Member.id)
                    .scalar_subquery(),
                    0,
                )
                return _bounded(balance, c.min, c.max)
            case d.LifecycleCond():
                return lifecycle_stage(self.now, self.lifecycle).in_(c.values)
            case d.RecencyCond():
                # min days ago → last purchase at or before now - min; max → at or after.
                last = last_purchase_at()
                parts = [last.is_not(None)]
                if c.min is not None:
                    parts.append(last <= self.now - timedelta(days=c.min))
                if c.max is not None:
                    parts.append(last >= self.now - timedelta(days=c.max))
                return and_(*parts)
            case d.OrderCountCond():
                n = (
                    select(func.count(Order.id))
                    .where(*_purchases(*self._window(c.window_days)))
                    .scalar_subquery()
                )
                return _bounded(n, c.min, c.max)
            case d.SpendCond():
                total = func.coalesce(
                    select(func.sum(Order.total_fen - Order.refunded_fen))
                    .where(*_purchases(*self._window(c.window_days)))
                    .scalar_subquery(),
                    0,
                )
                return _bounded(total, c.min, c.max)
            case d.ConsentCond():
                granted = exists().where(
                    MemberConsent.member_id == Member.id,
                    MemberConsent.channel == c.channel,
                    MemberConsent.granted.is_(True),
                )
                return granted if c.granted else not_(granted)
            case d.RfmScoreCond():
                score = {
                    "r": MemberScore.r_score,
                    "f": MemberScore.f_score,
                    "m": MemberScore.m_score,
                }[c.score]
                return exists().where(
                    MemberScore.member_id == Member.id, _bounded(score, c.min, c.max)
                )
            case d.RfmSegmentCond():
                return exists().where(
                    MemberScore.member_id == Member.id, MemberScore.segment.in_(c.values)
                )
            case d.PurchaseCond():
                return self._purchase(c)
            case d.AvgOrderCond():
                avg = (
                    select(func.avg(Order.total_fen - Order.refunded_fen))
                    .where(*_purchases(*self._window(c.window_days)))
                    .scalar_subquery()
                )
                return and_(avg.is_not(None), _bounded(avg, c.min, c.max))
            case d.DiscountShareCond():
                return self._discount_share(c)
            case d.CampaignCond():
                took_part = exists().where(
                    CampaignParticipation.member_id == Member.id,
                    CampaignParticipation.campaign_id == Campaign.id,
                    Campaign.code.in_(c.values),
                    *(
                        [
                            CampaignParticipation.joined_at
                            >= self.now - timedelta(days=c.window_days)
                        ]
                        if c.window_days
                        else []
                    ),
                )
                return took_part if c.op == "any" else not_(took_part)
            case d.ListCond():
                on = exists().where(
                    StaticListMember.member_id == Member.id,
                    StaticListMember.list_id == StaticList.id,
                    StaticList.code.in_(c.values),
                )
                return on if c.op == "in" else not_(on)
            case d.RecommendedCond():
                return self._recommended(c)
            case d.PersonaCond():
                return or_(false(), *(self.node(d.parse_rule(PERSONAS[p].rule)) for p in c.values))
        raise AssertionError(f"unhandled condition {c!r}")  # pragma: no cover

    def _window(self, days: int | None) -> list[ColumnElement[bool]]:
        if days is None:
            return []
        return [Order.ordered_at >= self.now - timedelta(days=days)]

    def _purchase(self, c: d.PurchaseCond) -> ColumnElement[bool]:
        where = _purchases(*self._window(c.window_days))
        if c.stores:
            where.append(Order.store_code.in_(c.stores))
        if c.categories:
            # Net spend on the lines of those categories (less what was refunded on them).
            where += [OrderLine.order_id == Order.id, OrderLine.category.in_(c.categories)]
            amount: Any = OrderLine.net_fen - OrderLine.refunded_fen
        else:
            amount = Order.total_fen - Order.refunded_fen
        if c.min is None and c.max is None:
            return exists().where(*where)
        total = func.coalesce(select(func.sum(amount)).where(*where).scalar_subquery(), 0)
        return _bounded(total, c.min, c.max)

    def _recommended(self, c: d.RecommendedCond) -> ColumnElement[bool]:
        rec = MemberRecommendation
        items = []
        if c.skus:
            items.append(rec.item.in_(c.skus))
        if c.categories:
            in_categories = (
                select(Product.sku)
                .join(Category, Category.id == Product.category_id)
                .where(Category.code.in_(c.categories))
            )
            items.append(rec.item.in_(in_categories))
        # rank 1 is the best: the top N are ranks 1..N (primary key member, kind, rank)
        return exists().where(
            rec.member_id == Member.id, rec.kind == "product", rec.rank <= c.top, or_(*items)
        )

    def _discount_share(self, c: d.DiscountShareCond) -> ColumnElement[bool]:
        where = _purchases(*self._window(c.window_days))
        n = select(func.count(Order.id)).where(*where).scalar_subquery()
        discounted = (
            select(func.count(Order.id)).where(*where, Order.discount_fen > 0).scalar_subquery()
        )
        # Whole numbers only: 100 × discounted against the bound × purchases.
        parts = [n > 0]
        if c.min is not None:
            parts.append(discounted * 100 >= n * c.min)
        if c.max is not None:
            parts.append(discounted * 100 <= n * c.max)
        return and_(*parts)

    def _tags(self, c: d.TagCond) -> ColumnElement[bool]:
        def has(names: list[str]) -> ColumnElement[bool]:
            return exists().where(
                MemberTag.member_id == Member.id,
                MemberTag.tag_id == Tag.id,
                Tag.name.in_(names),
            )

        if c.op == "any":
            return has(c.values)
        if c.op == "none":
            return not_(has(c.values))
        return and_(*(has([v]) for v in dict.fromkeys(c.values)))


def rule_condition(
    rule: d.Group, *, now: datetime, tz: ZoneInfo, lifecycle: d.LifecycleSettings
) -> ColumnElement[bool]:
    """The tree as one boolean expression correlated on ``members`` (active members only)."""
    return and_(Member.status == "active", _Compiler(now, tz, lifecycle).node(rule))


def compile_rule(
    rule: d.Group, *, now: datetime, tz: ZoneInfo, lifecycle: d.LifecycleSettings
) -> Select[int]:
    """One select of the ids of the active members the tree selects (frozen and erased never)."""
    return select(Member.id).where(rule_condition(rule, now=now, tz=tz, lifecycle=lifecycle))
