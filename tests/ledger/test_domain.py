"""Pure ledger rules: allocation order, expiry dates, clawback, debt, amount validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patron.errors import Invalid
from patron.ledger.domain import (
    MAX_EXPIRY_N,
    MAX_POINTS_PER_POSTING,
    ExpiryPolicy,
    InsufficientPoints,
    LotView,
    allocate,
    compute_expiry,
    debt_repayment,
    last_valid_day,
    proportional_clawback,
    split_clawback,
    validate_points,
    validate_signed_points,
)

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


def at(days: int) -> datetime:
    return NOW + timedelta(days=days)


# ----------------------------------------------------------------------------- allocation


def test_allocate_soonest_expiring_first_ties_by_id_never_last() -> None:
    lots = [
        LotView(1, 100, None),
        LotView(2, 100, at(30)),
        LotView(3, 100, at(10)),
        LotView(4, 100, at(10)),
    ]
    takes = allocate(lots, 350, now=NOW)
    assert [(t.lot_id, t.amount) for t in takes] == [(3, 100), (4, 100), (2, 100), (1, 50)]


def test_allocate_skips_expired_and_empty_lots() -> None:
    lots = [LotView(1, 100, at(-1)), LotView(2, 0, at(5)), LotView(3, 40, at(6))]
    assert [(t.lot_id, t.amount) for t in allocate(lots, 40, now=NOW)] == [(3, 40)]
    with pytest.raises(InsufficientPoints) as err:
        allocate(lots, 41, now=NOW)
    assert err.value.code == "insufficient_points"
    assert err.value.status == 409


def test_allocate_expiry_boundary_is_exclusive() -> None:
    # a lot expiring exactly now is already gone
    with pytest.raises(InsufficientPoints):
        allocate([LotView(1, 10, NOW)], 1, now=NOW)


def test_allocate_prefers_given_lots() -> None:
    lots = [LotView(1, 50, at(1)), LotView(2, 50, at(100))]
    takes = allocate(lots, 60, now=NOW, prefer=[2])
    assert [(t.lot_id, t.amount) for t in takes] == [(2, 50), (1, 10)]


lot_strategy = st.lists(
    st.builds(
        LotView,
        id=st.integers(1, 10_000),
        remaining=st.integers(0, 1_000),
        expires_at=st.one_of(st.none(), st.integers(-50, 400).map(at)),
    ),
    max_size=30,
    unique_by=lambda lot: lot.id,
)


@given(lots=lot_strategy, amount=st.integers(1, 20_000))
def test_allocate_properties(lots: list[LotView], amount: int) -> None:
    live = {
        lot.id: lot for lot in lots if lot.remaining > 0 and (lot.expires_at or at(10**4)) > NOW
    }
    total = sum(lot.remaining for lot in live.values())
    if amount > total:
        with pytest.raises(InsufficientPoints):
            allocate(lots, amount, now=NOW)
        return
    takes = allocate(lots, amount, now=NOW)
    assert sum(t.amount for t in takes) == amount
    assert len({t.lot_id for t in takes}) == len(takes)
    for t in takes:
        assert t.lot_id in live
        assert 0 < t.amount <= live[t.lot_id].remaining
    # every lot except the last is fully used, and nothing sooner-expiring was skipped
    for t in takes[:-1]:
        assert t.amount == live[t.lot_id].remaining
    used = {t.lot_id for t in takes}
    far = at(10**5)
    latest_used = max((live[i].expires_at or far, i) for i in used)
    for lot in live.values():
        if lot.id not in used:
            assert (lot.expires_at or far, lot.id) > latest_used


# ----------------------------------------------------------------------------- expiry


def test_expiry_days_after_ends_at_local_midnight() -> None:
    # earned 2026-03-01 10:00 Shanghai; 365 days → valid through 2027-03-01 local
    earned = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
    expires = compute_expiry(earned, ExpiryPolicy(), SH)
    assert expires == datetime(2027, 3, 1, 16, 0, tzinfo=UTC)  # 2027-03-02 00:00 +08:00
    assert expires is not None
    assert last_valid_day(expires, SH).isoformat() == "2027-03-01"


def test_expiry_uses_business_day_not_utc_day() -> None:
    # 2026-03-01 20:00 UTC is already 2026-03-02 in Shanghai
    earned = datetime(2026, 3, 1, 20, 0, tzinfo=UTC)
    expires = compute_expiry(earned, ExpiryPolicy(kind="days_after", n=1), SH)
    assert expires == datetime(2026, 3, 3, 16, 0, tzinfo=UTC)


def test_expiry_end_of_month_plus_n() -> None:
    earned = datetime(2026, 1, 31, 1, 0, tzinfo=UTC)
    assert compute_expiry(earned, ExpiryPolicy(kind="end_of_month", n=0), SH) == datetime(
        2026, 1, 31, 16, 0, tzinfo=UTC
    )
    assert compute_expiry(earned, ExpiryPolicy(kind="end_of_month", n=1), SH) == datetime(
        2026, 2, 28, 16, 0, tzinfo=UTC
    )
    assert compute_expiry(earned, ExpiryPolicy(kind="end_of_month", n=11), SH) == datetime(
        2026, 12, 31, 16, 0, tzinfo=UTC
    )
    assert compute_expiry(earned, ExpiryPolicy(kind="end_of_month", n=12), SH) == datetime(
        2027, 1, 31, 16, 0, tzinfo=UTC
    )


def test_expiry_end_of_year_and_never() -> None:
    earned = datetime(2026, 12, 31, 15, 0, tzinfo=UTC)  # 23:00 on Dec 31 in Shanghai
    assert compute_expiry(earned, ExpiryPolicy(kind="end_of_year", n=0), SH) == datetime(
        2026, 12, 31, 16, 0, tzinfo=UTC
    )
    later = datetime(2026, 12, 31, 16, 0, tzinfo=UTC)  # already 2027 locally
    assert compute_expiry(later, ExpiryPolicy(kind="end_of_year", n=1), SH) == datetime(
        2028, 12, 31, 16, 0, tzinfo=UTC
    )
    assert compute_expiry(earned, ExpiryPolicy(kind="never"), SH) is None


def test_expiry_policies_longer_than_a_century_are_refused() -> None:
    """An end-of-year policy of thousands of years would pass the calendar's year 9999 and make
    every earning fail after it was saved; a century of any unit is the limit."""
    for kind, limit in (("days_after", 36_500), ("end_of_month", 1_200), ("end_of_year", 100)):
        ExpiryPolicy(kind=kind, n=limit)
        with pytest.raises(ValueError, match="less than or equal"):
            ExpiryPolicy(kind=kind, n=limit + 1)
    # the longest allowed policies still give a date for points earned today
    earned = datetime(2026, 11, 30, tzinfo=UTC)
    assert compute_expiry(earned, ExpiryPolicy(kind="end_of_year", n=100), SH) is not None


def test_expiry_rejects_naive() -> None:
    with pytest.raises(ValueError, match="aware"):
        compute_expiry(datetime(2026, 1, 1), ExpiryPolicy(), SH)  # noqa: DTZ001


@given(
    minutes=st.integers(0, 60 * 24 * 365 * 30),
    policy=st.sampled_from(["days_after", "end_of_month", "end_of_year"]).flatmap(
        lambda kind: st.builds(
            ExpiryPolicy, kind=st.just(kind), n=st.integers(0, min(400, MAX_EXPIRY_N[kind]))
        )
    ),
    tz=st.sampled_from([SH, ZoneInfo("UTC"), ZoneInfo("America/New_York")]),
)
def test_expiry_properties(minutes: int, policy: ExpiryPolicy, tz: ZoneInfo) -> None:
    earned = datetime(2000, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)
    expires = compute_expiry(earned, policy, tz)
    assert expires is not None
    assert expires.tzinfo is UTC
    assert expires > earned
    local = expires.astimezone(tz)
    assert (local.hour, local.minute, local.second) == (0, 0, 0)
    assert last_valid_day(expires, tz) >= earned.astimezone(tz).date()
    if policy.kind == "days_after":
        delta = last_valid_day(expires, tz) - earned.astimezone(tz).date()
        assert delta.days == policy.n


def test_expiry_policy_bounds() -> None:
    with pytest.raises(ValueError):
        ExpiryPolicy(kind="days_after", n=-1)
    with pytest.raises(ValueError):
        ExpiryPolicy.model_validate({"kind": "weekly", "n": 1})


# ----------------------------------------------------------------------------- clawback & debt


def test_split_clawback() -> None:
    s = split_clawback(100, pending_hold=30, available=50)
    assert (s.from_pending, s.from_available, s.to_debt, s.total) == (30, 50, 20, 100)
    s = split_clawback(10, pending_hold=0, available=50)
    assert (s.from_pending, s.from_available, s.to_debt) == (0, 10, 0)


@given(st.integers(0, 10**9), st.integers(0, 10**9), st.integers(0, 10**9))
def test_split_clawback_properties(amount: int, pending: int, available: int) -> None:
    s = split_clawback(amount, pending_hold=pending, available=available)
    assert s.total == amount
    assert 0 <= s.from_pending <= pending
    assert 0 <= s.from_available <= available
    assert s.to_debt >= 0
    # debt only arises once everything else is exhausted
    if s.to_debt:
        assert s.from_pending == pending
        assert s.from_available == available


def test_debt_repayment() -> None:
    assert debt_repayment(0, 100) == 0
    assert debt_repayment(30, 100) == 30
    assert debt_repayment(300, 100) == 100
    with pytest.raises(ValueError):
        debt_repayment(-1, 5)


def test_proportional_clawback_examples() -> None:
    # 333 points on a 100.00 CNY order, returned in three 33.33/33.33/33.34 parts
    a = proportional_clawback(
        earned=333, order_total=10_000, returned_before=0, return_amount=3333, clawed_before=0
    )
    b = proportional_clawback(
        earned=333, order_total=10_000, returned_before=3333, return_amount=3333, clawed_before=a
    )
    c = proportional_clawback(
        earned=333,
        order_total=10_000,
        returned_before=6666,
        return_amount=3334,
        clawed_before=a + b,
    )
    assert (a, b, c) == (110, 111, 112)
    assert a + b + c == 333


def test_proportional_clawback_rejects_over_refund() -> None:
    with pytest.raises(Invalid) as err:
        proportional_clawback(
            earned=10, order_total=100, returned_before=60, return_amount=41, clawed_before=6
        )
    assert err.value.code == "refund_exceeds_order"
    with pytest.raises(Invalid):
        proportional_clawback(
            earned=10, order_total=0, returned_before=0, return_amount=1, clawed_before=0
        )
    with pytest.raises(Invalid):
        proportional_clawback(
            earned=10, order_total=10, returned_before=0, return_amount=0, clawed_before=0
        )


@given(
    earned=st.integers(0, 10**7),
    total=st.integers(1, 10**9),
    cuts=st.lists(st.integers(1, 10**6), max_size=12),
)
def test_proportional_clawback_properties(earned: int, total: int, cuts: list[int]) -> None:
    returned = 0
    clawed = 0
    parts = []
    for cut in cuts:
        amount = min(cut, total - returned)
        if amount <= 0:
            break
        part = proportional_clawback(
            earned=earned,
            order_total=total,
            returned_before=returned,
            return_amount=amount,
            clawed_before=clawed,
        )
        assert part >= 0
        # never more than the proportional share rounded up
        assert part * total <= earned * amount + total
        returned += amount
        clawed += part
        parts.append(part)
        assert clawed <= earned
        assert clawed == earned * returned // total
    # the last return of a fully returned order takes the remainder
    if total - returned > 0:
        last = proportional_clawback(
            earned=earned,
            order_total=total,
            returned_before=returned,
            return_amount=total - returned,
            clawed_before=clawed,
        )
        assert clawed + last == earned


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize("bad", [0, -1, 1.0, 1.5, "10", None, True, MAX_POINTS_PER_POSTING + 1])
def test_validate_points_rejects(bad: object) -> None:
    with pytest.raises(Invalid) as err:
        validate_points(bad)
    assert err.value.code == "invalid_amount"
    assert err.value.status == 422


def test_validate_points_accepts_bounds() -> None:
    assert validate_points(1) == 1
    assert validate_points(MAX_POINTS_PER_POSTING) == MAX_POINTS_PER_POSTING


def test_validate_signed_points() -> None:
    assert validate_signed_points(-5) == -5
    assert validate_signed_points(5) == 5
    for bad in (0, -(MAX_POINTS_PER_POSTING + 1), 2.0, False):
        with pytest.raises(Invalid):
            validate_signed_points(bad)
