"""A mall spend is given back only by cancelling its redemption (which also returns the stock):
the points API refuses to cancel it on its own."""

from __future__ import annotations

from tests.mall.helpers import grant, setup_gift


def test_the_spend_api_cannot_cancel_a_mall_spend(
    client, database, clock, auth_headers, make_member
):
    op = auth_headers("operator")
    setup_gift(client, op)
    no = make_member()
    grant(database, clock, no, 500)
    r = client.post(
        "/api/v1/mall/redemptions", json={"member_no": no, "gift_code": "MUG"}, headers=op
    )
    assert r.status_code == 201, r.text
    history = client.get(f"/api/v1/members/{no}/points/history", headers=op).json()["items"]
    spend = next(p for p in history if p["kind"] == "redeem")
    assert spend["source_type"] == "mall" and spend["source_id"] == r.json()["code"]
    c = client.post(f"/api/v1/members/{no}/points/spends/{spend['id']}/cancel", headers=op)
    assert c.status_code == 409 and c.json()["error"]["code"] == "spend_not_cancellable"
    assert client.get("/api/v1/mall/gifts/MUG", headers=op).json()["available"] == 4
