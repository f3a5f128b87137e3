"""Issuing a coupon to a saved segment of N members on PostgreSQL (set-based), and its rerun.

    python benchmarks/coupon_issue.py --members 1000000 [--subscribed]

Creates a scratch database (PATRON_BENCH_PG, default the local server), fills N active members
with ``generate_series``, saves a segment selecting all of them (registered since 2000) and a
coupon template, then times ``coupons.bulk.issue_to_segment`` — the coupons, their history
and one ``coupon.issued`` event each, in one transaction — and the same issue again (an
idempotent rerun: it must issue nothing). ``--subscribed`` adds a webhook endpoint subscribed to
``coupon.issued`` (one delivery row per coupon as well). Prints one JSON line.
Goal (issue 15): 1M members ≤ 60 s.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from benchmarks._common import scratch_database
from sqlalchemy import func, select, text

from patron.auth.principal import Principal
from patron.context import build
from patron.coupons import bulk
from patron.coupons import service as coupons
from patron.coupons.domain import TemplateRules
from patron.coupons.models import Coupon
from patron.db import Database
from patron.segments import service as segments
from patron.segments.domain import parse_rule

NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
TZ = ZoneInfo("Asia/Shanghai")
EVERYONE = {"op": "and", "rules": [{"field": "registered", "on_or_after": "2000-01-01"}]}


def fill(db: Database, members: int, subscribed: bool) -> None:
    now = NOW.isoformat()
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO members (id, member_no, phone_enc, phone_index, registration_channel,"
                " status, member_type, created_at, updated_at)"
                " SELECT g, lpad(g::text, 10, '0'), '\\x00', 'i' || g, 'web', 'active', 'regular',"
                " CAST(:now AS timestamptz) - (g % 700) * interval '1 day', :now"
                " FROM generate_series(1, :n) g"
            ),
            {"now": now, "n": members},
        )
        conn.execute(text("SELECT setval('members_id_seq', :n)"), {"n": members})
        if subscribed:
            conn.execute(
                text(
                    "INSERT INTO webhook_endpoints (url, description, secret_enc, events,"
                    " is_active, created_at) VALUES ('https://hooks.example.com/x', 'bench',"
                    " '\\x00', '[\"coupon.issued\"]', true, :now)"
                ),
                {"now": now},
            )
        conn.execute(text("ANALYZE"))
    actor = Principal.system("bench")
    with db.unit_of_work() as session:
        segments.create(
            session, code="all", name="All", rule=parse_rule(EVERYONE), actor="bench", now=NOW
        )
        ctx = build(session, actor, NOW, TZ)
        coupons.put_template(
            session,
            ctx,
            "SPRING30",
            name="Spring ¥30",
            rules=TemplateRules(
                kind="threshold", amount_fen=3000, min_spend_fen=20000, valid_days=30
            ),
            total_quantity=None,
            per_member_limit=1,
            points_price=0,
            status="active",
        )


def issue(db: Database) -> tuple[float, int]:
    start = time.perf_counter()
    with db.unit_of_work() as session:
        ctx = build(session, Principal.system("bench"), NOW, TZ)
        report = bulk.issue_to_segment(session, ctx, "SPRING30", "all", "BENCH-1")
    return round(time.perf_counter() - start, 2), report.issued


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--members", type=int, default=100_000)
    p.add_argument("--subscribed", action="store_true")
    args = p.parse_args()
    with scratch_database() as url:
        db = Database(url)
        t0 = time.perf_counter()
        fill(db, args.members, args.subscribed)
        seeded = round(time.perf_counter() - t0, 1)
        first, issued = issue(db)
        rerun, again = issue(db)
        with db.unit_of_work() as session:
            held = session.scalar(select(func.count(Coupon.id))) or 0
            distinct = session.scalar(select(func.count(func.distinct(Coupon.code)))) or 0
        db.engine.dispose()
    print(
        json.dumps(
            {
                "benchmark": "coupon_issue",
                "members": args.members,
                "subscribed_endpoint": args.subscribed,
                "seed_s": seeded,
                "issue_s": first,
                "issued": issued,
                "rerun_s": rerun,
                "rerun_issued": again,
                "coupons": held,
                "distinct_codes": distinct,
                "goal": "1M members <= 60 s",
            }
        )
    )


if __name__ == "__main__":
    main()
