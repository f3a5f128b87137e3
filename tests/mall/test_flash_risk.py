"""The risk check of a flash redemption weighs the points the member spends — the sale's,
not the gift's list price."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from patron.mall.models import Redemption
from patron.risk import model
from patron.risk.models import RiskReview
from tests.mall.helpers import grant, setup_gift

R = "/api/v1/mall/redemptions"


def test_a_flash_unit_is_risk_checked_at_the_sale_points(
    client, auth_headers, make_member, database, clock
):
    model.forget()
    op = auth_headers("operator")
    setup_gift(client, op, "TV", points=3_000, stock={"east": 5})
    # any rule that fires asks for an SMS code; a new member spending 2,000 points or more
    # breaks one (new_member_redeems)
    limits = client.get("/api/v1/risk/settings", headers=op).json()
    r = client.put(
        "/api/v1/risk/settings",
        json={**limits, "step_up_threshold": 1, "review_threshold": 100},
        headers=auth_headers("admin"),
    )
    assert r.status_code == 200, r.text
    start = clock.now()
    sale = client.post(
        "/api/v1/mall/flash-sales",
        json={
            "gift_code": "TV",
            "points": 50,
            "quantity": 2,
            "per_member_limit": 1,
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=1)).isoformat(),
        },
        headers=op,
    )
    assert sale.status_code == 201, sale.text
    new, other = make_member(), make_member()
    for no in (new, other):
        grant(database, clock, no, 5_000)
    # at the list price the new member is held for a code...
    held = client.post(R, json={"member_no": new, "gift_code": "TV"}, headers=op)
    assert held.status_code == 403, held.text
    assert held.json()["error"]["code"] == "risk_step_up_required"
    assert "new_member_redeems" in held.json()["error"]["details"]["rules"]
    # ...another new member's flash unit costs 50 points: no rule fires, it goes through
    body = {"member_no": other, "gift_code": "TV", "flash_sale_id": sale.json()["id"]}
    ok = client.post(R, json=body, headers=op)
    assert ok.status_code == 201, ok.text
    assert ok.json()["points"] == 50
    with database.unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(Redemption)) == 1
        assert s.scalar(select(func.count()).select_from(RiskReview)) == 1  # the first one's
