"""Pure rules of the mall, without a database."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from scipy.stats import chisquare

from patron.errors import PatronError
from patron.mall import domain
from patron.mall.domain import GiftRules, MallSettings, PrizeOdds

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


def _gift(**over) -> GiftRules:
    base = {
        "code": "G",
        "points": 100,
        "is_active": True,
        "min_tier": None,
        "sale_starts_at": None,
        "sale_ends_at": None,
        "limit_per_member": None,
        "limit_window": "sale",
    }
    base.update(over)
    return GiftRules(**base)


@pytest.mark.parametrize(("points", "band"), [(1, 0), (99, 0), (100, 1), (500, 1), (501, 2)])
def test_value_bands_follow_the_seed(points, band):
    bounds = MallSettings().band_bounds
    # the seed's bands are <100, 100–500, >500: 500 itself is in the middle band
    assert domain.value_band(points, bounds) == band
    assert domain.band_label(domain.value_band(50, bounds), bounds) == "<100"


def test_warehouse_order_nearest_first_then_the_rest():
    s = MallSettings(store_warehouses={"GZ001": ["south"]})
    assert domain.warehouse_order(s, store_code="GZ001", region="East China") == [
        "south",
        "north",
        "east",
    ]
    assert domain.warehouse_order(s, store_code=None, region="North China")[0] == "north"
    assert domain.warehouse_order(s, store_code=None, region=None) == ["east", "north", "south"]


def test_settings_refuse_unknown_warehouses():
    with pytest.raises(ValueError, match="unknown warehouse"):
        MallSettings(default_order=["west"])


def test_windows_limits_and_tiers():
    domain.check_window(_gift(), NOW)
    with pytest.raises(PatronError) as e:
        domain.check_window(_gift(sale_starts_at=NOW.replace(day=14)), NOW)
    assert e.value.code == "outside_sale_window"
    with pytest.raises(PatronError):
        domain.check_window(_gift(sale_ends_at=NOW), NOW)
    with pytest.raises(PatronError) as e:
        domain.check_limit(2, 1, 2, "G")
    assert e.value.code == "over_member_limit"
    domain.check_limit(2, 1, 1, "G")
    ranks = {"regular": 0, "silver": 1, "gold": 2}
    domain.check_tier(_gift(min_tier="silver"), 2, ranks)
    with pytest.raises(PatronError) as e:
        domain.check_tier(_gift(min_tier="gold"), 1, ranks)
    assert e.value.status == 403
    # a month window starts at the business month's first midnight
    start = domain.limit_window_start(_gift(limit_window="month"), NOW, SH)
    assert start == datetime(2026, 2, 28, 16, 0, tzinfo=UTC)


def test_codes_are_unambiguous_and_normalised():
    code = domain.new_code()
    assert len(code) == 10 and set(code) <= set(domain.CODE_ALPHABET)
    assert domain.normalize_code(domain.qr_payload(code)) == code
    assert domain.normalize_code(f" {code[:5].lower()}-{code[5:]} ") == code


def test_moves():
    assert domain.can_move("reserved", "fulfilled")
    assert not domain.can_move("fulfilled", "cancelled")
    assert not domain.can_move("shipped", "cancelled")


def test_pool_must_sum_to_one_with_one_unlimited_fallback():
    domain.validate_pool([(600_000, None, True), (400_000, 5, False)])
    for prizes, code in (
        ([(600_000, None, True), (300_000, 5, False)], "lottery_odds_not_one"),
        ([(600_000, 5, True), (400_000, 5, False)], "lottery_fallback_required"),
        ([(600_000, None, False), (400_000, 5, False)], "lottery_fallback_required"),
        ([], "lottery_pool_empty"),
    ):
        with pytest.raises(PatronError) as e:
            domain.validate_pool(prizes)
        assert e.value.code == code


POOL = [
    PrizeOdds(1, 10_000, 5, False),
    PrizeOdds(2, 90_000, None, False),
    PrizeOdds(3, 300_000, None, False),
    PrizeOdds(4, 600_000, None, True),
]


def test_pick_covers_exact_ranges():
    assert domain.pick(POOL, 0).id == 1
    assert domain.pick(POOL, 9_999).id == 1
    assert domain.pick(POOL, 10_000).id == 2
    assert domain.pick(POOL, 999_999).id == 4
    with pytest.raises(ValueError, match="range"):
        domain.pick(POOL, 1_000_000)


def test_observed_frequencies_match_the_published_odds():
    """Fixed seed, 20,000 draws: a chi-square test does not reject the published odds."""
    rng = random.Random(20261203)
    n = 20_000
    seen = dict.fromkeys((p.id for p in POOL), 0)
    for _ in range(n):
        seen[domain.pick(POOL, rng.randrange(domain.PPM)).id] += 1
    expected = [p.ppm * n / domain.PPM for p in POOL]
    _, p_value = chisquare([seen[p.id] for p in POOL], expected)
    assert p_value > 0.001
