"""Pure check-in rules: the streak after a check-in and the points it earns."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, field_validator

SECTION: Final = "checkin"
MAX_POINTS: Final = 100_000


class PlanReward(BaseModel):
    """What one step of the month plan gives: points, a coupon, or both."""

    model_config = ConfigDict(extra="forbid")

    points: int = Field(default=0, ge=0, le=MAX_POINTS)
    #: a coupon template's code
    coupon: str | None = Field(default=None, min_length=1, max_length=64)


class CheckinSettings(BaseModel):
    """Operator-editable check-in settings (program section ``checkin``), seed defaults."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    points_per_day: int = Field(default=5, ge=0, le=MAX_POINTS)
    #: extra points on the day the streak reaches N days (N → points)
    streak_bonuses: dict[int, int] = Field(default_factory=lambda: {7: 20, 30: 100})
    #: after this many days the streak starts again at day 1 (0: it never restarts);
    #: a missed business day always restarts it
    cycle_days: int = Field(default=30, ge=0, le=366)
    #: a coupon on the day the streak reaches N days (N → coupon template code): once a streak
    streak_coupons: dict[int, str] = Field(default_factory=dict, max_length=20)
    #: the month plan: on the check-in that makes N days checked in within the business month
    #: (N → points and/or a coupon), whether or not the days are in a row
    month_plan: dict[int, PlanReward] = Field(default_factory=dict, max_length=31)

    @field_validator("streak_coupons")
    @classmethod
    def _coupons(cls, value: dict[int, str]) -> dict[int, str]:
        for day, template in value.items():
            if not 1 <= day <= 366 or not 1 <= len(template) <= 64:
                raise ValueError("streak coupons map a day 1–366 to a coupon template's code")
        return dict(sorted(value.items()))

    @field_validator("month_plan")
    @classmethod
    def _plan(cls, value: dict[int, PlanReward]) -> dict[int, PlanReward]:
        for days, step in value.items():
            if not 1 <= days <= 31:
                raise ValueError("the month plan counts 1–31 days checked in")
            if not step.points and not step.coupon:
                raise ValueError(f"the month plan's step at {days} days gives nothing")
        return dict(sorted(value.items()))

    @field_validator("streak_bonuses")
    @classmethod
    def _bonuses(cls, value: dict[int, int]) -> dict[int, int]:
        for day, points in value.items():
            if not 1 <= day <= 366 or not 0 <= points <= MAX_POINTS:
                raise ValueError("streak bonuses map a day 1–366 to 0–100000 points")
        return dict(sorted(value.items()))


@dataclass(frozen=True, slots=True)
class Reward:
    streak: int
    points: int
    #: the streak bonus and the month plan's points
    bonus: int
    #: days checked in this business month, today's included
    month_days: int = 0
    #: coupons due: (issue key's part, template code), e.g. ("streak7", "T7")
    coupons: tuple[tuple[str, str], ...] = ()
    #: the codes of the coupons actually issued (service)
    issued: tuple[str, ...] = field(default=())

    @property
    def total(self) -> int:
        return self.points + self.bonus


def next_streak(last_day: date | None, last_streak: int, today: date, cycle_days: int) -> int:
    """The streak on ``today`` given the previous check-in (``last_day`` before today)."""
    if last_day is None or last_day != today - timedelta(days=1):
        return 1
    if cycle_days and last_streak >= cycle_days:
        return 1
    return last_streak + 1


def current_streak(last_day: date | None, last_streak: int, today: date) -> int:
    """The streak shown today: still alive if the last check-in was today or yesterday."""
    if last_day is not None and today - last_day <= timedelta(days=1):
        return last_streak
    return 0


def reward(streak: int, settings: CheckinSettings, month_days: int = 0) -> Reward:
    """Today's points, streak bonus, month plan step and coupons due."""
    bonus = settings.streak_bonuses.get(streak, 0)
    coupons: list[tuple[str, str]] = []
    if streak in settings.streak_coupons:
        coupons.append((f"streak{streak}", settings.streak_coupons[streak]))
    step = settings.month_plan.get(month_days)
    if step is not None:
        bonus += step.points
        if step.coupon:
            coupons.append((f"month{month_days}", step.coupon))
    return Reward(streak, settings.points_per_day, bonus, month_days, tuple(coupons))


def coupon_ref(day: date, part: str) -> str:
    """The coupon issue's reference: the check-in's day and what it rewards. A streak reaches
    day N on one day only, and a month's N-th check-in falls on one day only, so this is once
    per streak (and per month step); a rerun replays."""
    return f"{day.isoformat()}:{part}"


def next_plan_step(month_days: int, settings: CheckinSettings) -> tuple[int, PlanReward] | None:
    """(days still to go, reward) of the month plan's next step, if any."""
    for days, step in settings.month_plan.items():
        if days > month_days:
            return days - month_days, step
    return None


def next_bonus(streak: int, settings: CheckinSettings) -> tuple[int, int] | None:
    """(days still to go, bonus points) of the next streak bonus, if any."""
    for day, points in settings.streak_bonuses.items():
        if day > streak and points > 0 and (not settings.cycle_days or day <= settings.cycle_days):
            return day - streak, points
    return None
