"""Latency of the member portal's home page at 200 concurrent signed-in members, PostgreSQL.

    python benchmarks/portal_home.py [--members 500] [--connections 200] [--seconds 20]

Seeds members with points (lots that expire), a check-in and a growth history; starts
`patron serve` on loopback against a scratch database; signs every member in by issuing the
portal's session cookie with the server's key (the same token the SMS sign-in sets); then loads
GET /portal/ with wrk: each of the 200 connections is a member's phone, each request a signed-in
member's home page (card with a fresh QR token, balance and expiry, tier progress, check-in).
Two loads, both with 200 members signed in at once (wrk, one connection per phone):
- ``paced``: each member's phone opens the home page, waits a think time (uniform ±50% around
  ``--think`` seconds, 3 s by default; wrk's ``delay``), and opens it again — members using the
  portal (200 phones × one view per 3 s ≈ 67 views a second offered);
- ``closed``: wrk with 200 connections each sending the next request as soon as the last
  answered (saturation: the latency is mostly queueing once the server is at capacity);
- ``one_connection``: one request at a time, the page's own time without queueing.
Prints a final JSON line with p50/p95/p99 and requests per second. Goal: p95 ≤ 100 ms.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))
from _common import scratch_database, serve

from patron.auth.principal import Principal
from patron.checkin import service as checkin
from patron.config import generate_keys
from patron.db import Database
from patron.kit.crypto import FieldCipher
from patron.kit.timeutil import business_tz
from patron.ledger import flows
from patron.members import service as members
from patron.members.schemas import MemberCreate
from patron.orders.service import make_ctx
from patron.web.pages import MEMBER_COOKIE, issue_member_session

PORT = 8766
# wrk's own percentiles (its --latency table has no p95); one JSON line at the end.
LUA = """
local cookies = {%(cookies)s}
local counter = 0
local threads = 0
-- `tid` becomes a global of each thread's own state, so the threads use different members
function setup(thread) thread:set("tid", threads); threads = threads + 1 end
request = function()
  counter = counter + 1
  local c = cookies[((counter * 2 + tid) %% #cookies) + 1]
  local headers = {["Cookie"] = "%(name)s=" .. c, ["Accept-Language"] = "zh-CN"}
  return wrk.format("GET", "/portal/", headers)
end
-- paced: a member looks at the page, then waits a think time before the next view
if %(think_ms)d > 0 then
  delay = function() return math.random(%(think_ms)d / 2, %(think_ms)d * 3 / 2) end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %%d, "seconds": %%.3f, "p50_ms": %%.2f, "p95_ms": %%.2f, '
    .. '"p99_ms": %%.2f, "max_ms": %%.2f, "errors": {"status": %%d, "connect": %%d, '
    .. '"read": %%d, "write": %%d, "timeout": %%d}}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(95) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    e.status, e.connect, e.read, e.write, e.timeout))
end
"""


def seed(url: str, keys: dict[str, str], n: int) -> list[int]:
    db = Database(url)
    cipher = FieldCipher(base64.b64decode(keys["data_key"]), base64.b64decode(keys["index_key"]))
    actor = Principal.system("bench")
    tz = business_tz("Asia/Shanghai")
    now = datetime.now(UTC)
    ids: list[int] = []
    with db.unit_of_work() as s:
        for i in range(n):
            m = members.register(
                s,
                actor,
                cipher,
                MemberCreate(phone=f"137{i:08d}", channel="web", name=f"会员{i}"),
                now=now - timedelta(days=200),
                tz=tz,
            )
            ids.append(m.id)
    # a history on every home page: earnings at several dates (several expiry lots), some
    # growth for the tier progress, and yesterday's check-in (a live streak)
    for start in range(0, n, 500):
        with db.unit_of_work() as s:
            for mid in ids[start : start + 500]:
                for k, days_ago in enumerate((120, 30, 3)):
                    ctx = make_ctx(s, actor, now - timedelta(days=days_ago), tz)
                    flows.earn(
                        s,
                        ctx,
                        mid,
                        points=100 + k * 50,
                        growth_value=80,
                        source_type="bench",
                        source_id=f"{mid}-{k}",
                        reason="bench",
                    )
                checkin.check_in(s, make_ctx(s, actor, now - timedelta(days=1), tz), mid)
    db.dispose()
    return ids


def wrk(url: str, conns: int, seconds: int, script: Path) -> dict[str, Any]:
    threads = str(min(2, conns))
    cmd = ["wrk", "-t", threads, "-c", str(conns), "-d", f"{seconds}s", "--timeout", "10s"]
    out = subprocess.run([*cmd, "-s", str(script), url], capture_output=True, text=True, check=True)
    found = re.search(r"RESULT (\{.*\})", out.stdout)
    assert found, out.stdout + out.stderr
    result: dict[str, Any] = json.loads(found.group(1))
    result["rps"] = round(result["requests"] / result["seconds"], 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=PORT, help="loopback port of the server")
    # uniform ±50%: at 3 s the longest pause (4.5 s) stays within uvicorn's 5 s keep-alive,
    # so the figures are of page views, not of reconnections
    parser.add_argument("--think", type=float, default=3.0, help="mean seconds between views")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install -y wrk")
    keys = generate_keys()
    token_key = base64.b64decode(keys["token_key"])
    results: dict[str, object] = {
        "benchmark": "portal_home",
        "members": args.members,
        "connections": args.connections,
        "workers": args.workers,
    }
    with scratch_database() as url, tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        ids = seed(url, keys, args.members)
        results["seed_seconds"] = round(time.perf_counter() - t0, 1)
        now = datetime.now(UTC)
        cookies = [issue_member_session(mid, token_key, 24 * 60, now) for mid in ids]

        def script(think_ms: int) -> Path:
            path = Path(tmp) / f"portal-{think_ms}.lua"
            path.write_text(
                LUA
                % {
                    "cookies": ",".join(f'"{c}"' for c in cookies),
                    "name": MEMBER_COOKIE,
                    "think_ms": think_ms,
                }
            )
            return path

        with serve(
            url,
            keys,
            args.port,
            args.workers,
            settings={"PORTAL_SESSION_MINUTES": str(24 * 60)},
            log="patron-portal-bench.log",
        ) as base:
            # one request first: the page must really be the signed-in home page
            req = urllib.request.Request(
                f"{base}/portal/", headers={"Cookie": f"{MEMBER_COOKIE}={cookies[0]}"}
            )
            with urllib.request.urlopen(req, timeout=10) as resp:
                body = resp.read().decode()
                assert resp.status == 200, body[:300]
                assert "data-card-token" in body, body[:300]
            home = f"{base}/portal/"
            wrk(home, args.connections, 3, script(0))  # warm-up
            time.sleep(5)  # wrk stops sending, not the server serving: let the backlog drain
            think_ms = int(args.think * 1000)
            results["paced"] = {
                **wrk(home, args.connections, args.seconds, script(think_ms)),
                "think_s": args.think,
            }
            results["closed"] = wrk(home, args.connections, args.seconds, script(0))
            time.sleep(5)
            # one phone at a time: the page's own time, without queueing
            results["one_connection"] = wrk(home, 1, 10, script(0))
    results["goal"] = {"p95_ms": 100}
    print(json.dumps(results))


if __name__ == "__main__":
    main()
