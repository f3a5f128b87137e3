"""Pure check-in rules: the streak after a check-in and the points it earns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, field_validator

SECTION: Final = "checkin"
MAX_POINTS: Final = 100_000


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
    bonus: int

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


def reward(streak: int, settings: CheckinSettings) -> Reward:
    return Reward(streak, settings.points_per_day, settings.streak_bonuses.get(streak, 0))


def next_bonus(streak: int, settings: CheckinSettings) -> tuple[int, int] | None:
    """(days still to go, bonus points) of the next streak bonus, if any."""
    for day, points in settings.streak_bonuses.items():
        if day > streak and points > 0 and (not settings.cycle_days or day <= settings.cycle_days):
            return day - streak, points
    return None
