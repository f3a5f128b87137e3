"""The conditions over RFM scores, purchase lines, stores, averages, discounts, campaigns,
static lists and personas select exactly the expected members (SQLite and PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import insert, select, update

from patron.analytics.models import MemberScore
from patron.campaigns.models import Campaign, CampaignParticipation
from patron.orders.models import Order, OrderLine
from patron.segments.compile import compile_rule
from patron.segments.domain import LifecycleSettings, parse_rule
from patron.segments.models import StaticList, StaticListMember
from patron.segments.personas import PERSONAS
from tests.analytics.history import add_orders
from tests.segments.test_select import NOW, TZ, _ago, _seed


def _order_id(s, member: int, days: int) -> int:
    return s.scalar(
        select(Order.id).where(Order.member_id == member, Order.business_date == _ago(days).date())
    )


def _line(order_id: int, no: int, category: str, net: int) -> dict[str, object]:
    return {
        "order_id": order_id, "line_no": no, "sku": f"sku-{no}", "category": category,
        "quantity": 1, "unit_price_fen": net, "discount_fen": 0, "net_fen": net,
        "points_fen": 0, "points": 0, "paid_fen": net, "returned_quantity": 0,
        "refunded_fen": 0, "refunded_points": 0,
    }  # fmt: skip


def _more(s) -> None:
    o20, o100, o120 = _order_id(s, 2, 20), _order_id(s, 2, 100), _order_id(s, 3, 120)
    s.execute(update(Order).where(Order.id == o20).values(store_code="S1", discount_fen=500))
    s.execute(update(Order).where(Order.id == o100).values(store_code="S2"))
    s.execute(update(Order).where(Order.id == o120).values(store_code="S1", discount_fen=100))
    s.execute(
        insert(OrderLine),
        [_line(o20, 1, "baby", 40000), _line(o20, 2, "food", 20000), _line(o120, 1, "baby", 5000)],
    )
    for m, r, f, seg in ((2, 5, 3, "champions"), (3, 2, 1, "hibernating")):
        s.add(
            MemberScore(
                member_id=m, as_of=NOW.date(), recency_days=1, purchase_days=1, monetary_fen=1,
                r_score=r, f_score=f, m_score=3, segment=seg,
            )
        )  # fmt: skip
    camp = Campaign(
        code="spring", name="Spring", status="active", schedule={}, audience={},
        budget_cap_bp=10000, control_bp=0, experiment_key="k", other_cost_fen=0,
        created_at=NOW, updated_at=NOW,
    )  # fmt: skip
    lst = StaticList(
        code="vipfile", name="VIP file", created_by="t", created_at=NOW, updated_at=NOW
    )
    s.add_all([camp, lst])
    s.flush()
    for m in (1, 6):
        s.add(
            CampaignParticipation(
                campaign_id=camp.id, member_id=m, group="treatment", source="action",
                joined_at=_ago(20),
            )
        )  # fmt: skip
    for m in (3, 5):
        s.add(StaticListMember(list_id=lst.id, member_id=m))
    s.flush()


CASES = [
    ({"field": "purchase", "categories": ["baby"]}, {2, 3}),
    ({"field": "purchase", "categories": ["baby"], "window_days": 90}, {2}),
    ({"field": "purchase", "stores": ["S1"]}, {2, 3}),
    ({"field": "purchase", "stores": ["S2"]}, {2}),
    ({"field": "purchase", "categories": ["baby"], "min": 10000}, {2}),
    ({"field": "purchase", "categories": ["food", "baby"], "stores": ["S1"], "min": 60000}, {2}),
    ({"field": "purchase"}, {2, 3, 4}),
    ({"field": "purchase", "max": 5000}, {1, 3, 4, 5, 7, 8}),
    ({"field": "avg_order_fen", "min": 30000}, {2}),
    ({"field": "avg_order_fen", "max": 5000}, {3, 4}),
    ({"field": "discounted_pct", "min": 50}, {2, 3}),
    ({"field": "discounted_pct", "min": 60}, {3}),
    ({"field": "discounted_pct", "max": 0}, {4}),
    ({"field": "rfm_score", "score": "r", "min": 4}, {2}),
    ({"field": "rfm_score", "score": "f", "max": 1}, {3}),
    ({"field": "rfm_segment", "values": ["hibernating", "at_risk"]}, {3}),
    ({"field": "campaign", "values": ["spring"]}, {1}),
    ({"field": "campaign", "op": "none", "values": ["spring"]}, {2, 3, 4, 5, 7, 8}),
    ({"field": "campaign", "values": ["spring"], "window_days": 10}, set()),
    ({"field": "list", "values": ["vipfile"]}, {3, 5}),
    ({"field": "list", "op": "not_in", "values": ["vipfile"]}, {1, 2, 4, 7, 8}),
]


def test_each_new_condition_selects_exactly(database) -> None:
    with database.unit_of_work() as s:
        _seed(s)
        _more(s)
        settings = LifecycleSettings()
        for raw, expected in CASES:
            stmt = compile_rule(parse_rule(raw), now=NOW, tz=TZ, lifecycle=settings)
            assert set(s.scalars(stmt)) == expected, raw


def test_personas_are_their_rules(database) -> None:
    with database.unit_of_work() as s:
        _seed(s)
        # Member 2 becomes high-frequency (6 purchases in 180 days) and promotion-sensitive.
        add_orders(s, [(2, _ago(d).date(), 1000) for d in (1, 2, 3, 4)])
        s.execute(update(Order).where(Order.member_id == 2).values(discount_fen=10))
        settings = LifecycleSettings()

        def ids(raw: dict[str, object]) -> set[int]:
            return set(s.scalars(compile_rule(parse_rule(raw), now=NOW, tz=TZ, lifecycle=settings)))

        for code, persona in PERSONAS.items():
            assert ids({"field": "persona", "values": [code]}) == ids(persona.rule), code
        assert ids({"field": "persona", "values": ["high_frequency"]}) == {2}
        assert ids({"field": "persona", "values": ["promotion_sensitive"]}) == {2}
        assert ids({"field": "persona", "values": ["brand_loyal"]}) == {2}


def test_bad_new_conditions_name_the_field(client, auth_headers) -> None:
    h = auth_headers("analyst")
    for rule, path in (
        ({"field": "rfm_score", "score": "r", "min": 6}, "rules/0/min"),
        ({"field": "rfm_segment", "values": ["whales"]}, "rules/0/values/0"),
        ({"field": "persona", "values": ["night_owls"]}, "rules/0/values/0"),
        ({"field": "purchase", "min": 10, "max": 1}, "rules/0"),
        ({"field": "discounted_pct", "min": 101}, "rules/0/min"),
    ):
        resp = client.post("/api/v1/segments/preview", json={"rule": rule}, headers=h)
        assert resp.status_code == 422, rule
        assert resp.json()["error"]["details"]["path"] == path, rule


def test_static_list_import_versions_and_personas(client, auth_headers, make_member) -> None:
    a, b = make_member(), make_member()
    w = auth_headers("operator")
    resp = client.put(
        "/api/v1/static-lists/fair",
        json={"name": "Trade fair", "csv": f"member_no\n{a}\n{b}\n{a}\n9999999999\n\n"},
        headers=w,
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["members"], body["unknown"], body["unknown_count"]) == (2, ["9999999999"], 1)
    rule = {"field": "list", "values": ["fair"]}
    assert (
        client.post("/api/v1/segments/preview", json={"rule": rule}, headers=w).json()["count"] == 2
    )
    again = client.put("/api/v1/static-lists/fair", json={"name": "Fair", "csv": a}, headers=w)
    assert again.json()["members"] == 1  # an import replaces the list
    listed = client.get("/api/v1/static-lists", headers=auth_headers("analyst")).json()
    assert [(x["code"], x["members"]) for x in listed] == [("fair", 1)]
    empty = client.put("/api/v1/static-lists/x", json={"name": "X", "csv": "phone\n"}, headers=w)
    assert empty.json()["error"]["code"] == "static_list_empty"

    client.post("/api/v1/segments", json={"code": "f", "name": "F", "rule": rule}, headers=w)
    client.patch("/api/v1/segments/f", json={"name": "Fair list"}, headers=w)
    versions = client.get("/api/v1/segments/f/versions", headers=w).json()
    assert [(v["version"], v["name"]) for v in versions] == [(2, "Fair list"), (1, "F")]
    personas = client.get("/api/v1/segments/personas", headers=w).json()
    assert {p["code"] for p in personas} == set(PERSONAS)
