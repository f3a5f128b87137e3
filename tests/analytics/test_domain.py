"""Pure dashboard calculations: ranges, windows, trend buckets, rounding."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from patron.analytics import domain
from patron.analytics.domain import Ratio

SH = ZoneInfo("Asia/Shanghai")
NY = ZoneInfo("America/New_York")


def test_div_round_rounds_half_away_from_zero():
    assert domain.div_round(64700, 3) == 21567
    assert domain.div_round(5, 2) == 3
    assert domain.div_round(4, 2) == 2
    assert domain.div_round(-5, 2) == -3
    assert domain.div_round(7, 0) == 0


def test_ratio_has_no_value_without_a_denominator():
    assert Ratio(1, 4).value == 0.25
    assert Ratio(0, 0).value is None


@pytest.mark.parametrize(
    ("start", "end", "errors"),
    [
        (date(2026, 1, 1), date(2026, 1, 1), {}),
        (date(2024, 3, 1), date(2026, 3, 1), {}),  # 731 days, a leap day included
        (date(2024, 2, 29), date(2026, 3, 1), {"from": "The range may span at most two years."}),
        (
            date(2026, 1, 2),
            date(2026, 1, 1),
            {"from": "The start date must not be after the end date."},
        ),
        (None, date(2026, 1, 1), {"from": "Enter a start date (YYYY-MM-DD)."}),
        (date(2026, 1, 1), None, {"to": "Enter an end date (YYYY-MM-DD)."}),
    ],
)
def test_range_errors(start, end, errors):
    assert domain.range_errors(start, end) == errors


def test_presets_end_today():
    assert domain.preset_range(date(2026, 3, 1), 7) == (date(2026, 2, 23), date(2026, 3, 1))


def test_months_back_clamps_to_the_month_end():
    assert domain.months_back(date(2026, 5, 31), 3) == date(2026, 2, 28)
    assert domain.months_back(date(2024, 5, 31), 3) == date(2024, 2, 29)
    assert domain.months_back(date(2026, 1, 15), 3) == date(2025, 10, 15)
    assert domain.active_window(date(2026, 3, 1)) == (date(2025, 12, 2), date(2026, 3, 1))


def test_new_member_windows_are_day_iso_week_and_month():
    w = domain.new_member_windows(date(2026, 3, 4))  # a Wednesday
    assert w.day == (date(2026, 3, 4), date(2026, 3, 4))
    assert w.week == (date(2026, 3, 2), date(2026, 3, 4))
    assert w.month == (date(2026, 3, 1), date(2026, 3, 4))


def test_business_days_begin_at_local_midnight_also_across_daylight_saving():
    assert domain.day_start_utc(date(2026, 3, 1), SH) == datetime(2026, 2, 28, 16, tzinfo=UTC)
    # New York switches to summer time on 2026-03-08: that day is 23 hours long.
    start, end = domain.utc_bounds(date(2026, 3, 8), date(2026, 3, 8), NY)
    assert (start, end) == (
        datetime(2026, 3, 8, 5, tzinfo=UTC),
        datetime(2026, 3, 9, 4, tzinfo=UTC),
    )


def test_short_ranges_are_daily_long_ones_weekly():
    b = domain.buckets(date(2026, 2, 1), date(2026, 3, 1))
    assert b.granularity == "day"
    assert len(b.starts) == 29
    assert b.fold({date(2026, 2, 1): 2, date(2026, 3, 1): 5, date(2026, 3, 2): 9})[::28] == [2, 5]
    w = domain.buckets(date(2025, 11, 5), date(2026, 3, 1))  # starts on a Wednesday
    assert w.granularity == "week"
    assert w.starts[0] == date(2025, 11, 5)
    assert w.starts[1] == date(2025, 11, 10)  # then Mondays
    assert w.starts[-1] == date(2026, 2, 23)
    folded = w.fold({date(2025, 11, 5): 1, date(2025, 11, 9): 1, date(2025, 11, 10): 4})
    assert folded[:2] == [2, 4]
    assert len(folded) == len(w.starts)


def test_points_value_drops_fractions_of_a_fen():
    assert domain.points_value_fen(12345, 100, 100) == 12345
    assert domain.points_value_fen(12345, 200, 100) == 6172
    assert domain.as_date("2026-03-01") == date(2026, 3, 1)
    assert domain.as_date(date(2026, 3, 1)) == date(2026, 3, 1)
