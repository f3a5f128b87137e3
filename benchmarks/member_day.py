"""A member-day mix against a real `patron serve` on PostgreSQL, ramped until it saturates.

    python benchmarks/member_day.py [--members 2000] [--steps 4,8,16] [--seconds 20] [--workers 2]

Creates a scratch database with a store, products and members (through the API), starts
`patron serve --workers N`, then for each concurrency step runs closed-loop clients for
--seconds, each request drawn from a mix shaped like a member day: balance views (the portal's
home reads the balance), member look-ups at the till, orders that earn points, redemptions
(points spends). Coupon quotes are not in the mix (no coupons in Patron yet). Prints, per step,
requests per second per kind, p95/p99 in milliseconds and errors, then runs `patron check`;
the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import sys
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime

import httpx

sys.path.insert(0, os.path.dirname(__file__))
from _common import scratch_database, serve

from patron.auth import service as auth_service
from patron.auth.principal import Principal
from patron.catalog import service as catalog
from patron.catalog.schemas import CategoryIn, ProductIn, StoreIn
from patron.checks import run_all
from patron.config import generate_keys
from patron.db import Database

MIX = (("balance", 50), ("lookup", 20), ("order", 25), ("redeem", 5))


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _prepare(url: str) -> str:
    now = datetime.now(UTC)
    actor = Principal.system("bench")
    db = Database(url)
    with db.unit_of_work() as s:
        catalog.upsert_store(
            s, actor, StoreIn(code="SH001", name="s", region="East China"), now=now
        )
        catalog.upsert_category(s, actor, CategoryIn(code="beauty", name="b"), now=now)
        catalog.upsert_product(
            s,
            actor,
            ProductIn(sku="BEA-1", name="b", category_code="beauty", price_fen=19900),
            now=now,
        )
        key = auth_service.create_api_key(
            s,
            actor,
            name="bench",
            scopes=["members:read", "members:write", "orders:write", "points:read", "points:write"],
            now=now,
        )
    db.dispose()
    return key.secret


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--steps", default="4,8,16")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with scratch_database() as url:
        secret = _prepare(url)
        headers = {"X-API-Key": secret}
        with serve(url, generate_keys(), _port(), args.workers) as base:
            members: list[str] = []
            with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
                for n in range(args.members):
                    r = c.post(
                        "/api/v1/members",
                        json={"phone": f"137{n:08d}", "channel": "store", "store_code": "SH001"},
                    )
                    r.raise_for_status()
                    members.append(r.json()["member_no"])
            counter = iter(range(10**9))
            lock = threading.Lock()
            steps = []
            for clients in (int(x) for x in args.steps.split(",")):
                lat: dict[str, list[float]] = defaultdict(list)
                errors: dict[str, int] = defaultdict(int)
                stop = time.monotonic() + args.seconds

                def client(
                    seed: int,
                    stop: float = stop,
                    lat: dict[str, list[float]] = lat,
                    errors: dict[str, int] = errors,
                ) -> None:
                    rng = random.Random(seed)
                    kinds = [k for k, w in MIX for _ in range(w)]
                    with httpx.Client(base_url=base, headers=headers, timeout=60) as c:
                        while time.monotonic() < stop:
                            kind = rng.choice(kinds)
                            no = rng.choice(members)
                            with lock:
                                n = next(counter)
                            t0 = time.perf_counter()
                            if kind == "balance":
                                r = c.get(f"/api/v1/members/{no}/points")
                            elif kind == "lookup":
                                r = c.get(f"/api/v1/members/{no}")
                            elif kind == "order":
                                r = c.post(
                                    "/api/v1/orders",
                                    headers={"Idempotency-Key": f"o-{n}"},
                                    json={
                                        "source": "pos", "external_id": f"D-{n}",
                                        "member_no": no, "channel": "store",
                                        "store_code": "SH001",
                                        "ordered_at": datetime.now(UTC).isoformat(),
                                        "lines": [{"sku": "BEA-1", "quantity": 1,
                                                   "unit_price_fen": 19900}],
                                        "payments": [{"method": "wechat", "amount_fen": 19900}],
                                    },
                                )  # fmt: skip
                            else:
                                r = c.post(
                                    f"/api/v1/members/{no}/points/spend",
                                    headers={"Idempotency-Key": f"s-{n}"},
                                    json={"points": 10, "source_type": "redeem",
                                          "source_id": f"S-{n}"},
                                )  # fmt: skip
                            ms = (time.perf_counter() - t0) * 1000
                            with lock:
                                # A redemption refused for too few points is a correct answer.
                                if r.status_code >= 500 or (
                                    r.status_code >= 400
                                    and not (kind == "redeem" and r.status_code in (409, 422))
                                ):
                                    errors[kind] += 1
                                lat[kind].append(ms)

                threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                step = {
                    "clients": clients,
                    "per_second": round(sum(len(v) for v in lat.values()) / args.seconds, 1),
                    "kinds": {
                        k: {
                            "per_second": round(len(v) / args.seconds, 1),
                            "p95_ms": round(_pct(v, 0.95), 1),
                            "p99_ms": round(_pct(v, 0.99), 1),
                            "errors": errors[k],
                        }
                        for k, v in sorted(lat.items())
                    },
                }
                print(json.dumps(step), flush=True)
                steps.append(step)
        db = Database(url)
        with db.unit_of_work() as s:
            violations = run_all(s, now=datetime.now(UTC))
        db.dispose()
    best = max(steps, key=lambda s: s["per_second"]) if steps else {}
    print(
        json.dumps(
            {
                "benchmark": "member_day",
                "members": args.members,
                "workers": args.workers,
                "steps": steps,
                "sustained_per_second": best.get("per_second"),
                "violations": len(violations),
            }
        )
    )


if __name__ == "__main__":
    main()
