"""Segments API: preview, saved segments with versions, invalid trees and permissions."""

from __future__ import annotations

GOLD = {"op": "and", "rules": [{"field": "tier", "values": ["gold"]}]}
ANY_SMS = {"field": "consent", "channel": "sms"}


def test_preview_counts_and_samples(client, auth_headers, make_member) -> None:
    nos = sorted(make_member() for _ in range(3))
    h = auth_headers("analyst")
    resp = client.post(
        "/api/v1/segments/preview",
        json={
            "rule": {"op": "or", "rules": [{"field": "registered", "on_or_after": "2000-01-01"}]}
        },
        headers=h,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"count": 3, "sample": nos}
    resp = client.post("/api/v1/segments/preview", json={"rule": GOLD}, headers=h)
    assert resp.json() == {"count": 0, "sample": []}


def test_invalid_tree_names_the_bad_node(client, auth_headers) -> None:
    bad = {
        "op": "and",
        "rules": [GOLD, {"op": "or", "rules": [{"field": "points_balance", "min": 10, "max": 1}]}],
    }
    resp = client.post(
        "/api/v1/segments/preview", json={"rule": bad}, headers=auth_headers("admin")
    )
    assert resp.status_code == 422
    err = resp.json()["error"]
    assert err["code"] == "segment_rule_invalid"
    assert err["details"]["path"] == "rules/1/rules/0"
    resp = client.post(
        "/api/v1/segments/preview",
        json={"rule": {"op": "and", "rules": [{"field": "shoe_size"}]}},
        headers=auth_headers("admin"),
    )
    assert resp.json()["error"]["details"]["path"] == "rules/0/field"


def test_saved_segment_versions(client, auth_headers, make_member) -> None:
    make_member()
    w = auth_headers("operator")
    resp = client.post(
        "/api/v1/segments", json={"code": "gold", "name": "Gold", "rule": GOLD}, headers=w
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["version"] == 1
    again = client.post(
        "/api/v1/segments", json={"code": "gold", "name": "G", "rule": GOLD}, headers=w
    )
    assert (again.status_code, again.json()["error"]["code"]) == (409, "segment_exists")
    same = client.patch("/api/v1/segments/gold", json={"name": "Gold"}, headers=w)
    assert same.json()["version"] == 1  # nothing changed
    changed = client.patch("/api/v1/segments/gold", json={"rule": ANY_SMS}, headers=w)
    assert changed.json()["version"] == 2
    assert changed.json()["rule"] == {
        "op": "and",
        "rules": [{"field": "consent", "channel": "sms", "granted": True}],
    }
    one = client.get("/api/v1/segments/gold", headers=auth_headers("analyst")).json()
    assert (one["version"], one["count"]) == (2, 0)
    listed = client.get("/api/v1/segments", headers=auth_headers("analyst")).json()
    assert [s["code"] for s in listed] == ["gold"]
    missing = client.get("/api/v1/segments/nope", headers=w)
    assert missing.json()["error"]["code"] == "segment_not_found"


def test_permissions(client, auth_headers) -> None:
    body = {"code": "x", "name": "X", "rule": GOLD}
    assert (
        client.post("/api/v1/segments", json=body, headers=auth_headers("analyst")).status_code
        == 403
    )
    assert (
        client.post(
            "/api/v1/segments/preview", json={"rule": GOLD}, headers=auth_headers("clerk")
        ).status_code
        == 403
    )


def test_lifecycle_settings(client, auth_headers) -> None:
    url = "/api/v1/lifecycle/settings"
    assert client.get(url, headers=auth_headers("analyst")).json() == {
        "new_days": 30,
        "active_days": 90,
        "churned_days": 180,
    }
    body = {"new_days": 14, "active_days": 60, "churned_days": 120}
    assert client.put(url, json=body, headers=auth_headers("operator")).status_code == 200
    assert client.get(url, headers=auth_headers("analyst")).json() == body
    bad = {"new_days": 14, "active_days": 200, "churned_days": 120}
    assert client.put(url, json=bad, headers=auth_headers("operator")).status_code == 422
