"""A member-day mix against a real `patron serve` on PostgreSQL, ramped until it saturates.

    python benchmarks/member_day.py [--members 2000] [--steps 4,8,16,32,64] [--seconds 20]
                                    [--workers 2]

Creates a scratch database with a store, products, a mall gift in stock, five coupon
templates and members (through the API), gives every member points and a wallet of five
coupons, starts `patron serve --workers N`, then for each concurrency step runs closed-loop
clients for --seconds, each request drawn from a mix shaped like a member day: balance views
(the portal's home reads the balance), member look-ups at the till, checkout quotes with the
best coupons, orders that earn points, points spends and mall redemptions (the gift's stock,
the points spend and the redemption in one write). The ramp stops when a step adds less than
5 % to the best throughput so far (saturation). Prints, per step, requests per second per
kind, p95/p99 in milliseconds and errors, then runs `patron check`; the last line is JSON with
the sustained mix per second (the best step).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime

import httpx

sys.path.insert(0, os.path.dirname(__file__))
from _common import scratch_database, serve
from coupon_quote import TEMPLATES
from sqlalchemy import select

from patron.auth import service as auth_service
from patron.auth.principal import Principal
from patron.catalog import service as catalog
from patron.catalog.schemas import CategoryIn, ProductIn, StoreIn
from patron.checks import run_all
from patron.config import generate_keys
from patron.coupons import service as coupons
from patron.db import Database
from patron.kit.timeutil import business_tz
from patron.ledger import flows
from patron.mall import service as mall
from patron.mall import stock
from patron.mall.schemas import GiftIn
from patron.members.models import Member

MIX = (
    ("balance", 40),
    ("lookup", 15),
    ("quote", 15),
    ("order", 20),
    ("spend", 5),
    ("mall", 5),
)
PORT = 8770
GIFT = "MUG"
#: a refusal that is a correct answer (too few points, the member's limit, out of stock)
REFUSED = {"spend": (409, 422), "mall": (409, 422)}


def _prepare(url: str) -> str:
    now = datetime.now(UTC)
    actor = Principal.system("bench")
    db = Database(url)
    with db.unit_of_work() as s:
        catalog.upsert_store(
            s, actor, StoreIn(code="SH001", name="s", region="East China"), now=now
        )
        for code in ("beauty", "fresh"):
            catalog.upsert_category(s, actor, CategoryIn(code=code, name=code), now=now)
        for sku, cat, price in (("BEA-1", "beauty", 19900), ("FRE-1", "fresh", 1250)):
            catalog.upsert_product(
                s, actor, ProductIn(sku=sku, name=sku, category_code=cat, price_fen=price), now=now
            )
        mall.upsert_gift(
            s, actor, GiftIn(code=GIFT, name="Mug", category="home", points=100), now=now
        )
        ctx = mall.make_ctx(s, actor, now, business_tz("Asia/Shanghai"))
        stock.receive(s, ctx, GIFT, "east", 1_000_000, "bench")
        for code, rules in TEMPLATES.items():
            coupons.put_template(
                s,
                ctx,
                code,
                name=code,
                rules=rules,
                total_quantity=None,
                per_member_limit=1,
                points_price=0,
                status="active",
            )
        key = auth_service.create_api_key(
            s,
            actor,
            name="bench",
            scopes=[
                "members:read",
                "members:write",
                "orders:write",
                "points:read",
                "points:write",
                "mall:redeem",
            ],
            now=now,
        )
    db.dispose()
    return key.secret


def _wallets(url: str, numbers: list[str]) -> None:
    """Every member: 5,000 points and one coupon of each template."""
    now = datetime.now(UTC)
    actor = Principal.system("bench")
    db = Database(url)
    with db.unit_of_work() as s:
        ctx = mall.make_ctx(s, actor, now, business_tz("Asia/Shanghai"))
        ids = list(s.scalars(select(Member.id).where(Member.member_no.in_(numbers))))
        for mid in ids:
            flows.earn(s, ctx, mid, points=5000, source_type="bench", source_id=str(mid))
        for code in TEMPLATES:
            coupons.issue_many(s, ctx, code, ids, reason="manual", key=f"manual:bench:{code}")
    db.dispose()


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--steps", default="4,8,16,32,64")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=PORT, help="loopback port of the server")
    args = parser.parse_args()
    with scratch_database() as url:
        secret = _prepare(url)
        headers = {"X-API-Key": secret}
        with serve(url, generate_keys(), args.port, args.workers) as base:
            members: list[str] = []
            with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
                for n in range(args.members):
                    r = c.post(
                        "/api/v1/members",
                        json={"phone": f"137{n:08d}", "channel": "store", "store_code": "SH001"},
                    )
                    r.raise_for_status()
                    members.append(r.json()["member_no"])
            _wallets(url, members)
            counter = iter(range(10**9))
            lock = threading.Lock()
            steps = []
            for clients in (int(x) for x in args.steps.split(",")):
                lat: dict[str, list[float]] = defaultdict(list)
                errors: dict[str, int] = defaultdict(int)
                refused: dict[str, int] = defaultdict(int)
                stop = time.monotonic() + args.seconds

                def client(
                    seed: int,
                    stop: float = stop,
                    lat: dict[str, list[float]] = lat,
                    errors: dict[str, int] = errors,
                    refused: dict[str, int] = refused,
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
                            try:
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
                                elif kind == "quote":
                                    r = c.post(
                                        "/api/v1/checkout/quote",
                                        json={"member_no": no, "store_code": "SH001",
                                              "channel": "store", "best_coupons": True,
                                              "lines": [{"sku": "BEA-1", "quantity": 1},
                                                        {"sku": "FRE-1", "quantity": 4}]},
                                    )  # fmt: skip
                                elif kind == "spend":
                                    r = c.post(
                                        f"/api/v1/members/{no}/points/spend",
                                        headers={"Idempotency-Key": f"s-{n}"},
                                        json={"points": 10, "source_type": "redeem",
                                              "source_id": f"S-{n}"},
                                    )  # fmt: skip
                                else:
                                    r = c.post(
                                        "/api/v1/mall/redemptions",
                                        headers={"Idempotency-Key": f"m-{n}"},
                                        json={"member_no": no, "gift_code": GIFT,
                                              "store_code": "SH001"},
                                    )  # fmt: skip
                                status = r.status_code
                            except httpx.HTTPError:
                                status = 0  # the connection failed or timed out: an error
                            ms = (time.perf_counter() - t0) * 1000
                            with lock:
                                if status == 0 or status >= 400:
                                    if status in REFUSED.get(kind, ()):
                                        refused[kind] += 1
                                    else:
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
                            **({"refused": refused[k]} if k in REFUSED else {}),
                        }
                        for k, v in sorted(lat.items())
                    },
                }
                print(json.dumps(step), flush=True)
                top = max((float(x["per_second"]) for x in steps), default=0.0)
                steps.append(step)
                if top and float(step["per_second"]) < top * 1.05:
                    break  # saturated: more clients add no throughput
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
