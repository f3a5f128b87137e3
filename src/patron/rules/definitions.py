"""Earning rules as data (SPEC P2, P3): the validated models an operator edits.

The whole rule set is one document, :class:`EarningRules`, stored as the program settings
section ``"earning"``. Every default below is the seed's value (002: 1 point per CNY, first
purchase +10 %, 1,000 welcome points in the first 3 months, growth 1 per CNY, "积分累积无上限" —
so no daily cap by default). Amounts are integer fen, rates integer basis points (10000 = 100 %).
The engine that applies these rules is :mod:`patron.rules.domain`.
"""

from __future__ import annotations

from datetime import date, timedelta
from enum import StrEnum
from itertools import pairwise
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from patron.kit.buckets import in_share

BP = 10_000  # basis points in 100 %
#: ×10 is the ceiling for any coefficient or multiplier: 100000 typed for 10000 is a typo we catch
MAX_FACTOR_BP = 10 * BP
#: bounds shared with the ledger: a single posting never exceeds a trillion points
MAX_POINTS = 1_000_000_000_000
#: bound on one line's amount (10^15 fen); Python ints are exact, this only rejects garbage
MAX_FEN = 1_000_000_000_000_000

#: Operator-chosen rule ids are lower-case slugs without ``:``; generated ids for category
#: coefficients and tiers (``category:beauty``, ``tier:gold``) contain ``:`` so they never collide.
RuleId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,47}$")]
CategoryCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
FactorBp = Annotated[int, Field(ge=0, le=MAX_FACTOR_BP)]
Budget = Annotated[int, Field(ge=0, le=MAX_POINTS)]


class Rounding(StrEnum):
    """How a fractional point becomes an integer ("每满10元积1分" is floor)."""

    FLOOR = "floor"
    HALF_UP = "half_up"
    CEIL = "ceil"


class Combine(StrEnum):
    """How the tier multiplier and the active time-window multipliers combine."""

    HIGHEST = "highest"  # only the largest multiplier applies ("取高不叠加")
    MULTIPLY = "multiply"  # all of them multiply


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BaseRate(_Data):
    """``points`` points for every ``per_fen`` fen paid: 1 per 100 fen (1 per CNY) by default;
    the seeds' alternative "1 point per 10 CNY" is ``per_fen=1000``."""

    id: RuleId = "base"
    points: int = Field(default=1, ge=1, le=10_000)
    per_fen: int = Field(default=100, ge=1, le=1_000_000)


class Holdout(_Data):
    """A control group kept out of a window (A/B test): members whose bucket of ``experiment``
    (``kit.buckets``) is below ``control_bp`` earn without the window's multiplier."""

    experiment: str = Field(min_length=1, max_length=64)
    control_bp: int = Field(ge=0, le=5_000)


class _Window(_Data):
    id: RuleId
    name: str = Field(default="", max_length=100)
    multiplier_bp: int = Field(default=2 * BP, ge=BP, le=MAX_FACTOR_BP)
    #: most points this window may give across all members (a campaign budget); None = unlimited
    budget_points: Budget | None = None
    #: audience: tier codes the window applies to (empty: every tier)
    tiers: tuple[Annotated[str, Field(min_length=1, max_length=32)], ...] = Field(
        default=(), max_length=50
    )
    #: audience: members who joined on these business dates (inclusive); None = no bound
    joined_from: date | None = None
    joined_until: date | None = None
    holdout: Holdout | None = None
    #: the campaign that owns the window (campaign windows are compiled by ``patron.campaigns``)
    campaign_id: int | None = None


class DateRangeWindow(_Window):
    """Double-points days and holidays: business dates ``start``..``end`` inclusive."""

    kind: Literal["date_range"] = "date_range"
    start: date
    end: date

    @model_validator(mode="after")
    def _check_range(self) -> Self:
        if self.end < self.start:
            raise ValueError(f"window {self.id}: end {self.end} is before start {self.start}")
        if self.end - self.start > timedelta(days=366):
            raise ValueError(f"window {self.id}: a date range may span at most 366 days")
        return self


class _Recurring(_Window):
    #: optional business dates bounding when the recurring window is in force
    active_from: date | None = None
    active_until: date | None = None

    @model_validator(mode="after")
    def _check_active(self) -> Self:
        if self.active_from and self.active_until and self.active_until < self.active_from:
            raise ValueError(f"window {self.id}: active_until is before active_from")
        return self

    def in_force(self, day: date) -> bool:
        if self.active_from is not None and day < self.active_from:
            return False
        return self.active_until is None or day <= self.active_until


class MonthlyWindow(_Recurring):
    """A member day (会员日) on given days of every month; day 31 simply does not occur in
    shorter months (use a date range for "last day of the month")."""

    kind: Literal["monthly"] = "monthly"
    days: tuple[Annotated[int, Field(ge=1, le=31)], ...] = Field(min_length=1, max_length=31)

    @model_validator(mode="after")
    def _check_days(self) -> Self:
        if len(set(self.days)) != len(self.days):
            raise ValueError(f"window {self.id}: days of the month repeat")
        return self


class WeeklyWindow(_Recurring):
    """Weekly days, ISO numbering: 1 = Monday … 7 = Sunday."""

    kind: Literal["weekly"] = "weekly"
    weekdays: tuple[Annotated[int, Field(ge=1, le=7)], ...] = Field(min_length=1, max_length=7)

    @model_validator(mode="after")
    def _check_weekdays(self) -> Self:
        if len(set(self.weekdays)) != len(self.weekdays):
            raise ValueError(f"window {self.id}: weekdays repeat")
        return self


class LastWeekendWindow(_Recurring):
    """A redemption day on the last weekend of every month: its last Saturday and the Sunday
    after it when that Sunday is still in the month (a month ending on a Saturday has one day)."""

    kind: Literal["last_weekend"] = "last_weekend"


class AnnualWindow(_Recurring):
    """An annual carnival: the same dates every year, month-day to month-day inclusive; an end
    before the start runs over the new year (12-20 .. 01-05)."""

    kind: Literal["annual"] = "annual"
    start_month: int = Field(ge=1, le=12)
    start_day: int = Field(ge=1, le=31)
    end_month: int = Field(ge=1, le=12)
    end_day: int = Field(ge=1, le=31)

    @model_validator(mode="after")
    def _check_days(self) -> Self:
        for month, day in ((self.start_month, self.start_day), (self.end_month, self.end_day)):
            date(2024, month, day)  # a leap year: 02-29 is allowed, 04-31 is not
        return self


class BirthdayMonthWindow(_Recurring):
    """Birthday-month privileges: the whole calendar month of each member's birthday."""

    kind: Literal["birthday_month"] = "birthday_month"


AnyWindow = (
    DateRangeWindow
    | MonthlyWindow
    | WeeklyWindow
    | LastWeekendWindow
    | AnnualWindow
    | BirthdayMonthWindow
)
TimeWindow = Annotated[AnyWindow, Field(discriminator="kind")]


def last_weekend(day: date) -> bool:
    """Whether ``day`` is the last Saturday of its month or the Sunday right after it."""
    saturday = day - timedelta(days=1) if day.isoweekday() == 7 else day
    if saturday.isoweekday() != 6 or saturday.month != day.month:
        return False
    return (saturday + timedelta(days=7)).month != saturday.month


def window_active(window: AnyWindow, day: date) -> bool:
    """Whether ``window``'s schedule is on for the business date ``day`` (a birthday-month
    window is on every day it is in force; ``applies_to`` checks the member's month)."""
    if isinstance(window, DateRangeWindow):
        return window.start <= day <= window.end
    if not window.in_force(day):
        return False
    if isinstance(window, MonthlyWindow):
        return day.day in window.days
    if isinstance(window, WeeklyWindow):
        return day.isoweekday() in window.weekdays
    if isinstance(window, LastWeekendWindow):
        return last_weekend(day)
    if isinstance(window, AnnualWindow):
        here = (day.month, day.day)
        start = (window.start_month, window.start_day)
        end = (window.end_month, window.end_day)
        return start <= here <= end if start <= end else (here >= start or here <= end)
    return True


def applies_to(
    window: AnyWindow,
    day: date,
    *,
    member_id: int | None,
    tier_code: str | None,
    joined: date | None,
    birthday: date | None,
) -> bool:
    """Whether ``window`` (active on ``day``) applies to this member: its audience, the
    member's birthday month, and not in the window's control group."""
    if window.tiers and tier_code not in window.tiers:
        return False
    if window.joined_from is not None and (joined is None or joined < window.joined_from):
        return False
    if window.joined_until is not None and (joined is None or joined > window.joined_until):
        return False
    if isinstance(window, BirthdayMonthWindow) and (
        birthday is None or birthday.month != day.month
    ):
        return False
    if window.holdout is not None:
        if member_id is None:
            return False
        if in_share(window.holdout.experiment, member_id, window.holdout.control_bp):
            return False
    return True


class FirstPurchaseBonus(_Data):
    """+``bonus_bp`` of the order's base points on the member's first purchase (seed: +10 %)."""

    id: RuleId = "first_purchase"
    enabled: bool = True
    bonus_bp: int = Field(default=1_000, ge=0, le=MAX_FACTOR_BP)
    min_paid_fen: int = Field(default=1, ge=1, le=MAX_FEN)
    budget_points: Budget | None = None


class WelcomeBonus(_Data):
    """``points`` once, on an order within ``within_months`` of joining (seed: 1,000 / 3)."""

    id: RuleId = "welcome"
    enabled: bool = True
    points: int = Field(default=1_000, ge=0, le=1_000_000)
    within_months: int = Field(default=3, ge=1, le=36)
    #: the order must pay at least this much, so a zero-cash order cannot farm the bonus
    min_paid_fen: int = Field(default=1, ge=1, le=MAX_FEN)
    budget_points: Budget | None = None


class ProfileCompletionBonus(_Data):
    """``points`` once when the profile is complete (M2/P3). The seeds give no amount; 200."""

    id: RuleId = "profile_completion"
    enabled: bool = True
    points: int = Field(default=200, ge=0, le=1_000_000)
    budget_points: Budget | None = None


class GrowthRule(_Data):
    """Growth value (成长值): ``growth`` per ``per_fen`` fen paid, times its own category
    coefficients; no multipliers, bonuses or caps (growth measures spending, it is not a reward)."""

    id: RuleId = "growth"
    growth: int = Field(default=1, ge=0, le=10_000)
    per_fen: int = Field(default=100, ge=1, le=1_000_000)
    rounding: Rounding = Rounding.FLOOR
    category_coefficients: dict[CategoryCode, FactorBp] = Field(default_factory=dict)


class EarningRules(_Data):
    """The complete, operator-editable earning rule set (settings section ``"earning"``)."""

    base: BaseRate = Field(default_factory=BaseRate)
    #: applied to the order's points once per stage of the trace (see docs/rules.md)
    rounding: Rounding = Rounding.FLOOR
    #: category code → coefficient; categories not listed earn ×1 (10000)
    category_coefficients: dict[CategoryCode, FactorBp] = Field(default_factory=dict)
    combine: Combine = Combine.HIGHEST
    #: date ranges listed in start order without overlaps; recurring windows in any order
    windows: tuple[TimeWindow, ...] = Field(default=(), max_length=200)
    first_purchase: FirstPurchaseBonus = Field(default_factory=FirstPurchaseBonus)
    welcome: WelcomeBonus = Field(default_factory=WelcomeBonus)
    profile_completion: ProfileCompletionBonus = Field(default_factory=ProfileCompletionBonus)
    growth: GrowthRule = Field(default_factory=GrowthRule)
    #: most points one member may earn per business day from these rules; None = no cap
    daily_cap_points: int | None = Field(default=None, ge=1, le=MAX_POINTS)

    @model_validator(mode="after")
    def _check_consistency(self) -> Self:
        ids = [
            self.base.id,
            *(w.id for w in self.windows),
            self.first_purchase.id,
            self.welcome.id,
            self.profile_completion.id,
            self.growth.id,
        ]
        seen: set[str] = set()
        for rule_id in ids:
            if rule_id in seen:
                raise ValueError(f"rule id {rule_id!r} is used twice; rule ids must be unique")
            seen.add(rule_id)
        # campaign windows may overlap (several campaigns on one day): only the operator's
        # own date ranges must be listed in order without overlaps
        ranges = [
            w for w in self.windows if isinstance(w, DateRangeWindow) and w.campaign_id is None
        ]
        for before, after in pairwise(ranges):
            if after.start <= before.end:
                raise ValueError(
                    f"date windows {before.id!r} ({before.start}..{before.end}) and {after.id!r} "
                    f"({after.start}..{after.end}) overlap or are out of order; list date "
                    "ranges by start date without overlaps"
                )
        return self

    def budgeted_rules(self) -> dict[str, int]:
        """Rule id → total budget, for every rule that has one."""
        rules: list[_Window | FirstPurchaseBonus | WelcomeBonus | ProfileCompletionBonus] = [
            *self.windows,
            self.first_purchase,
            self.welcome,
            self.profile_completion,
        ]
        return {r.id: r.budget_points for r in rules if r.budget_points is not None}


class CampaignWindows(_Data):
    """The windows the campaigns compile (program section ``campaign_windows``): the order path
    adds them to the operator's own windows (``patron.orders.service.rules_in_force``)."""

    windows: tuple[TimeWindow, ...] = Field(default=(), max_length=1_000)

    def merged(self, rules: EarningRules) -> EarningRules:
        if not self.windows:
            return rules
        return rules.model_copy(update={"windows": (*rules.windows, *self.windows)})
