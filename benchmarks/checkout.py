"""Checkout on PostgreSQL: quote + commit pairs per second next to the bare INSERT endpoint, and
what a commit costs against an order recorded through POST /api/v1/orders.

    python benchmarks/checkout.py [--members 2000] [--seconds 15] [--warmup 5] [--workers 2]
                                  [--points 50] [--profile 200]

Starts `patron serve` on loopback against a scratch database (members seeded with points, so a
commit can pay with them), warms the endpoints, then loads them with wrk (Debian's `wrk`) at 8
and 32 connections: a till's pair — POST /api/v1/checkout/quote, then POST
/api/v1/checkout/commit with the quote's total and points to earn as the expected values (each
wrk thread queues the commit a quote's answer calls for and sends it before the next quote) —
and POST /bench/bare (one INSERT + COMMIT) in the same run. A pair is counted by the order it
created. ``--profile N`` then measures in-process, one request at a time (no HTTP server), the
CPU milliseconds and statements of N commits and of N orders of the same basket (five runs
each, the median). Prints a final JSON line.
Goal: a commit costs ≤ 1.3× an order.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from _common import scratch_database, serve
from earn import count_orders, order_body, seed, wrk

from patron.auth.principal import Principal
from patron.config import generate_keys
from patron.context import build
from patron.db import Database
from patron.kit.timeutil import business_tz
from patron.ledger import service as ledger
from patron.members.models import Member

PORT = 8766
BASKET = [{"sku": "BEA-1", "quantity": 1}, {"sku": "FRE-1", "quantity": 2}]

# Each thread: a quote's answer queues the commit that accepts it; request() sends a queued
# commit first, else a new quote. The commit's external id is unique across threads.
LUA = """
local members = {%(members)s}
local counter = 0
local seq = 0
local threads = 0
local queue = {}
function setup(thread) thread:set("tid", threads); threads = threads + 1 end
local headers = {["Content-Type"]="application/json", ["X-API-Key"]="%(key)s"}
local basket = '"channel":"store","store_code":"SH001",'
  .. '"lines":[{"sku":"BEA-1","quantity":1},{"sku":"FRE-1","quantity":2}],'
  .. '"points_to_use":%(points)d'
request = function()
  counter = counter + 1
  local commit = table.remove(queue)
  if commit then
    return wrk.format("POST", "/api/v1/checkout/commit", headers, commit)
  end
  -- wrk runs two threads: each takes every other member, so no member has two pairs in flight
  local m = members[((2 * counter + tid) %% #members) + 1]
  return wrk.format("POST", "/api/v1/checkout/quote", headers,
    string.format('{"member_no":"%%s",%%s}', m, basket))
end
response = function(status, _, body)
  if status ~= 200 or not string.find(body, '"max_points"', 1, true) then return end
  local member = string.match(body, '"member_no":"(%%d+)"')
  local total = string.match(body, '"total_fen":(%%d+)')
  local earned = string.match(body, '"points_earned":(%%d+)')
  seq = seq + 1
  table.insert(queue, string.format(
    '{"member_no":"%%s",%%s,"source":"bench","external_id":"%(run)s-%%d-%%d",'
    .. '"expected_total_fen":%%s,"expected_points_earned":%%s,"payment_method":"wechat"}',
    member, basket, tid, seq, total, earned))
end
"""


def give_points(url: str, numbers: list[str], points: int) -> None:
    """Credit every seeded member ``points`` (an adjustment), so commits can pay with them."""
    db = Database(url)
    actor = Principal.system("bench")
    now = datetime.now(UTC) - timedelta(hours=1)
    with db.unit_of_work() as s:
        ctx = build(s, actor, now, business_tz("Asia/Shanghai"))
        ids = s.query(Member.id).filter(Member.member_no.in_(numbers)).all()
        for (member_id,) in ids:
            ledger.adjust_points(s, ctx, member_id, points, key=f"seed:{member_id}", reason="seed")
    db.dispose()


def profile(
    url: str, keys: dict[str, str], numbers: list[str], api_key: str, n: int, points: int
) -> dict[str, object]:
    """CPU ms and statements per commit and per order of the same basket, in-process."""
    from fastapi.testclient import TestClient
    from sqlalchemy import event

    from patron.app import create_app
    from patron.config import Settings

    settings = Settings(
        env="production", database_url=url, scheduler=False, log_level="WARNING", **keys
    )
    db = Database(url)
    app = create_app(settings, db)
    headers = {"X-API-Key": api_key}
    at = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    run = f"P{int(time.time())}"
    statements = 0

    def spy(*_args: object) -> None:
        nonlocal statements
        statements += 1

    def quote(client: TestClient, i: int) -> dict:
        body = {
            "member_no": numbers[i % len(numbers)],
            "channel": "store",
            "store_code": "SH001",
            "lines": BASKET,
            "points_to_use": points,
        }
        answer = client.post("/api/v1/checkout/quote", json=body, headers=headers)
        assert answer.status_code == 200, answer.text
        q = answer.json()
        return {
            **body,
            "source": "bench",
            "external_id": f"{run}-c{i}",
            "expected_total_fen": q["total_fen"],
            "expected_points_earned": q["points_earned"],
            "payment_method": "wechat",
        }

    def order(i: int) -> dict:
        return order_body(numbers[i % len(numbers)], f"{run}-o{i}", at)

    commit_runs: list[float] = []
    quote_runs: list[float] = []
    order_runs: list[float] = []
    commit_statements = order_statements = 0
    with TestClient(app) as client:
        for i in range(20):  # warm both paths
            answer = client.post("/api/v1/checkout/commit", json=quote(client, i), headers=headers)
            assert answer.status_code == 201, answer.text
            answer = client.post("/api/v1/orders", json=order(i), headers=headers)
            assert answer.status_code == 201, answer.text
        event.listen(db.engine, "before_cursor_execute", spy)
        at_i = 20
        for _ in range(5):
            started = time.process_time()
            bodies = [quote(client, i) for i in range(at_i, at_i + n)]
            quote_runs.append((time.process_time() - started) * 1000 / n)
            statements = 0
            started = time.process_time()
            for body in bodies:
                answer = client.post("/api/v1/checkout/commit", json=body, headers=headers)
                assert answer.status_code == 201, answer.text
            commit_runs.append((time.process_time() - started) * 1000 / n)
            commit_statements = statements
            statements = 0
            started = time.process_time()
            for i in range(at_i, at_i + n):
                answer = client.post("/api/v1/orders", json=order(i), headers=headers)
                assert answer.status_code == 201, answer.text
            order_runs.append((time.process_time() - started) * 1000 / n)
            order_statements = statements
            at_i += n
        event.remove(db.engine, "before_cursor_execute", spy)
    db.dispose()
    commit_ms, order_ms = statistics.median(commit_runs), statistics.median(order_runs)
    return {
        "requests": n,
        "commit_cpu_ms": round(commit_ms, 2),
        "order_cpu_ms": round(order_ms, 2),
        "commit_to_order": round(commit_ms / order_ms, 2),
        "quote_cpu_ms": round(statistics.median(quote_runs), 2),
        "commit_cpu_ms_runs": [round(r, 2) for r in commit_runs],
        "order_cpu_ms_runs": [round(r, 2) for r in order_runs],
        "statements_per_commit": round(commit_statements / n, 2),
        "statements_per_order": round(order_statements / n, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument(
        "--seconds", type=int, default=15, help="per load level (0: only the in-process profile)"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=5, help="seconds of load before measuring")
    parser.add_argument("--points", type=int, default=50, help="points each commit pays with")
    parser.add_argument("--port", type=int, default=PORT, help="loopback port of the server")
    parser.add_argument(
        "--profile", type=int, default=200, help="commits and orders measured in-process (0: no)"
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install -y wrk")
    keys = generate_keys()
    results: dict[str, object] = {"benchmark": "checkout", "workers": args.workers}
    with scratch_database() as url, tempfile.TemporaryDirectory() as tmp:
        numbers, api_key = seed(url, keys, args.members)
        # enough for every pair the run can make (a member pays ``points`` per commit)
        give_points(url, numbers, args.points * 1000)

        def pairs_script(conns: int | str) -> Path:
            script = Path(tmp) / f"checkout-{conns}.lua"
            script.write_text(
                LUA
                % {
                    "members": ",".join(f'"{n}"' for n in numbers),
                    "run": f"R{int(time.time())}c{conns}",
                    "key": api_key,
                    "points": args.points,
                }
            )
            return script

        with serve(url, keys, args.port, args.workers, bench_endpoints=True) as base:
            if not args.seconds:  # --seconds 0: the in-process profile only
                conns_levels: tuple[int, ...] = ()
            else:
                conns_levels = (8, 32)
            bare_script = Path(tmp) / "bare.lua"
            bare_script.write_text('wrk.method = "POST"\n')
            if conns_levels:
                wrk(f"{base}/", 32, args.warmup, pairs_script("warmup"))
                wrk(f"{base}/bench/bare", 32, args.warmup, bare_script)
            total = count_orders(url)
            for conns in conns_levels:
                started = time.perf_counter()
                load = wrk(f"{base}/", conns, args.seconds, pairs_script(conns))
                elapsed = time.perf_counter() - started
                bare = wrk(f"{base}/bench/bare", conns, args.seconds, bare_script)
                total, before = count_orders(url), total
                pairs = (total - before) / elapsed
                results[f"c{conns}"] = {
                    "pairs_per_s": round(pairs, 1),
                    "requests": load,
                    "bare": bare,
                    # a pair is two requests: its rate against the bare endpoint's
                    "ratio": round(pairs / bare["rps"], 3) if bare["rps"] else None,
                }
        if args.profile:
            results["profile"] = profile(url, keys, numbers, api_key, args.profile, args.points)
    results["goal"] = {"commit_to_order": 1.3}
    print(json.dumps(results))


if __name__ == "__main__":
    main()
