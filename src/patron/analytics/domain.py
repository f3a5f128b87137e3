"""Pure calculations of the dashboard: date ranges, trend buckets, ratios and rounding.

No database here; the service aggregates in SQL and hands plain numbers to these functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

#: A dashboard range may span at most this many days (two years, leap day included).
MAX_RANGE_DAYS = 731
#: Ranges longer than this are shown as weekly instead of daily trend points.
DAILY_MAX_DAYS = 92
#: "Active" means a purchase within this many calendar months before the range end.
ACTIVE_MONTHS = 3
PRESET_DAYS = (7, 30, 90)

Granularity = Literal["day", "week"]


@dataclass(frozen=True)
class Ratio:
    """A rate kept as its two counts, so nothing is lost before display."""

    numerator: int
    denominator: int

    @property
    def value(self) -> float | None:
        return None if self.denominator == 0 else self.numerator / self.denominator


def div_round(numerator: int, denominator: int) -> int:
    """Integer division rounded half away from zero; 0 when there is nothing to divide by."""
    if denominator == 0:
        return 0
    sign = -1 if (numerator < 0) != (denominator < 0) else 1
    q, r = divmod(abs(numerator), abs(denominator))
    return sign * (q + (1 if 2 * r >= abs(denominator) else 0))


def preset_range(today: date, days: int) -> tuple[date, date]:
    """The last ``days`` business days, today included."""
    return today - timedelta(days=days - 1), today


#: Named ranges of the dashboard (昨日, 本月, 上月, 本年); ``days`` presets come with PRESET_DAYS.
NAMED_PRESETS = ("yesterday", "this_month", "last_month", "this_year")


def named_range(today: date, name: str) -> tuple[date, date]:
    """The business days of a named preset, as of ``today`` (this month and this year run to
    today)."""
    if name == "yesterday":
        day = today - timedelta(days=1)
        return day, day
    if name == "this_month":
        return today.replace(day=1), today
    if name == "last_month":
        end = today.replace(day=1) - timedelta(days=1)
        return end.replace(day=1), end
    if name == "this_year":
        return today.replace(month=1, day=1), today
    raise ValueError(f"unknown preset {name!r}")


def previous_period(start: date, end: date) -> tuple[date, date]:
    """As many days as [start, end], ending the day before ``start``."""
    days = (end - start).days + 1
    return start - timedelta(days=days), start - timedelta(days=1)


def same_period_last_year(start: date, end: date) -> tuple[date, date]:
    """The same dates one year earlier (29 February becomes the 28th)."""
    return months_back(start, 12), months_back(end, 12)


def change(current: int, before: int) -> Ratio | None:
    """The relative change from ``before`` to ``current``; None when there was nothing before
    (a change from zero has no percentage)."""
    if before == 0:
        return None
    return Ratio(current - before, abs(before))


def range_errors(start: date | None, end: date | None) -> dict[str, str]:
    """Field → English message for a range the dashboard refuses."""
    errors: dict[str, str] = {}
    if start is None:
        errors["from"] = "Enter a start date (YYYY-MM-DD)."
    if end is None:
        errors["to"] = "Enter an end date (YYYY-MM-DD)."
    if start is not None and end is not None:
        if start > end:
            errors["from"] = "The start date must not be after the end date."
        elif (end - start).days + 1 > MAX_RANGE_DAYS:
            errors["from"] = "The range may span at most two years."
    return errors


def months_back(day: date, months: int) -> date:
    """``day`` moved back by whole calendar months (clamped to the month's last day)."""
    total = day.year * 12 + day.month - 1 - months
    year, month = divmod(total, 12)
    month += 1
    for d in (day.day, 30, 29, 28):
        try:
            return date(year, month, d)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def active_window(end: date) -> tuple[date, date]:
    """Business days that count for the active rate: the three months ending on ``end``."""
    return months_back(end, ACTIVE_MONTHS) + timedelta(days=1), end


@dataclass(frozen=True)
class NewMemberWindows:
    day: tuple[date, date]
    week: tuple[date, date]
    month: tuple[date, date]


def new_member_windows(end: date) -> NewMemberWindows:
    """The business day ``end``, its ISO week (Monday on) and its month, up to ``end``."""
    return NewMemberWindows(
        day=(end, end),
        week=(end - timedelta(days=end.weekday()), end),
        month=(end.replace(day=1), end),
    )


def day_start_utc(day: date, tz: ZoneInfo) -> datetime:
    """The UTC instant at which business day ``day`` begins."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def utc_bounds(start: date, end: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Half-open UTC interval [start 00:00, day after end 00:00) of business days."""
    return day_start_utc(start, tz), day_start_utc(end + timedelta(days=1), tz)


@dataclass(frozen=True)
class Buckets:
    """Trend points of a range: each business day, or each week for long ranges."""

    granularity: Granularity
    starts: tuple[date, ...]

    def index(self, day: date) -> int:
        first = self.starts[0]
        if self.granularity == "day":
            return (day - first).days
        # Week buckets begin on Mondays; the first one is the range's (partial) first week.
        monday = first - timedelta(days=first.weekday())
        return (day - monday).days // 7

    def labels(self) -> list[str]:
        return [d.isoformat() for d in self.starts]

    def fold(self, by_day: dict[date, int]) -> list[int]:
        """Per-day totals summed into the buckets (days outside the range are ignored)."""
        out = [0] * len(self.starts)
        last = self.starts[-1] + timedelta(days=7 if self.granularity == "week" else 1)
        for day, value in by_day.items():
            if self.starts[0] <= day < last:
                i = self.index(day)
                if 0 <= i < len(out):
                    out[i] += value
        return out


def buckets(start: date, end: date) -> Buckets:
    days = (end - start).days + 1
    if days <= DAILY_MAX_DAYS:
        return Buckets("day", tuple(start + timedelta(days=i) for i in range(days)))
    monday = start - timedelta(days=start.weekday())
    starts = [start]
    week = monday + timedelta(days=7)
    while week <= end:
        starts.append(week)
        week += timedelta(days=7)
    return Buckets("week", tuple(starts))


def as_date(value: date | str) -> date:
    """A day as the database returns it (SQLite gives text)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def points_value_fen(points: int, points_per_unit: int, unit_fen: int) -> int:
    """What ``points`` are worth in fen at the configured rate (fractions of a fen dropped,
    as at checkout)."""
    return points * unit_fen // points_per_unit


def cumulative_per_member(amounts: list[int], members: int) -> list[int | None]:
    """Running totals of a cohort's monthly amounts, each divided by the cohort's size (rounded
    to the fen); None for an empty cohort, which has no per-member figure."""
    out: list[int | None] = []
    total = 0
    for amount in amounts:
        total += amount
        out.append(div_round(total, members) if members else None)
    return out


def shares(counts: dict[str, int]) -> list[tuple[str, Ratio]]:
    """Each key's count as a share of all, largest first (ties by key, so the order is stable)."""
    total = sum(counts.values())
    return [(k, Ratio(n, total)) for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
