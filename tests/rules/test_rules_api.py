"""Earning rules and pricing settings through the API: validated, audited, previewed."""

from __future__ import annotations


def test_edit_rules_and_preview(client, auth_headers):
    op = auth_headers("operator")
    rules = client.get("/api/v1/rules/earning", headers=op).json()
    rules["category_coefficients"] = {"beauty": 15000}
    rules["windows"] = [
        {
            "kind": "monthly",
            "id": "member_day",
            "name": "会员日",
            "days": [8],
            "multiplier_bp": 20000,
        }
    ]
    r = client.put("/api/v1/rules/earning", json=rules, headers=op)
    assert r.status_code == 200, r.text
    p = client.post(
        "/api/v1/rules/earning/preview",
        json={
            "amount_fen": 30000,
            "category": "beauty",
            "tier": "gold",
            "at": "2026-03-08T12:00:00+08:00",
        },
        headers=op,
    ).json()
    plain = client.post(
        "/api/v1/rules/earning/preview",
        json={"amount_fen": 30000, "category": "fresh", "at": "2026-03-09T12:00:00+08:00"},
        headers=op,
    ).json()
    assert plain["points"] == 300  # 1 point per CNY by default
    assert p["points"] >= 300 * 3  # ×1.5 beauty, ×2 member day, gold multiplier
    assert "300" in p["text"]
    audit = client.get("/api/v1/audit?entity_type=settings", headers=auth_headers("admin"))
    assert [a["entity_id"] for a in audit.json()["items"]] == ["earning"]


def test_bad_rules_are_refused_and_nothing_changes(client, auth_headers):
    op = auth_headers("operator")
    before = client.get("/api/v1/rules/earning", headers=op).json()
    bad = {
        **before,
        "windows": [
            {"kind": "date_range", "id": "a", "start": "2026-06-16", "end": "2026-06-18"},
            {"kind": "date_range", "id": "b", "start": "2026-06-17", "end": "2026-06-20"},
        ],
    }
    assert client.put("/api/v1/rules/earning", json=bad, headers=op).status_code == 422
    negative = {**before, "category_coefficients": {"beauty": -1}}
    assert client.put("/api/v1/rules/earning", json=negative, headers=op).status_code == 422
    assert client.get("/api/v1/rules/earning", headers=op).json() == before
    share = client.put("/api/v1/rules/pricing", json={"max_points_share_bp": 20000}, headers=op)
    assert share.status_code == 422
    assert (
        client.put("/api/v1/rules/earning", json=before, headers=auth_headers("clerk")).status_code
        == 403
    )
