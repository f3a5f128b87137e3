"""The "recommended" condition reads the stored top-N product recommendations (exact members
on hand-made rows, SQLite and PostgreSQL); unknown codes and N out of range are a 422."""

from __future__ import annotations

from patron.analytics import recommend
from patron.analytics.models import MemberRecommendation
from patron.catalog.models import Category, Product
from patron.segments.compile import compile_rule
from patron.segments.domain import MAX_RECOMMENDED, LifecycleSettings, parse_rule
from tests.segments.test_select import NOW, TZ, _seed

# member → its recommended SKUs, rank 1 first (member 6 is frozen: never selected)
RECS = {
    1: ["A1", "F1"],
    2: ["F1", "F2", "A2", "A1"],
    3: ["F2"],
    5: ["F2", "F1", "F2x", "F1x", "A1"],
    6: ["A1"],
}


def _catalogue(s) -> None:
    baby = Category(code="baby", name="Baby", created_at=NOW)
    food = Category(code="food", name="Food", created_at=NOW)
    s.add_all([baby, food])
    s.flush()
    for sku, cat, active in (
        ("A1", baby, True), ("A2", baby, True), ("F1", food, True), ("F2", food, False),
        ("F1x", food, True), ("F2x", food, True),
    ):  # fmt: skip
        s.add(
            Product(
                sku=sku, name=f"name-{sku}", category_id=cat.id, price_fen=100,
                is_active=active, created_at=NOW, updated_at=NOW,
            )
        )  # fmt: skip
    s.flush()


def _recs(s) -> None:
    for m, skus in RECS.items():
        for rank, sku in enumerate(skus, 1):
            s.add(
                MemberRecommendation(
                    member_id=m, kind="product", rank=rank, item=sku, score=1.0 / rank,
                    as_of=NOW.date(),
                )
            )  # fmt: skip
    # a coupon recommendation whose code is a SKU must not count as a product
    s.add(
        MemberRecommendation(
            member_id=4, kind="coupon", rank=1, item="A1", score=1.0, as_of=NOW.date()
        )
    )
    s.flush()


CASES = [
    ({"skus": ["A1"], "top": 1}, {1}),
    ({"skus": ["A1"]}, {1}),  # default top 3: member 2 has A1 4th, member 5 5th
    ({"skus": ["A1"], "top": 4}, {1, 2}),
    ({"skus": ["A1"], "top": 10}, {1, 2, 5}),
    ({"skus": ["F1"], "top": 2}, {1, 2, 5}),
    ({"categories": ["baby"]}, {1, 2}),
    ({"categories": ["baby"], "top": 2}, {1}),
    ({"categories": ["food"], "top": 1}, {2, 3, 5}),
    ({"skus": ["F2"], "categories": ["baby"], "top": 1}, {1, 3, 5}),
]


def test_recommended_selects_exactly_the_members_with_it_in_their_top_n(database) -> None:
    with database.unit_of_work() as s:
        _seed(s)
        _catalogue(s)
        _recs(s)
        settings = LifecycleSettings()
        for raw, expected in CASES:
            rule = parse_rule({"field": "recommended", **raw})
            stmt = compile_rule(rule, now=NOW, tz=TZ, lifecycle=settings)
            assert set(s.scalars(stmt)) == expected, raw


def test_the_bound_is_what_the_scores_job_keeps() -> None:
    assert MAX_RECOMMENDED == recommend.K


def test_bad_recommended_conditions_are_422_with_the_path(client, auth_headers, shop) -> None:
    h = auth_headers("analyst")
    for rule, path, unknown in (
        ({"field": "recommended", "skus": ["NOPE-1"]}, "rules/0/skus", ["NOPE-1"]),
        (
            {"field": "recommended", "skus": ["BEA-1"], "categories": ["beauty", "toys"]},
            "rules/0/categories",
            ["toys"],
        ),
        ({"field": "recommended", "skus": ["BEA-1"], "top": 0}, "rules/0/top", None),
        ({"field": "recommended", "skus": ["BEA-1"], "top": 11}, "rules/0/top", None),
        ({"field": "recommended"}, "rules/0", None),
        ({"field": "recommended", "skus": []}, "rules/0/skus", None),
    ):
        resp = client.post("/api/v1/segments/preview", json={"rule": rule}, headers=h)
        assert resp.status_code == 422, (rule, resp.text)
        err = resp.json()["error"]
        assert err["code"] == "segment_rule_invalid", rule
        assert err["details"]["path"] == path, rule
        assert err["details"].get("unknown") == unknown, rule
    # a save is refused the same way, and nothing is written
    w = auth_headers("operator")
    bad = {"field": "recommended", "skus": ["NOPE-1"]}
    resp = client.post("/api/v1/segments", json={"code": "x", "name": "X", "rule": bad}, headers=w)
    assert resp.status_code == 422
    assert client.get("/api/v1/segments", headers=h).json() == []
    good = {"field": "recommended", "skus": ["BEA-1"], "categories": ["fresh"], "top": 5}
    resp = client.post("/api/v1/segments/preview", json={"rule": good}, headers=h)
    assert resp.status_code == 200, resp.text
    assert resp.json()["count"] == 0  # the scores job has not run
