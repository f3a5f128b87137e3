"""Latency of the portal's mall page with many signed-in members browsing, PostgreSQL.

    python benchmarks/mall_browse.py [--members 200] [--gifts 60] [--requests 4000]
                                     [--connections 200] [--workers 2]
                                     [--think-ms 10000] [--pages 8]

Seeds a catalogue (gifts in every category and value band, stock in every warehouse, some
redemptions so the "hot" tags have something to count) and members; starts `patron serve` on
loopback; signs every member in by issuing the portal's session cookie with the server's key
(the token the SMS sign-in sets); then sends GET /portal/mall — the whole catalogue, or one
category, or one value band, in turn — as the members: ``--connections`` members at once, each
asking for the next page as soon as the last one came (closed loop: the latency includes the
queue once the server is saturated), one request at a time (the page's own time), and as
people browse: every member at once, each reading a page for a random 0–20 s (``--think-ms``
10,000 on average) before the next (``--pages`` each). Prints a final JSON line with
p50/p95/p99 and requests per second. Goal: p95 ≤ 100 ms while the members browse.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta

sys.path.insert(0, os.path.dirname(__file__))
from _common import scratch_database, serve
from _load import run

from patron.auth.principal import Principal
from patron.catalog import service as catalog
from patron.catalog.schemas import StoreIn
from patron.config import generate_keys
from patron.db import Database
from patron.kit.crypto import FieldCipher
from patron.kit.timeutil import business_tz
from patron.ledger import flows
from patron.mall import redemptions, stock
from patron.mall import service as mall
from patron.mall.schemas import GiftIn
from patron.members import service as members
from patron.members.schemas import MemberCreate
from patron.web.pages import MEMBER_COOKIE, issue_member_session

PORT = 8768
CATEGORIES = ("home", "digital", "mother_baby", "beauty")
PRICES = (60, 90, 150, 300, 480, 800, 1500)


def seed(url: str, keys: dict[str, str], m: int, gifts: int) -> list[int]:
    db = Database(url)
    cipher = FieldCipher(base64.b64decode(keys["data_key"]), base64.b64decode(keys["index_key"]))
    actor = Principal.system("bench")
    now = datetime.now(UTC) - timedelta(days=1)
    tz = business_tz("Asia/Shanghai")
    with db.unit_of_work() as s:
        catalog.upsert_store(
            s, actor, StoreIn(code="SH001", name="bench", region="East China"), now=now
        )
        ctx = mall.make_ctx(s, actor, now, tz)
        codes = []
        for i in range(gifts):
            code = f"G{i:03d}"
            data = GiftIn(
                code=code,
                name=f"Gift {i}",
                category=CATEGORIES[i % len(CATEGORIES)],
                points=PRICES[i % len(PRICES)],
                description="A gift of the benchmark catalogue.",
            )
            mall.upsert_gift(s, actor, data, now=now)
            for wh in ("north", "east", "south"):
                stock.receive(s, ctx, code, wh, 50, "bench")
            codes.append(code)
        ids = []
        for i in range(m):
            member = members.register(
                s, actor, cipher, MemberCreate(phone=f"136{i:08d}", channel="web"), now=now, tz=tz
            )
            flows.earn(s, ctx, member.id, points=5000, source_type="bench", source_id=str(i))
            ids.append(member.id)
            if i < 100:  # redemptions for the hot tags
                req = redemptions.RedeemRequest(gift_code=codes[i % len(codes)], quantity=1)
                redemptions.redeem(s, ctx, member, req)
    db.dispose()
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--gifts", type=int, default=60)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=PORT, help="loopback port of the server")
    parser.add_argument(
        "--think-ms",
        type=float,
        default=10_000,
        help="the browsing phase: each member reads a page this long on average",
    )
    parser.add_argument("--pages", type=int, default=8, help="pages per member when browsing")
    args = parser.parse_args()
    keys = generate_keys()
    token_key = base64.b64decode(keys["token_key"])
    results: dict[str, object] = {
        "benchmark": "mall_browse",
        "members": args.members,
        "gifts": args.gifts,
        "connections": args.connections,
        "workers": args.workers,
    }
    with scratch_database() as url:
        started = time.perf_counter()
        ids = seed(url, keys, args.members, args.gifts)
        results["seed_seconds"] = round(time.perf_counter() - started, 1)
        now = datetime.now(UTC)
        cookies = [issue_member_session(mid, token_key, 24 * 60, now) for mid in ids]
        paths = ["/portal/mall", *(f"/portal/mall?category={c}" for c in CATEGORIES)]
        paths += [f"/portal/mall?band={b}" for b in range(3)]

        def page(i: int) -> tuple[str, str, dict[str, str], None]:
            cookie = f"{MEMBER_COOKIE}={cookies[i % len(cookies)]}"
            return "GET", paths[i % len(paths)], {"Cookie": cookie}, None

        with serve(url, keys, args.port, args.workers) as base:
            run(base, 50, 5, page)  # warm the workers
            results["one_connection"] = run(base, 100, 1, page)
            results["concurrent"] = run(base, args.requests, args.connections, page)
            # The goal's case: every member browsing at once, reading each page before the next.
            results["browsing"] = run(
                base, args.members * args.pages, args.members, page, think_ms=args.think_ms
            )
    results["goal"] = {"p95_ms": 100}
    print(json.dumps(results))


if __name__ == "__main__":
    main()
