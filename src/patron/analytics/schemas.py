"""What the dashboard service returns: plain integers (fen, points, counts) and ratios."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from patron.analytics.domain import Granularity, Ratio, div_round
from patron.analytics.scope import Scope


@dataclass(frozen=True)
class MemberKpis:
    total: int
    new_day: int
    new_week: int
    new_month: int
    new_in_range: int
    active: int
    active_rate: Ratio


@dataclass(frozen=True)
class SalesKpis:
    orders: int
    net_sales_fen: int
    purchasing_members: int
    repeat_members: int
    repurchase_rate: Ratio
    average_order_fen: int
    #: orders per purchasing member
    frequency: Ratio


@dataclass(frozen=True)
class TierRow:
    code: str
    name: str
    name_zh: str
    members: int
    member_share: Ratio
    net_sales_fen: int
    sales_share: Ratio


@dataclass(frozen=True)
class PointsKpis:
    issued: int
    redeemed: int
    expired: int
    #: spendable now plus pending (return window), over all members
    outstanding: int
    available: int
    pending: int
    debt: int
    liability_fen: int
    #: the configured rate: ``points_per_unit`` points are worth ``unit_fen`` fen
    points_per_unit: int
    unit_fen: int
    #: False in a store, region or channel view: only issued and redeemed are known there
    program_wide: bool = True


@dataclass(frozen=True)
class Trend:
    granularity: Granularity
    labels: list[str]
    new_members: list[int]
    orders: list[int]
    net_sales_fen: list[int]
    points_issued: list[int]
    points_redeemed: list[int]
    points_expired: list[int]

    def as_json(self) -> dict[str, Any]:
        return {
            "granularity": self.granularity,
            "labels": self.labels,
            "new_members": self.new_members,
            "orders": self.orders,
            "net_sales_fen": self.net_sales_fen,
            "points_issued": self.points_issued,
            "points_redeemed": self.points_redeemed,
            "points_expired": self.points_expired,
        }


@dataclass(frozen=True)
class PeriodFigures:
    """The headline figures of a period, compared across periods."""

    start: date
    end: date
    new_members: int
    orders: int
    net_sales_fen: int
    buyers: int
    points_issued: int
    points_redeemed: int

    @property
    def average_order_fen(self) -> int:
        return div_round(self.net_sales_fen, self.orders)

    def figure(self, key: str) -> int:
        return int(getattr(self, key))


@dataclass(frozen=True)
class Dashboard:
    start: date
    end: date
    active_from: date
    members: MemberKpis
    sales: SalesKpis
    tiers: list[TierRow]
    points: PointsKpis
    trend: Trend
    current: PeriodFigures
    #: the same number of days just before ``start``
    previous: PeriodFigures
    #: the same dates a year earlier
    last_year: PeriodFigures
    scope: Scope
