"""Flash redemption over HTTP on PostgreSQL: N attempts for K units from M members at C
connections, next to a bare guarded-UPDATE endpoint on the same server.

    python benchmarks/flash.py [--attempts 10000] [--units 100] [--members 2000]
                               [--connections 200] [--workers 2]

Seeds a scratch database (a store, a gift with K units in stock, a flash sale of K units at
one per member, M members with enough points for one unit), starts `patron serve` on
loopback, then sends exactly N requests at C connections (benchmarks/_load.py):
POST /bench/guarded (one `UPDATE … SET granted = granted + 1 WHERE granted < quantity` and a
COMMIT) and POST /api/v1/mall/redemptions with the flash sale (authentication, the member's
lock, the guarded flash counter, the stock reservation, the points spend, the order, its
events and audit). Then reconciles: exactly K units granted (flash counter, redemption rows,
stock reserved), every member's balance is what they had less the points of their units, and
`patron check` finds nothing. Prints a final JSON line. Goal: exactly K, ≥ 0.5× the bare
endpoint's attempts/s, p99 ≤ 500 ms.
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
from sqlalchemy import func, select, text

from patron import checks
from patron.auth import service as auth
from patron.auth.principal import Principal
from patron.catalog import service as catalog
from patron.catalog.schemas import StoreIn
from patron.config import generate_keys
from patron.db import Database
from patron.kit.crypto import FieldCipher
from patron.kit.timeutil import business_tz
from patron.ledger import flows, queries
from patron.mall import redemptions, stock
from patron.mall import service as mall
from patron.mall.models import FlashSale, Redemption, Stock
from patron.mall.schemas import GiftIn
from patron.members import service as members
from patron.members.schemas import MemberCreate
from patron.web.bench import CREATE_GUARDED

PORT = 8769
POINTS = 100  # the flash price; every member holds this much, enough for one unit
GIFT = "FLASH"


def seed(url: str, keys: dict[str, str], m: int, k: int) -> tuple[list[str], int, str]:
    db = Database(url)
    cipher = FieldCipher(base64.b64decode(keys["data_key"]), base64.b64decode(keys["index_key"]))
    actor = Principal.system("bench")
    now = datetime.now(UTC) - timedelta(minutes=5)
    tz = business_tz("Asia/Shanghai")
    with db.unit_of_work() as s:
        s.execute(text(CREATE_GUARDED))
        s.execute(
            text("INSERT INTO bench_units (id, quantity, granted) VALUES (1, :k, 0)"), {"k": k}
        )
        catalog.upsert_store(
            s, actor, StoreIn(code="SH001", name="bench", region="East China"), now=now
        )
        gift = GiftIn(code=GIFT, name="Flash gift", category="home", points=POINTS * 5)
        mall.upsert_gift(s, actor, gift, now=now)
        ctx = mall.make_ctx(s, actor, now, tz)
        stock.receive(s, ctx, GIFT, "east", k, "bench")
        sale = redemptions.create_flash_sale(
            s,
            ctx,
            GIFT,
            points=POINTS,
            quantity=k,
            per_member_limit=1,
            starts_at=now,
            ends_at=now + timedelta(days=1),
        )
        numbers = []
        for i in range(m):
            member = members.register(
                s, actor, cipher, MemberCreate(phone=f"137{i:08d}", channel="web"), now=now, tz=tz
            )
            flows.earn(
                s, ctx, member.id, points=POINTS, source_type="bench", source_id=member.member_no
            )
            numbers.append(member.member_no)
        key = auth.create_api_key(s, actor, name="bench", scopes=["mall:redeem"], now=now)
        sale_id = sale.id
    db.dispose()
    return numbers, sale_id, key.secret


def reconcile(url: str, numbers: list[str], sale_id: int) -> dict[str, object]:
    db = Database(url)
    now = datetime.now(UTC)
    with db.unit_of_work() as s:
        granted = s.scalar(select(FlashSale.granted).where(FlashSale.id == sale_id))
        rows = s.scalar(
            select(func.count(Redemption.id)).where(Redemption.flash_sale_id == sale_id)
        )
        winners = s.scalar(
            select(func.count(func.distinct(Redemption.member_id))).where(
                Redemption.flash_sale_id == sale_id
            )
        )
        reserved = s.scalar(select(func.sum(Stock.reserved)))
        spent = 0
        wrong = 0
        units = dict(
            s.execute(
                select(Redemption.member_id, func.count(Redemption.id))
                .where(Redemption.flash_sale_id == sale_id)
                .group_by(Redemption.member_id)
            ).all()
        )
        for no in numbers:
            member = members.get_member(s, no)
            available = queries.balance(s, member.id, now).available
            expected = POINTS - POINTS * int(units.get(member.id, 0))
            spent += POINTS - available
            wrong += available != expected
        violations = checks.run_all(s, now=now)
    db.dispose()
    return {
        "flash_granted": granted,
        "redemptions": rows,
        "winners": winners,
        "stock_reserved": reserved,
        "points_spent": spent,
        "balances_wrong": wrong,
        "check_violations": len(violations),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--attempts", type=int, default=10_000)
    parser.add_argument("--units", type=int, default=100)
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=PORT, help="loopback port of the server")
    args = parser.parse_args()
    keys = generate_keys()
    results: dict[str, object] = {
        "benchmark": "flash",
        "attempts": args.attempts,
        "units": args.units,
        "members": args.members,
        "connections": args.connections,
        "workers": args.workers,
    }
    with scratch_database() as url:
        started = time.perf_counter()
        numbers, sale_id, api_key = seed(url, keys, args.members, args.units)
        results["seed_seconds"] = round(time.perf_counter() - started, 1)
        with serve(url, keys, args.port, args.workers, bench_endpoints=True) as base:
            bare = run(
                base,
                args.attempts,
                args.connections,
                lambda _i: ("POST", "/bench/guarded", {}, None),
            )
            headers = {"X-API-Key": api_key}

            def attempt(i: int) -> tuple[str, str, dict[str, str], object]:
                body = {
                    "member_no": numbers[i % len(numbers)],
                    "gift_code": GIFT,
                    "flash_sale_id": sale_id,
                    "store_code": "SH001",
                }
                return "POST", "/api/v1/mall/redemptions", headers, body

            flash = run(base, args.attempts, args.connections, attempt)
        results["bare"] = bare
        results["flash"] = flash
        results["ratio"] = round(flash["rps"] / bare["rps"], 3) if bare["rps"] else None
        results["reconciled"] = rec = reconcile(url, numbers, sale_id)
        exact = (
            rec["flash_granted"] == rec["redemptions"] == rec["winners"] == args.units
            and rec["stock_reserved"] == args.units
            and flash["statuses"].get("201") == args.units
            and rec["points_spent"] == POINTS * args.units
            and rec["balances_wrong"] == 0
            and rec["check_violations"] == 0
        )
        results["exactly_k"] = exact
    results["goal"] = {"exactly_k": True, "ratio": 0.5, "p99_ms": 500}
    print(json.dumps(results))


if __name__ == "__main__":
    main()
