"""The milestones' coupons on PostgreSQL: one set-based issue per milestone to every member past
it, and the idempotent rerun.

    python benchmarks/milestone_coupons.py --members 200000

Creates a scratch database (PATRON_BENCH_PG, default the local server), fills N active members
with points accounts whose lifetime earnings spread evenly over 0–39,999 points, sets the seed
milestones (10,000 and 30,000 points) each with a coupon template, then times
``campaigns.milestones.issue_coupons`` (what the hourly ``milestone_coupons`` job runs) and
the same run again (it must issue nothing). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time

from benchmarks._common import scratch_database
from benchmarks.coupon_issue import NOW, TZ, fill
from sqlalchemy import func, select, text

from patron.auth.principal import Principal
from patron.campaigns import milestones
from patron.campaigns.milestones import Milestone, MilestoneSettings
from patron.context import build
from patron.coupons import service as coupons
from patron.coupons.domain import TemplateRules
from patron.coupons.models import Coupon
from patron.db import Database

ACTOR = Principal.system("bench")


def prepare(db: Database, members: int) -> None:
    fill(db, members, subscribed=False)
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO points_accounts (member_id, available, pending, debt,"
                " lifetime_earned, lifetime_redeemed, lifetime_expired, version, updated_at)"
                " SELECT g, 0, 0, 0, (g::bigint * 7919) % 40000, 0, 0, 0, :now"
                " FROM generate_series(1, :n) g"
            ),
            {"now": NOW.isoformat(), "n": members},
        )
        conn.execute(text("ANALYZE"))
    with db.unit_of_work() as session:
        ctx = build(session, ACTOR, NOW, TZ)
        for code in ("M10K", "M30K"):
            coupons.put_template(
                session,
                ctx,
                code,
                name=code,
                rules=TemplateRules(kind="amount_off", amount_fen=1000, valid_days=30),
                total_quantity=None,
                per_member_limit=1,
                points_price=0,
                status="active",
            )
        defaults = MilestoneSettings().milestones
        value = MilestoneSettings(
            milestones=(
                Milestone(**{**defaults[0].model_dump(), "coupon": "M10K"}),
                Milestone(**{**defaults[1].model_dump(), "coupon": "M30K"}),
            )
        )
        milestones.put_settings(session, ACTOR, value, now=NOW)


def run(db: Database) -> tuple[float, dict[str, int]]:
    start = time.perf_counter()
    with db.unit_of_work() as session:
        done = milestones.issue_coupons(session, build(session, ACTOR, NOW, TZ))
    return round(time.perf_counter() - start, 2), done


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--members", type=int, default=200_000)
    args = p.parse_args()
    with scratch_database() as url:
        db = Database(url)
        t0 = time.perf_counter()
        prepare(db, args.members)
        seeded = round(time.perf_counter() - t0, 1)
        first, issued = run(db)
        rerun, again = run(db)
        with db.unit_of_work() as session:
            held = session.scalar(select(func.count(Coupon.id))) or 0
        db.engine.dispose()
    print(
        json.dumps(
            {
                "benchmark": "milestone_coupons",
                "members": args.members,
                "seed_s": seeded,
                "issue_s": first,
                "issued": issued,
                "rerun_s": rerun,
                "rerun_issued": again,
                "coupons": held,
            }
        )
    )


if __name__ == "__main__":
    main()
