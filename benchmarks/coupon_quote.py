"""Latency of the checkout quote with coupons, PostgreSQL, beside the same quote without.

    python benchmarks/coupon_quote.py [--members 200] [--connections 32] [--seconds 15]

Seeds a store, two categories, products and members who each hold five coupons of five
templates (threshold, percent off with a cap, amount off, free gift, free shipping; one
exclusive, one for beauty only) and ten active campaigns with earning multipliers that apply
to every member today (``--campaigns``, each with its points budget); starts `patron serve`
on loopback against a scratch database and loads POST /api/v1/checkout/quote with wrk at
``--connections`` connections:
- ``without_coupons``: the basket alone;
- ``wallet_of_5``: the same basket with ``best_coupons`` (the quote reads the five coupons and
  compares every combination the stacking rules allow);
- ``one_connection``: both again one request at a time (the quote's own time, no queueing).
Prints one JSON line with p50/p95/p99 and requests per second of each, and their p95 ratio.
Goal (issue 15): p95 ≤ 50 ms with coupons, reported beside the quote without them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from _common import scratch_database, serve
from portal_home import wrk

from patron.auth import service as auth
from patron.auth.principal import Principal
from patron.campaigns import service as campaigns
from patron.campaigns.domain import OneOff
from patron.campaigns.schemas import CampaignIn
from patron.catalog import service as catalog
from patron.catalog.schemas import CategoryIn, ProductIn, StoreIn
from patron.config import generate_keys
from patron.coupons import service as coupons
from patron.coupons.domain import Stacking, TemplateRules
from patron.db import Database
from patron.kit.timeutil import business_tz
from patron.ledger.service import Ctx
from patron.members.models import Member

PORT = 8767
LUA = """
local members = {%(members)s}
local counter = 0
local threads = 0
function setup(thread) thread:set("tid", threads); threads = threads + 1 end
request = function()
  counter = counter + 1
  local no = members[((counter * 2 + tid) %% #members) + 1]
  local body = '{"member_no": "' .. no .. '", "store_code": "SH001", "channel": "store", '
    .. '"lines": [{"sku": "BEA-1", "quantity": 1}, {"sku": "FRE-1", "quantity": 4}]%(extra)s}'
  local headers = {["X-API-Key"] = "%(key)s", ["Content-Type"] = "application/json"}
  return wrk.format("POST", "/api/v1/checkout/quote", headers, body)
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

TEMPLATES = {
    "T200": TemplateRules(kind="threshold", amount_fen=3000, min_spend_fen=20000, valid_days=30),
    "P10": TemplateRules(kind="percent_off", percent_off_bp=1000, cap_fen=2000, valid_days=30),
    "A5": TemplateRules(
        kind="amount_off", amount_fen=500, valid_days=30, stacking=Stacking(exclusive=True)
    ),
    "GIFT": TemplateRules(
        kind="free_gift", gift_sku="GIFT-1", value_fen=1500, valid_days=30, categories=["beauty"]
    ),
    "SHIP": TemplateRules(kind="free_shipping", value_fen=1000, valid_days=30),
}


def seed(url: str, n: int, n_campaigns: int = 10) -> tuple[list[str], str]:
    db = Database(url)
    actor = Principal.system("bench")
    now = datetime.now(UTC)
    ctx = Ctx(actor, now, business_tz("Asia/Shanghai"))
    today = now.astimezone(ctx.tz).date()
    with db.unit_of_work() as s:
        for i in range(n_campaigns):  # the quote's earning weighs every one of them
            code = f"c{i:02d}"
            campaigns.create(
                s,
                actor,
                CampaignIn(
                    code=code,
                    name=f"Campaign {i}",
                    schedule=OneOff(
                        start=today - timedelta(days=1), end=today + timedelta(days=30)
                    ),
                    multiplier_bp=11_000 + 1_000 * i,
                    budget_points=100_000_000,
                ),
                now=now,
            )
            campaigns.set_status(s, actor, code, "active", now=now)
        catalog.upsert_store(s, actor, StoreIn(code="SH001", name="s", region="East"), now=now)
        for code in ("beauty", "fresh"):
            catalog.upsert_category(s, actor, CategoryIn(code=code, name=code), now=now)
        for sku, cat, price in (("BEA-1", "beauty", 19900), ("FRE-1", "fresh", 1250)):
            catalog.upsert_product(
                s, actor, ProductIn(sku=sku, name=sku, category_code=cat, price_fen=price), now=now
            )
        key = auth.create_api_key(s, actor, name="bench", scopes=["orders:write"], now=now)
        ids = [
            s.execute(
                Member.__table__.insert()
                .values(
                    member_no=f"9{i:09d}",
                    phone_enc=b"x",
                    phone_index=f"bench-{i}",
                    member_type="regular",
                    status="active",
                    registration_channel="web",
                    created_at=now,
                    updated_at=now,
                )
                .returning(Member.id)
            ).scalar_one()
            for i in range(n)
        ]
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
            coupons.issue_many(s, ctx, code, ids, reason="manual", key="manual:bench")
    db.dispose()
    return [f"9{i:09d}" for i in range(n)], key.secret


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--campaigns", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=PORT, help="loopback port of the server")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install -y wrk")
    keys = generate_keys()
    results: dict[str, object] = {
        "benchmark": "coupon_quote",
        "members": args.members,
        "campaigns": args.campaigns,
        "connections": args.connections,
        "workers": args.workers,
    }
    with scratch_database() as url, tempfile.TemporaryDirectory() as tmp:
        nos, secret = seed(url, args.members, args.campaigns)

        def script(extra: str) -> Path:
            path = Path(tmp) / f"quote-{len(extra)}.lua"
            members = ",".join(f'"{no}"' for no in nos)
            path.write_text(LUA % {"members": members, "key": secret, "extra": extra})
            return path

        with serve(url, keys, args.port, args.workers, log="patron-coupon-bench.log") as base:
            body = {
                "member_no": nos[0],
                "store_code": "SH001",
                "channel": "store",
                "lines": [{"sku": "BEA-1", "quantity": 1}, {"sku": "FRE-1", "quantity": 4}],
                "best_coupons": True,
            }
            req = urllib.request.Request(
                f"{base}/api/v1/checkout/quote",
                data=json.dumps(body).encode(),
                headers={"X-API-Key": secret, "Content-Type": "application/json"},
            )
            with urllib.request.urlopen(req, timeout=10) as resp:
                quote = json.loads(resp.read())
            results["chosen"] = [c["template"] for c in quote["coupons"]]
            results["left_out"] = len(quote["coupons_left_out"])
            url_quote = f"{base}/api/v1/checkout/quote"
            plain, wallet = script(""), script(', "best_coupons": true')
            wrk(url_quote, args.connections, 3, plain)  # warm-up
            time.sleep(3)
            results["without_coupons"] = wrk(url_quote, args.connections, args.seconds, plain)
            time.sleep(3)
            results["wallet_of_5"] = wrk(url_quote, args.connections, args.seconds, wallet)
            time.sleep(3)
            # one request at a time: the quote's own time, without queueing
            results["one_connection"] = {
                "without_coupons": wrk(url_quote, 1, 5, plain),
                "wallet_of_5": wrk(url_quote, 1, 5, wallet),
            }
    a, b = results["without_coupons"], results["wallet_of_5"]
    assert isinstance(a, dict)
    assert isinstance(b, dict)
    results["p95_ratio"] = round(b["p95_ms"] / a["p95_ms"], 2) if a["p95_ms"] else None
    results["goal"] = {"p95_ms": 50}
    print(json.dumps(results))


if __name__ == "__main__":
    main()
