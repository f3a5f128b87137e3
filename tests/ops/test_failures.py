"""Failure behaviour of a real `patron serve` process: kill -9 in the middle of a burst of
orders, then the client retries everything; SIGTERM lets requests in flight finish."""

from __future__ import annotations

import re
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
from sqlalchemy import func, select

from patron.auth import service as auth_service
from patron.auth.principal import Principal
from patron.catalog import service as catalog
from patron.catalog.schemas import CategoryIn, ProductIn, StoreIn
from patron.checks import run_all
from patron.orders.models import Order
from tests.factories import order_body
from tests.ops.server import kill_all, serving

ORDERS = 32


def _prepare(database) -> str:
    now = datetime.now(UTC)
    actor = Principal.system("tests")
    with database.unit_of_work() as s:
        catalog.upsert_store(
            s, actor, StoreIn(code="SH001", name="s", region="East China"), now=now
        )
        for code in ("beauty", "fresh"):
            catalog.upsert_category(s, actor, CategoryIn(code=code, name=code), now=now)
        for sku, cat, price in (("BEA-1", "beauty", 19900), ("FRE-1", "fresh", 1250)):
            catalog.upsert_product(
                s, actor, ProductIn(sku=sku, name=sku, category_code=cat, price_fen=price), now=now
            )
        key = auth_service.create_api_key(
            s, actor, name="till", scopes=["members:write", "orders:write"], now=now
        )
    return key.secret


def _body(member_no: str, i: int) -> dict[str, object]:
    at = datetime.now(UTC).astimezone().isoformat(timespec="seconds")
    return order_body(member_no, ext=f"K-{i}", ordered_at=at)


def test_kill_9_mid_burst_then_retries_write_each_order_once(database, tmp_path):
    secret = _prepare(database)
    headers = {"X-API-Key": secret}
    acknowledged: dict[int, object] = {}  # order number -> the response the client got
    enough = threading.Event()
    refused: list[str] = []
    with serving(database.url, tmp_path) as server:
        members = []
        for n in range(4):
            r = httpx.post(
                f"{server.base}/api/v1/members",
                json={"phone": f"1390000{n:04d}", "channel": "store", "store_code": "SH001"},
                headers=headers,
                timeout=30,
            )
            assert r.status_code == 201, r.text
            members.append(r.json()["member_no"])
        bodies = {i: _body(members[i % len(members)], i) for i in range(ORDERS)}

        def send(i: int) -> None:
            try:
                r = httpx.post(
                    f"{server.base}/api/v1/orders",
                    json=bodies[i],
                    headers={**headers, "Idempotency-Key": f"burst-{i}"},
                    timeout=30,
                )
            except httpx.TransportError:
                return  # the server died under this request: the client will retry it
            if r.status_code != 201:
                refused.append(r.text)
            else:
                acknowledged[i] = r.json()
                if len(acknowledged) >= ORDERS // 4:
                    enough.set()

        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(send, i) for i in range(ORDERS)]
            assert enough.wait(120), (refused[:3], server.log.read_text()[-2000:])
            kill_all(server)  # kill -9 of the server and its workers
            server.proc.wait(30)
            for f in futures:
                f.result()
    assert 0 < len(acknowledged) < ORDERS  # the kill really landed mid-burst

    with serving(database.url, tmp_path) as server, httpx.Client(timeout=30) as client:
        for i in range(ORDERS):
            r = client.post(
                f"{server.base}/api/v1/orders",
                json=bodies[i],
                headers={**headers, "Idempotency-Key": f"burst-{i}"},
            )
            assert r.status_code in (200, 201), (i, r.text)
            if i in acknowledged:  # no acknowledged write lost, none written twice
                assert r.json() == acknowledged[i]
    with database.unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(Order)) == ORDERS
        assert s.scalar(select(func.count(func.distinct(Order.external_id)))) == ORDERS
        assert run_all(s, now=datetime.now(UTC)) == []


def _refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except OSError:
        return True


def test_sigterm_finishes_the_request_in_flight(database, tmp_path):
    secret = _prepare(database)
    with serving(database.url, tmp_path) as server:
        r = httpx.post(
            f"{server.base}/api/v1/members",
            json={"phone": "13900001111", "channel": "store", "store_code": "SH001"},
            headers={"X-API-Key": secret},
            timeout=30,
        )
        member_no = r.json()["member_no"]
        import json

        body = json.dumps(_body(member_no, 1)).encode()
        head = (
            f"POST /api/v1/orders HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {secret}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        conn = socket.create_connection(("127.0.0.1", server.port), timeout=60)
        conn.sendall(head + body[:10])  # the request is in flight: half its body is sent
        time.sleep(0.5)
        server.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        while not _refused(server.port) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _refused(server.port)  # shutting down: no new connections
        conn.sendall(body[10:])
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = conn.recv(65536)
            if not chunk:
                break
            reply += chunk
        conn.close()
        assert reply.startswith(b"HTTP/1.1 201"), reply[:300]
        # uvicorn re-raises the signal once it has drained, so the process ends "by SIGTERM"
        assert server.proc.wait(60) in (0, -signal.SIGTERM)
    with database.unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(Order)) == 1


def test_metrics_add_up_across_worker_processes(database, tmp_path):
    with serving(database.url, tmp_path, "--workers", "2") as server, httpx.Client() as c:
        for _ in range(12):  # new connections, so both workers answer some
            with httpx.Client(timeout=30) as one:
                assert one.get(f"{server.base}/health/live").status_code == 200
        body = c.get(f"{server.base}/metrics", timeout=30).text
    found = re.search(
        r'patron_http_requests_total\{method="GET",route="/health/live",status="200"\} (\S+)',
        body,
    )
    assert found, body[:2000]
    assert float(found.group(1)) >= 12  # including the start-up probes, from every worker
    assert "patron_database_up 1.0" in body
