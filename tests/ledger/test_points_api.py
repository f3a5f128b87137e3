"""The points, adjustment and tier-ladder API: behaviour, bad input and roles."""

from __future__ import annotations

from datetime import timedelta

import pytest

from patron.ledger.check import run_check


def _earn(client, headers, no, points, source, **extra):
    body = {"points": points, "source_type": "order", "source_id": source, **extra}
    return client.post(f"/api/v1/members/{no}/points/earn", json=body, headers=headers)


def _balance(client, headers, no):
    r = client.get(f"/api/v1/members/{no}/points", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def _postings(database):
    with database.unit_of_work() as s:
        from sqlalchemy import func, select

        from patron.ledger.models import PointsPosting

        return s.scalar(select(func.count()).select_from(PointsPosting))


def test_earn_spend_cancel_and_history(client, auth_headers, make_member, clock, database):
    h = auth_headers("admin")
    no = make_member()
    r = _earn(client, h, no, 900, "O-1")
    assert r.status_code == 201, r.text
    assert r.json()["balance"]["available"] == 900
    # the caller's own source type, marked as named through the API
    assert (r.json()["posting"]["source_type"], r.json()["posting"]["origin"]) == ("order", "api")
    # 365 days after 2026-03-01 (business day in Shanghai): valid through 2027-03-01
    schedule = r.json()["balance"]["expiry_schedule"]
    assert schedule == [
        {"last_day": "2027-03-01", "expires_at": "2027-03-01T16:00:00Z", "points": 900}
    ]
    clock.advance(timedelta(days=10))
    h = auth_headers("admin", fresh=True)  # tokens are short-lived
    _earn(client, h, no, 300, "O-2")
    r = client.post(
        f"/api/v1/members/{no}/points/spend",
        json={"points": 1_000, "source_type": "mall", "source_id": "M-1"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    spend = r.json()["posting"]
    # the soonest-expiring lot is used first
    assert [a["amount"] for a in spend["allocations"]] == [900, 100]
    assert r.json()["balance"]["available"] == 200
    r = client.post(f"/api/v1/members/{no}/points/spends/{spend['id']}/cancel", headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["balance"]["available"] == 1_200
    r = client.get(f"/api/v1/members/{no}/points/history?limit=2&offset=0", headers=h)
    page = r.json()
    assert page["total"] == 4 and len(page["items"]) == 2
    assert [p["kind"] for p in page["items"]] == ["reversal", "redeem"]
    with database.unit_of_work() as s:
        assert run_check(s, now=clock.now()) == []


@pytest.mark.parametrize("bad", [0, -5, 1.5, "10", 1e15, 10**15, True, None])
def test_bad_amounts_are_422_and_write_nothing(client, auth_headers, make_member, database, bad):
    h = auth_headers("admin")
    no = make_member()
    before = _postings(database)
    for path, body in (
        ("points/earn", {"points": bad, "source_type": "order", "source_id": "X"}),
        ("points/spend", {"points": bad, "source_type": "mall", "source_id": "X"}),
        ("points/adjustments", {"amount": bad, "reason": "x"}),
    ):
        if path == "points/adjustments" and bad == -5:
            continue  # a negative adjustment is valid
        r = client.post(f"/api/v1/members/{no}/{path}", json=body, headers=h)
        assert r.status_code == 422, (path, bad, r.text)
        assert r.json()["error"]["code"] in ("validation_error", "invalid_amount"), r.text
    assert _postings(database) == before


def test_overspend_is_409_with_the_available_balance(client, auth_headers, make_member, database):
    h = auth_headers("admin")
    no = make_member()
    _earn(client, h, no, 500, "O-1")
    r = client.post(
        f"/api/v1/members/{no}/points/spend",
        json={"points": 501, "source_type": "mall", "source_id": "M-1"},
        headers=h,
    )
    assert r.status_code == 409
    err = r.json()["error"]
    assert err["code"] == "insufficient_points"
    assert err["details"] == {"requested": 501, "available": 500}
    assert _balance(client, h, no)["available"] == 500
    assert _postings(database) == 1


def test_the_same_source_earns_once_and_a_different_amount_is_a_conflict(
    client, auth_headers, make_member
):
    h = auth_headers("admin")
    no = make_member()
    assert _earn(client, h, no, 100, "O-1").status_code == 201
    again = _earn(client, h, no, 100, "O-1")
    assert again.status_code == 201 and again.json()["replayed"] is True
    other = _earn(client, h, no, 99, "O-1")
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_conflict"
    assert _balance(client, h, no)["available"] == 100


def test_large_adjustment_needs_a_second_approver(client, auth_headers, make_member, database):
    op = auth_headers("operator")
    admin = auth_headers("admin")
    no = make_member()
    small = client.post(
        f"/api/v1/members/{no}/points/adjustments",
        json={"amount": 500, "reason": "goodwill"},
        headers=op,
    )
    assert small.status_code == 201 and small.json()["status"] == "applied"
    big = client.post(
        f"/api/v1/members/{no}/points/adjustments",
        json={"amount": 50_000, "reason": "lost receipt, store manager confirmed"},
        headers=op,
    )
    assert big.status_code == 201 and big.json()["status"] == "pending_approval"
    assert _balance(client, op, no)["available"] == 500
    adj = big.json()["id"]
    # the operator cannot approve (no permission), and an approver cannot approve their own
    assert client.post(f"/api/v1/points/adjustments/{adj}/approve", headers=op).status_code == 403
    own = client.post(
        f"/api/v1/members/{no}/points/adjustments",
        json={"amount": 20_000, "reason": "own"},
        headers=admin,
    ).json()["id"]
    r = client.post(f"/api/v1/points/adjustments/{own}/approve", headers=admin)
    assert r.status_code == 403 and r.json()["error"]["code"] == "approver_must_differ"
    pending = client.get("/api/v1/points/adjustments?status=pending_approval", headers=admin)
    assert {a["id"] for a in pending.json()} == {adj, own}
    r = client.post(f"/api/v1/points/adjustments/{adj}/approve", json={"note": "ok"}, headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "applied"
    assert _balance(client, op, no)["available"] == 50_500
    again = client.post(f"/api/v1/points/adjustments/{adj}/approve", headers=admin)
    assert again.status_code == 409 and again.json()["error"]["code"] == "adjustment_decided"
    r = client.post(f"/api/v1/points/adjustments/{own}/reject", headers=auth_headers("admin", True))
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    assert _balance(client, op, no)["available"] == 50_500
    with database.unit_of_work() as s:
        assert run_check(s) == []


def test_a_clerk_cannot_adjust_and_a_negative_adjustment_cannot_overdraw(
    client, auth_headers, make_member
):
    no = make_member()
    r = client.post(
        f"/api/v1/members/{no}/points/adjustments",
        json={"amount": 100, "reason": "x"},
        headers=auth_headers("clerk"),
    )
    assert r.status_code == 403
    r = client.post(
        f"/api/v1/members/{no}/points/adjustments",
        json={"amount": -100, "reason": "x"},
        headers=auth_headers("operator"),
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "insufficient_points"
    r = client.post(
        f"/api/v1/members/{no}/points/adjustments",
        json={"amount": 100, "reason": "   "},
        headers=auth_headers("operator"),
    )
    assert r.status_code == 422


def test_refund_claws_back_proportionally_and_debt_is_repaid_first(
    client, auth_headers, make_member
):
    h = auth_headers("admin")
    no = make_member()
    _earn(client, h, no, 1_000, "O-1")
    client.post(
        f"/api/v1/members/{no}/points/spend",
        json={"points": 900, "source_type": "mall", "source_id": "M-1"},
        headers=h,
    )
    refund = {
        "source_type": "order",
        "source_id": "O-1",
        "order_total_fen": 10_000,
    }
    r = client.post(
        f"/api/v1/members/{no}/points/refunds",
        json={**refund, "refund_id": "R-1", "refund_amount_fen": 4_000},
        headers=h,
    )
    assert r.status_code == 201, r.text
    out = r.json()
    assert (out["points_clawed"], out["from_available"], out["to_debt"]) == (400, 100, 300)
    assert (out["balance"]["available"], out["balance"]["debt"]) == (0, 300)
    too_much = client.post(
        f"/api/v1/members/{no}/points/refunds",
        json={**refund, "refund_id": "R-2", "refund_amount_fen": 6_001},
        headers=h,
    )
    assert too_much.status_code == 422
    assert too_much.json()["error"]["code"] == "refund_exceeds_order"
    r = _earn(client, h, no, 500, "O-2")
    assert (r.json()["balance"]["available"], r.json()["balance"]["debt"]) == (200, 0)


def test_tier_ladder_must_increase(client, auth_headers):
    admin = auth_headers("admin")
    ladder = client.get("/api/v1/tiers", headers=admin).json()
    assert [t["code"] for t in ladder["tiers"]][:1] == ["regular"]
    bad = {**ladder, "tiers": [dict(t) for t in ladder["tiers"]]}
    bad["tiers"][2]["threshold"] = bad["tiers"][1]["threshold"]
    r = client.put("/api/v1/tiers", json=bad, headers=admin)
    assert r.status_code == 422, r.text
    assert client.get("/api/v1/tiers", headers=admin).json() == ladder
    r = client.put("/api/v1/tiers", json=ladder, headers=auth_headers("clerk"))
    assert r.status_code == 403


def test_unknown_member_is_404_and_writes_nothing(client, auth_headers, database):
    h = auth_headers("admin")
    for path, body in (
        ("points/adjustments", {"amount": 100, "reason": "x"}),
        ("points/earn", {"points": 1, "source_type": "order", "source_id": "X"}),
    ):
        r = client.post(f"/api/v1/members/9999999999/{path}", json=body, headers=h)
        assert r.status_code == 404, r.text
        assert r.json()["error"]["code"] == "member_not_found"
    assert _postings(database) == 0


def test_approving_a_removal_the_member_can_no_longer_pay_is_refused_and_writes_nothing(
    client, auth_headers, make_member, database
):
    from patron.audit.models import AuditRecord
    from patron.ledger.models import PointsAdjustment

    op, admin = auth_headers("operator"), auth_headers("admin")
    no = make_member()
    limits = client.get("/api/v1/points/settings", headers=admin).json()
    limits.update(adjustment_approval_limit=1000, direct_earn_limit=1500)
    r = client.put("/api/v1/points/settings", json=limits, headers=admin)
    assert r.status_code == 200, r.text
    assert _earn(client, admin, no, 1_500, "O-1").status_code in (200, 201)
    r = client.post(
        f"/api/v1/members/{no}/points/adjustments",
        json={"amount": -1_400, "reason": "duplicate earning"},
        headers=op,
    )
    assert r.status_code == 201 and r.json()["status"] == "pending_approval", r.text
    adj = r.json()["id"]
    r = client.post(
        f"/api/v1/members/{no}/points/spend",
        json={"points": 500, "source_type": "mall", "source_id": "M-1"},
        headers=admin,
    )
    assert r.status_code in (200, 201), r.text
    before = _postings(database)
    r = client.post(f"/api/v1/points/adjustments/{adj}/approve", headers=admin)
    assert r.status_code == 409, r.text
    error = r.json()["error"]
    assert error["code"] == "insufficient_points"
    assert error["details"] == {"requested": 1_400, "available": 1_000}
    assert _balance(client, op, no)["available"] == 1_000
    assert _postings(database) == before
    with database.unit_of_work() as s:
        assert s.get(PointsAdjustment, adj).status == "pending_approval"
        assert not s.query(AuditRecord).filter_by(action="points.adjust_approve").count()
        assert run_check(s) == []
