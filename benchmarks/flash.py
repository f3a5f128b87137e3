"""Flash redemption over HTTP on PostgreSQL: N attempts for K units from M members at C
connections, next to a bare guarded-UPDATE endpoint on the same server.

    python benchmarks/flash.py [--attempts 10000] [--units 100] [--members 2000]
                               [--connections 200] [--workers 2] [--client wrk|python]

Seeds a scratch database (a store, a gift with K units in stock, a flash sale of K units at
one per member, a second gift and sale of K units to warm the server with, M members with
enough points for one unit of each), starts `patron serve` on loopback, warms both endpoints
(N/5 requests each, not counted; the bare endpoint's counter is reset after), then sends N
answered requests at C connections with wrk (benchmarks/_wrk.py; ``--client python`` uses the
asyncio client of benchmarks/_load.py, whose own CPU on the same cores dominates the latencies
at 200 connections):
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
import _wrk
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
POINTS = 100  # the flash price; every member holds enough for one unit of each sale
GIFT = "FLASH"
WARM = "WARMUP"  # the warm-up sale's gift


def seed(url: str, keys: dict[str, str], m: int, k: int) -> tuple[list[str], int, int, str]:
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
        ctx = mall.make_ctx(s, actor, now, tz)
        sales = []
        for code in (GIFT, WARM):
            gift = GiftIn(code=code, name=f"{code} gift", category="home", points=POINTS * 5)
            mall.upsert_gift(s, actor, gift, now=now)
            stock.receive(s, ctx, code, "east", k, "bench")
            sale = redemptions.create_flash_sale(
                s,
                ctx,
                code,
                points=POINTS,
                quantity=k,
                per_member_limit=1,
                starts_at=now,
                ends_at=now + timedelta(days=1),
            )
            sales.append(sale)
        numbers = []
        for i in range(m):
            member = members.register(
                s, actor, cipher, MemberCreate(phone=f"137{i:08d}", channel="web"), now=now, tz=tz
            )
            flows.earn(
                s,
                ctx,
                member.id,
                points=2 * POINTS,
                source_type="bench",
                source_id=member.member_no,
            )
            numbers.append(member.member_no)
        key = auth.create_api_key(s, actor, name="bench", scopes=["mall:redeem"], now=now)
        sale_id, warm_id = sales[0].id, sales[1].id
    db.dispose()
    return numbers, sale_id, warm_id, key.secret


def reconcile(url: str, numbers: list[str], sale_id: int, warm_id: int) -> dict[str, object]:
    db = Database(url)
    now = datetime.now(UTC)
    with db.unit_of_work() as s:
        granted = s.scalar(select(FlashSale.granted).where(FlashSale.id == sale_id))
        warm_granted = s.scalar(select(FlashSale.granted).where(FlashSale.id == warm_id))
        rows = s.scalar(
            select(func.count(Redemption.id)).where(Redemption.flash_sale_id == sale_id)
        )
        winners = s.scalar(
            select(func.count(func.distinct(Redemption.member_id))).where(
                Redemption.flash_sale_id == sale_id
            )
        )
        reserved = s.scalar(
            select(func.sum(Stock.reserved))
            .join(FlashSale, FlashSale.gift_id == Stock.gift_id)
            .where(FlashSale.id == sale_id)
        )
        spent = 0
        wrong = 0
        units = dict(
            s.execute(
                select(Redemption.member_id, func.count(Redemption.id)).group_by(
                    Redemption.member_id
                )
            ).all()
        )
        for no in numbers:
            member = members.get_member(s, no)
            available = queries.balance(s, member.id, now).available
            # units of both sales (the warm-up's too) were paid for
            expected = 2 * POINTS - POINTS * int(units.get(member.id, 0))
            spent += 2 * POINTS - available
            wrong += available != expected
        violations = checks.run_all(s, now=now)
    db.dispose()
    return {
        "flash_granted": granted,
        "redemptions": rows,
        "winners": winners,
        "stock_reserved": reserved,
        "points_spent": spent,
        "warmup_granted": warm_granted,
        "balances_wrong": wrong,
        "check_violations": len(violations),
    }


REDEEM = "/api/v1/mall/redemptions"
#: after a run, requests that were in flight when the load stopped are still being served
DRAIN_SECONDS = 10
#: the flash attempts' request: the members in turn (the two wrk threads interleave)
_FLASH_LUA = """
local members = {%(members)s}
request = function()
  counter = counter + 1
  local m = members[((counter * 2 + tid) %% #members) + 1]
  local body = '{"member_no":"' .. m .. '","gift_code":%(gift)s,"flash_sale_id":%(sale)d,'
    .. '"store_code":"SH001"}'
  return wrk.format("POST", nil, {["X-API-Key"] = %(key)s,
    ["Content-Type"] = "application/json"}, body)
end
"""
_BARE_LUA = 'request = function() return wrk.format("POST") end'


def reset_bare(url: str, units: int) -> None:
    db = Database(url)
    with db.unit_of_work() as s:
        s.execute(text("UPDATE bench_units SET granted = 0, quantity = :k"), {"k": units})
    db.dispose()


#: the sale a run attempts: the members, the sale's id and its gift
Sale = tuple[list[str], int, str]


def _with_wrk(base: str, path: str, n: int, c: int, key: str | None, sale: Sale | None) -> dict:
    if sale is None:
        return _wrk.run_exact(base + path, n, c, _BARE_LUA)
    numbers, sale_id, gift = sale
    lua = _FLASH_LUA % {
        "members": ",".join(_wrk.lua_string(no) for no in numbers),
        "gift": _wrk.lua_string(gift),
        "sale": sale_id,
        "key": _wrk.lua_string(key or ""),
    }
    return _wrk.run_exact(base + path, n, c, lua)


def _with_python(base: str, path: str, n: int, c: int, key: str | None, sale: Sale | None) -> dict:
    if sale is None:
        return run(base, n, c, lambda _i: ("POST", path, {}, None))
    numbers, sale_id, gift = sale
    headers = {"X-API-Key": key or ""}

    def attempt(i: int) -> tuple[str, str, dict[str, str], object]:
        body = {
            "member_no": numbers[i % len(numbers)],
            "gift_code": gift,
            "flash_sale_id": sale_id,
            "store_code": "SH001",
        }
        return "POST", path, headers, body

    return run(base, n, c, attempt)


LOADS = {"wrk": _with_wrk, "python": _with_python}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--attempts", type=int, default=10_000)
    parser.add_argument("--units", type=int, default=100)
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=PORT, help="loopback port of the server")
    parser.add_argument("--client", choices=sorted(LOADS), default="wrk")
    args = parser.parse_args()
    if args.client == "wrk":
        _wrk.require()
    keys = generate_keys()
    results: dict[str, object] = {
        "benchmark": "flash",
        "attempts": args.attempts,
        "units": args.units,
        "members": args.members,
        "connections": args.connections,
        "workers": args.workers,
        "client": args.client,
    }
    with scratch_database() as url:
        started = time.perf_counter()
        numbers, sale_id, warm_id, api_key = seed(url, keys, args.members, args.units)
        results["seed_seconds"] = round(time.perf_counter() - started, 1)
        with serve(url, keys, args.port, args.workers, bench_endpoints=True) as base:
            load = LOADS[args.client]
            warm = max(args.attempts // 5, 1)
            # a new worker's first seconds (pool connections, lazily built caches) are not the
            # steady state: warm both paths, then give the bare endpoint its units back
            load(base, "/bench/guarded", warm, args.connections, None, None)
            time.sleep(DRAIN_SECONDS)
            reset_bare(url, args.units)
            load(base, REDEEM, warm, args.connections, api_key, (numbers, warm_id, WARM))
            time.sleep(DRAIN_SECONDS)
            bare = load(base, "/bench/guarded", args.attempts, args.connections, None, None)
            time.sleep(DRAIN_SECONDS)
            sale = (numbers, sale_id, GIFT)
            flash = load(base, REDEEM, args.attempts, args.connections, api_key, sale)
        results["bare"] = bare
        results["flash"] = flash
        results["ratio"] = round(flash["rps"] / bare["rps"], 3) if bare["rps"] else None
        results["reconciled"] = rec = reconcile(url, numbers, sale_id, warm_id)
        exact = (
            rec["flash_granted"] == rec["redemptions"] == rec["winners"] == args.units
            and rec["stock_reserved"] == args.units
            and flash["statuses"].get("201") == args.units
            and rec["points_spent"] == POINTS * (args.units + int(rec["warmup_granted"]))
            and rec["balances_wrong"] == 0
            and rec["check_violations"] == 0
        )
        results["exactly_k"] = exact
    results["goal"] = {"exactly_k": True, "ratio": 0.5, "p99_ms": 500}
    print(json.dumps(results))


if __name__ == "__main__":
    main()
