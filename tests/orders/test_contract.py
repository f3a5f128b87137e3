"""The integrator's contract for orders: ids that are accepted can be fetched and returned,
and the checkout quote answers with the fields docs/rules.md promises."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from patron.auth.principal import Principal
from patron.kit import ids
from patron.ledger import flows
from patron.ledger import service as ledger
from patron.members.models import Member
from tests.factories import order_body

RETURN = {"returned_at": "2026-03-02T10:00:00+08:00", "lines": [{"line_no": 1, "quantity": 1}]}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("external_id", "SH001/2026/0001"),  # a slash would split the order's address
        ("external_id", "."),  # dot segments are collapsed by clients and proxies
        ("external_id", ".."),
        ("external_id", "x" * 65),
        ("source", "POS"),
    ],
)
def test_an_id_that_could_not_be_fetched_is_refused(client, shop, make_member, field, value):
    no = make_member()
    r = client.post("/api/v1/orders", json={**order_body(no), field: value}, headers=shop)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "validation_error"
    assert r.json()["error"]["details"]["errors"][0]["field"] == field
    assert client.get(f"/api/v1/members/{no}/orders", headers=shop).json()["total"] == 0


def test_a_return_id_follows_the_same_grammar(client, shop, make_member):
    no = make_member()
    assert client.post("/api/v1/orders", json=order_body(no), headers=shop).status_code == 201
    r = client.post(
        "/api/v1/orders/pos/O-1/returns", json={**RETURN, "external_id": "R/1"}, headers=shop
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"]["errors"][0]["field"] == "external_id"


@pytest.mark.parametrize(
    "pattern",
    [ids.SOURCE_PATTERN, ids.EXTERNAL_ID_PATTERN, ids.SKU_PATTERN, ids.CODE_PATTERN],
)
def test_body_and_address_share_one_grammar(app, pattern):
    """Every id a body accepts is accepted in the address that fetches it, and vice versa."""
    doc = app.openapi()
    found: set[str] = set()

    def walk(node):
        if isinstance(node, dict):
            if "pattern" in node:
                found.add(node["pattern"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(doc)
    assert pattern in found
    # No other grammar for these ids survives anywhere in the document.
    legacy = {r"^[A-Za-z0-9_.:/-]{1,64}$", r"^[A-Za-z0-9_.:-]{1,64}$", r"^[A-Za-z0-9_.-]{1,64}$"}
    assert not found & legacy


def test_every_accepted_id_can_be_fetched_and_returned(app, client, shop, make_member):
    no = make_member()
    seen: set[tuple[str, str]] = set()
    # Draw from what the documented request bodies accept.
    schemas = app.openapi()["components"]["schemas"]
    order_ids = schemas["OrderIn"]["properties"]
    return_ids = schemas["ReturnIn"]["properties"]

    @given(
        source=st.from_regex(order_ids["source"]["pattern"], fullmatch=True),
        external_id=st.from_regex(order_ids["external_id"]["pattern"], fullmatch=True),
        return_id=st.from_regex(return_ids["external_id"]["pattern"], fullmatch=True),
    )
    @settings(
        max_examples=20,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(source, external_id, return_id):
        if (source, external_id) in seen:
            return
        seen.add((source, external_id))
        body = {**order_body(no), "source": source, "external_id": external_id}
        r = client.post("/api/v1/orders", json=body, headers=shop)
        assert r.status_code == 201, r.text
        got = client.get(f"/api/v1/orders/{source}/{external_id}", headers=shop)
        assert got.status_code == 200, (source, external_id, got.text)
        assert got.json()["external_id"] == external_id
        r = client.post(
            f"/api/v1/orders/{source}/{external_id}/returns",
            json={**RETURN, "external_id": return_id},
            headers=shop,
        )
        assert r.status_code == 201, (source, external_id, r.text)
        assert r.json()["order_external_id"] == external_id

    check()
    assert all(re.fullmatch(ids.EXTERNAL_ID_PATTERN, e) for _, e in seen)


def _documented_quote_fields() -> list[str]:
    """The fields docs/rules.md says the quote reports per line."""
    from pathlib import Path

    text = Path(__file__).parents[2].joinpath("docs", "rules.md").read_text(encoding="utf-8")
    paragraph = text.split("Per line the quote reports", 1)[1].split("\n\n", 1)[0]
    return [f for f in re.findall(r"`([a-z_]+)`", paragraph) if f.endswith(("_fen", "points"))]


def test_the_quote_returns_the_fields_the_rules_promise(client, shop, make_member):
    no = make_member()
    basket = {
        "member_no": no,
        "channel": "store",
        "store_code": "SH001",
        "lines": [{"sku": "BEA-1", "quantity": 2, "discount_fen": 100}],
    }
    r = client.post("/api/v1/checkout/quote", json=basket, headers=shop)
    assert r.status_code == 200, r.text
    quote = r.json()
    documented = _documented_quote_fields()
    assert len(documented) >= 10, documented
    line = quote["lines"][0]
    assert set(documented) <= set(line), set(documented) - set(line)
    assert line["list_amount_fen"] == 2 * 19900
    assert line["line_discount_fen"] == 100
    net = (
        line["list_amount_fen"]
        - line["member_price_saving_fen"]
        - line["line_discount_fen"]
        - line["tier_discount_fen"]
        - line["birthday_discount_fen"]
        - line["order_discount_fen"]
    )
    assert line["net_fen"] == net
    # The order's figures are the sums of its lines'.
    for field in ("member_price_saving_fen", "line_discount_fen", "order_discount_fen"):
        assert quote[field] == sum(ln[field] for ln in quote["lines"]), field
    assert quote["list_total_fen"] == line["list_amount_fen"]


def test_a_quote_needs_no_value_the_schema_does_not_ask_for(app, client, shop, make_member):
    no = make_member()
    schema = app.openapi()["components"]["schemas"]["QuoteIn"]
    assert "channel" in schema["required"]
    # Only what the schema requires, with the defaults of everything else: a quote.
    required = {"member_no": no, "channel": "online", "lines": [{"sku": "BEA-1", "quantity": 1}]}
    assert set(required) == set(schema["required"])
    r = client.post("/api/v1/checkout/quote", json=required, headers=shop)
    assert r.status_code == 200, r.text
    # Leaving the channel out names the missing field instead of a store nobody asked for.
    r = client.post(
        "/api/v1/checkout/quote",
        json={"member_no": no, "lines": [{"sku": "BEA-1", "quantity": 1}]},
        headers=shop,
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "validation_error"
    assert r.json()["error"]["details"]["errors"][0]["field"] == "channel"


def test_points_over_the_share_are_one_error_at_checkout_and_on_orders(
    client, shop, make_member, database, clock
):
    no = make_member()
    with database.unit_of_work() as s:
        mid = s.scalar(select(Member.id).where(Member.member_no == no))
        ctx = ledger.Ctx(Principal.system("t"), clock.now(), ZoneInfo("Asia/Shanghai"))
        flows.earn(s, ctx, mid, points=100_000, source_type="test", source_id="grant")
    basket = {"member_no": no, "channel": "store", "store_code": "SH001"}
    quote = client.post(
        "/api/v1/checkout/quote",
        json={**basket, "lines": [{"sku": "BEA-1", "quantity": 1}], "points_to_use": 19_900},
        headers=shop,
    )
    order = client.post(
        "/api/v1/orders",
        json=order_body(
            no,
            payments=[
                {"method": "points", "amount_fen": 19_900, "points": 19_900},
                {"method": "wechat", "amount_fen": 2_000},
            ],
        ),
        headers=shop,
    )
    assert (quote.status_code, order.status_code) == (422, 422), (quote.text, order.text)
    codes = {quote.json()["error"]["code"], order.json()["error"]["code"]}
    assert codes == {"points_share_exceeded"}
