"""Next purchase, category replenishment and recommendations written by the scores job and
judged by the evaluation (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from sqlalchemy import insert, select

from patron.analytics import nextbuy, personal, recommend
from patron.analytics import scores as svc
from patron.analytics.models import MemberRecommendation, MemberReplenishment, MemberScore
from patron.catalog.models import Category, Product
from tests.analytics.history import add_baskets, add_members, add_orders, simulate
from tests.conftest import START

SH = ZoneInfo("Asia/Shanghai")
TODAY = date(2026, 3, 1)


def test_model_days_is_the_median_wait():
    # Gamma(r + x, α + T) rate: simulate the wait and compare medians.
    rng = np.random.default_rng(5)
    lam = rng.gamma(3.0, 1 / 90.0, size=200_000)
    wait = rng.exponential(1 / lam)
    assert nextbuy.model_days(1.0, 40.0, 2, 50)[()] == pytest.approx(np.median(wait), rel=0.02)


def test_baseline_is_the_median_interval():
    member = [1, 1, 1, 2, 3, 3, 4, 4]
    day = [0, 20, 40, 45, 0, 50, 10, 51]
    ids, days = nextbuy.baseline_days(member, day, at=50)
    # 1: gaps 20, 20 → day 60 → 10; 2: one purchase day, the population's median interval
    # (20, 20, 50) → day 65 → 15; 3: 50 after day 50 → 50; 4: nothing by day 50 but day 10,
    # overdue → 0 (day 51 is after the cut and unseen).
    assert ids.tolist() == [1, 2, 3, 4]
    assert days.tolist() == [10.0, 15.0, 50.0, 0.0]


def test_recommendations_follow_co_occurrence_and_fall_back_to_popularity():
    # Items 0 and 1 go together; item 2 is the most popular alone.
    member = [0, 0, 1, 1, 2, 3, 4, 5, 6]
    item = [0, 1, 0, 1, 0, 2, 2, 2, 2]
    x = recommend.matrix(member, item, 8, 4)
    top = recommend.recommend(x, k=3)
    assert top.items[2].tolist()[0] == 1  # had 0 → 1 first
    assert not top.fallback[2]
    # Member 7 has nothing: popularity order, nothing had excluded.
    assert top.items[7].tolist() == [2, 0, 1]
    assert top.fallback[7]
    # Already had items are never recommended; items beyond the catalogue are -1.
    assert 0 not in top.items[0] and 1 not in top.items[0]
    masked = recommend.recommend(x, k=3, allowed=np.array([True, True, False, True]))
    assert 2 not in masked.items


def _catalogue(s):
    now = START
    s.execute(
        insert(Category),
        [{"id": 1, "code": "milk", "name": "Milk", "created_at": now},
         {"id": 2, "code": "snack", "name": "Snacks", "created_at": now}],
    )  # fmt: skip
    s.execute(
        insert(Product),
        [
            {"sku": sku, "name": name, "category_id": cat, "price_fen": 1000, "is_active": True,
             "created_at": now, "updated_at": now}
            for sku, name, cat in [
                ("MILK1", "Fresh milk", 1), ("CHIPS", "Potato chips", 2),
                ("DIP", "Salsa dip", 2), ("NUTS", "Cashews", 2),
            ]
        ],
    )  # fmt: skip


@pytest.fixture
def shoppers(database):
    """60 members buy milk every 10 days; chips buyers buy dip too; nuts are popular."""
    with database.unit_of_work() as s:
        _catalogue(s)
        ids = add_members(s, 61, at=START - timedelta(days=400))
        baskets = []
        for k, m in enumerate(ids[:60]):
            for n in range(6):
                day = TODAY - timedelta(days=3 + (k % 7) + 10 * n)
                lines = [("MILK1", "milk")]
                if n == 0 and k % 2 == 0:
                    lines.append(("CHIPS", "snack"))
                    if k % 4 == 0:
                        lines.append(("DIP", "snack"))
                if n == 5 and k % 3 != 0:
                    lines.append(("NUTS", "snack"))
                baskets.append((m, day, lines))
        add_baskets(s, baskets)
    return ids


def test_job_writes_replenishment_and_recommendations(database, shoppers):
    with database.unit_of_work() as s:
        run = svc.run_scores(s, now=START, tz=SH)
    # Snacks: chips on the latest basket, nuts 50 days before, for every sixth member.
    assert run.extras["category_cycles"] == {"milk": 10, "snack": 50}
    with database.unit_of_work() as s:
        rep = {(r.member_id, r.category): r for r in s.scalars(select(MemberReplenishment))}
        recs = s.scalars(
            select(MemberRecommendation).order_by(
                MemberRecommendation.member_id, MemberRecommendation.rank
            )
        ).all()
        scores = {r.member_id: r for r in s.scalars(select(MemberScore))}
        first = shoppers[0]
        # Member 0 last bought milk 3 days ago: due in 7 days.
        assert rep[first, "milk"].due_on == TODAY + timedelta(days=7)
        assert rep[first, "snack"].due_on == TODAY + timedelta(days=47)
        assert [h.key for h in personal.due_categories(s, first, TODAY)] == ["milk"]
        assert personal.due_categories(s, first, TODAY, within=6) == []
        # A chips buyer without dip (member 2) is offered dip first.
        two = [r.item for r in recs if r.member_id == shoppers[2] and r.kind == "product"]
        assert two[0] == "DIP"
        assert all(r.kind == "product" for r in recs)
        # The member who never bought gets the popular products, names from the catalogue.
        newcomer = shoppers[60]
        assert newcomer not in scores
        popular = run.extras["recommendations"]["popular_products"]
        assert popular[0] == "MILK1"
        shown = personal.for_member(s, newcomer, "product", popular)
        assert [x.name for x in shown][:2] == ["Fresh milk", "Cashews"]
        # Scored members have a days-to-next-purchase figure (model or median interval).
        assert all(row.next_purchase_days is not None for row in scores.values())
        assert run.extras["next_purchase_source"] == "median_interval"
        assert scores[first].next_purchase_days == pytest.approx(7.0)


def test_evaluation_judges_next_purchase_and_recommendations(database):
    with database.unit_of_work() as s:
        ids = add_members(s, 400, at=START - timedelta(days=800))
        add_orders(s, simulate(ids, until=TODAY))
        ev = svc.evaluate(s, now=START, tz=SH)
    nx = ev.next_purchase
    assert nx is not None and nx.returned > 50
    assert nx.model_mae is not None and nx.baseline_mae is not None
    # On BG/NBD-like histories the model's pace beats the member's median interval.
    assert nx.beats_baseline
    # No order lines: recommendations say there is nothing to judge.
    assert ev.products is None
    assert any(m.startswith("recommendations:") for m in ev.missing)


def test_recommendations_evaluated_on_a_time_split(database):
    old = TODAY - timedelta(days=120)
    with database.unit_of_work() as s:
        ids = add_members(s, 50, at=START - timedelta(days=400))
        baskets = [
            (m, old, [("CHIPS", "snack"), ("DIP", "snack"), ("NUTS", "snack")]) for m in ids[:20]
        ]
        baskets += [(m, old, [("CHIPS", "snack")]) for m in ids[20:40]]
        baskets += [(m, old, [("NUTS", "snack"), ("MILK1", "milk")]) for m in ids[40:]]
        # After the cut (90 days), chips-only buyers try dip: new to them.
        baskets += [(m, TODAY - timedelta(days=20), [("DIP", "snack")]) for m in ids[20:40]]
        add_baskets(s, baskets)
        ev = svc.evaluate(s, now=START, tz=SH)
    assert ev.products is not None
    assert ev.products.members == 20
    assert ev.products.recall == 1.0 and ev.products.precision == pytest.approx(0.1)
    assert ev.coupons is None


def test_co_occurrence_beats_popularity_on_clustered_baskets():
    rng = np.random.default_rng(1)
    member, item, day = [], [], []
    for u in range(2000):
        group = u % 2  # two tastes: items 0-19 or 20-39, a little noise
        for _ in range(int(rng.integers(1, 8))):
            member.append(u)
            own = int(rng.integers(0, 20)) + 20 * group
            item.append(own if rng.random() < 0.9 else int(rng.integers(0, 40)))
            day.append(int(rng.integers(0, 300)))
    check = recommend.evaluate(member, item, day, cut=200, items=40)
    assert check is not None and check.members > 500
    assert check.precision > 1.5 * check.baseline_precision
    assert check.recall > check.baseline_recall


def test_no_purchases_nothing_written(database):
    with database.unit_of_work() as s:
        run = svc.run_scores(s, now=START, tz=SH)
        assert s.scalars(select(MemberRecommendation)).all() == []
        assert personal.for_member(s, 1, "product", []) == []
    assert run.extras["recommendations"]["products"] == 0


def test_member_day_dates():
    assert personal.day_numbers([date(1970, 1, 2)]).tolist() == [1]
    assert personal._to_date(1) == date(1970, 1, 2)


def test_coupon_recommendations_follow_redeemed_coupons(database):
    from patron.coupons.models import Coupon, CouponTemplate
    from patron.orders.models import Order

    with database.unit_of_work() as s:
        s.execute(
            insert(CouponTemplate),
            [
                {"id": i, "code": code, "name": name, "kind": "amount_off", "status": status,
                 "rules": {}, "per_member_limit": 1, "issued_count": 0, "points_price": 0,
                 "created_at": START, "updated_at": START}
                for i, code, name, status in [
                    (1, "COFFEE5", "Coffee ¥5 off", "active"),
                    (2, "CAKE10", "Cake ¥10 off", "active"),
                    (3, "OLD", "Old offer", "paused"),
                ]
            ],
        )  # fmt: skip
        ids = add_members(s, 12, at=START - timedelta(days=100))
        add_orders(s, [(m, TODAY - timedelta(days=5), 1000) for m in ids])
        orders = dict(s.execute(select(Order.member_id, Order.id)).all())
        # Members 0-7 redeemed coffee and cake together; 8-10 only coffee (and the paused one).
        used = [(m, 1) for m in ids[:11]] + [(m, 2) for m in ids[:8]] + [(m, 3) for m in ids[8:11]]
        s.execute(
            insert(Coupon),
            [
                {"code": f"C{k}", "template_id": t, "member_id": m, "reason": "claim",
                 "issue_key": f"k{k}", "status": "redeemed", "valid_from": START,
                 "valid_until": START + timedelta(days=30), "issued_at": START,
                 "order_id": orders[m], "redeemed_at": START, "discount_fen": 100}
                for k, (m, t) in enumerate(used)
            ],
        )  # fmt: skip
        run = svc.run_scores(s, now=START, tz=SH)
        recs = s.execute(
            select(MemberRecommendation.member_id, MemberRecommendation.item).where(
                MemberRecommendation.kind == "coupon"
            )
        ).all()
        assert (ids[8], "CAKE10") in recs  # coffee-only redeemers are offered cake
        assert all(item != "OLD" for _, item in recs)  # a paused template is never offered
        assert run.extras["recommendations"]["popular_coupons"] == ["COFFEE5", "CAKE10"]
        # A member with no coupon history gets the popular active ones, with their names.
        shown = personal.for_member(s, ids[11], "coupon", ["COFFEE5", "CAKE10"])
        assert [c.name for c in shown] == ["Coffee ¥5 off", "Cake ¥10 off"]
