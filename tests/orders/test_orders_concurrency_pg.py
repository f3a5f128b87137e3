"""Orders under real concurrency on PostgreSQL: duplicates replay, returns never over-refund."""

from __future__ import annotations

import json
import threading

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from patron.app import create_app
from patron.ledger.check import run_check
from patron.orders.models import Order, OrderReturn
from tests.conftest import make_settings
from tests.factories import order_body

pytestmark = pytest.mark.postgres_only


@pytest.fixture
def pg_app(pg_database, clock):
    return create_app(make_settings(pg_database), pg_database, clock)


def _setup(pg_app, auth_headers_pg):
    with TestClient(pg_app) as c:
        h = auth_headers_pg
        c.put(
            "/api/v1/stores/SH001", json={"code": "SH001", "name": "s", "region": "East"}, headers=h
        )
        for code in ("beauty", "fresh"):
            c.put(f"/api/v1/categories/{code}", json={"code": code, "name": code}, headers=h)
        for sku, cat, price in (("BEA-1", "beauty", 19900), ("FRE-1", "fresh", 1250)):
            c.put(
                f"/api/v1/products/{sku}",
                json={"sku": sku, "name": sku, "category_code": cat, "price_fen": price},
                headers=h,
            )
        r = c.post("/api/v1/members", json={"phone": "13800138000", "channel": "web"}, headers=h)
        return r.json()["member_no"]


def _run(n, fn):
    barrier = threading.Barrier(n)
    results = [None] * n

    def go(i):
        barrier.wait()
        results[i] = fn(i)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def _admin(pg_database, pg_app, clock):
    from patron.auth import service as auth
    from patron.auth.principal import Principal

    with pg_database.unit_of_work() as s:
        user = auth.create_staff(
            s,
            Principal.system("t"),
            username="admin-pg",
            display_name="a",
            role="admin",
            password="test-password-123",
            now=clock.now(),
        )
        token = auth.issue_token(user, pg_app.state.keys["token_key"], 30, clock.now())
    return {"Authorization": f"Bearer {token}"}


def test_the_same_order_sent_twenty_times_at_once_is_recorded_once(pg_app, pg_database, clock):
    h = _admin(pg_database, pg_app, clock)
    no = _setup(pg_app, h)
    body = order_body(no)

    def post(_i):
        with TestClient(pg_app) as c:
            r = c.post("/api/v1/orders", json=body, headers=h)
            return r.status_code, r.json()

    results = _run(20, post)
    assert sorted({s for s, _ in results}) in ([200, 201], [201])
    assert [s for s, _ in results].count(201) == 1
    bodies = {json.dumps(b, sort_keys=True) for _, b in results}
    assert len(bodies) == 1
    with pg_database.unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(Order)) == 1
        assert run_check(s, now=clock.now()) == []


def test_concurrent_returns_of_the_last_unit_refund_once(pg_app, pg_database, clock):
    h = _admin(pg_database, pg_app, clock)
    no = _setup(pg_app, h)
    with TestClient(pg_app) as c:
        assert c.post("/api/v1/orders", json=order_body(no), headers=h).status_code == 201

    def ret(i):
        with TestClient(pg_app) as c:
            r = c.post(
                "/api/v1/orders/pos/O-1/returns",
                json={
                    "external_id": f"R-{i}",
                    "returned_at": "2026-03-02T10:00:00+08:00",
                    "lines": [{"line_no": 1, "quantity": 1}],
                },
                headers=h,
            )
            return r.status_code

    codes = _run(10, ret)
    assert codes.count(201) == 1
    assert codes.count(422) == 9
    with pg_database.unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(OrderReturn)) == 1
        assert run_check(s, now=clock.now()) == []
