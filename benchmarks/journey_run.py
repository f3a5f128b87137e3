"""Daily journey run on PostgreSQL: birthday, points-expiry reminders and dormant wake-up.

    python benchmarks/journey_run.py --members 100000

Creates a scratch database (PATRON_BENCH_PG, default the local server), fills members (with
birthdays over the year and registrations over two years), points lots of which 5% expire
within the reminder window, and orders that leave 10% of members dormant; creates three
journeys that each send a message; then times the day's run (enter + steps + messages
queued) and a rerun of the same day, which must queue nothing.
Goal (issue): 1M members within 5 minutes, messages queued once however often it runs.
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
from patron.db import Database
from patron.journeys import runner
from patron.journeys import service as journeys
from patron.messaging import service as messaging
from patron.messaging.models import Message

NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
TZ = ZoneInfo("Asia/Shanghai")


def fill(db: Database, members: int) -> None:
    now = NOW.isoformat()
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO members (id, member_no, phone_enc, phone_index, registration_channel,"
                " status, member_type, birthday, name, created_at, updated_at)"
                " SELECT g, lpad(g::text, 10, '0'), '\\x00', 'i' || g, 'web', 'active', 'regular',"
                " DATE '1990-01-01' + (g % 365), 'M' || g,"
                " CAST(:now AS timestamptz) - (g % 730) * interval '1 day', :now"
                " FROM generate_series(1, :n) g"
            ),
            {"now": now, "n": members},
        )
        conn.execute(
            text(
                "INSERT INTO points_postings (id, member_id, kind, available_delta, pending_delta,"
                " debt_delta, reason, source_type, source_id, idempotency_key, actor, created_at)"
                " SELECT g, g, 'earn', 500, 0, 0, '', 'bench', g::text, 'bench:' || g, 'bench',"
                " CAST(:now AS timestamptz) - interval '350 days'"
                " FROM generate_series(1, :n) g"
            ),
            {"now": now, "n": members},
        )
        # 5% of the lots expire within the next 14 days, the rest later.
        conn.execute(
            text(
                "INSERT INTO points_lots (id, member_id, posting_id, amount, remaining, earned_at,"
                " expires_at, source_type, source_id)"
                " SELECT g, g, g, 500, 500, CAST(:now AS timestamptz) - interval '350 days',"
                " CAST(:now AS timestamptz) + CASE WHEN g % 20 = 0 THEN interval '5 days'"
                " ELSE interval '200 days' END, 'bench', g::text"
                " FROM generate_series(1, :n) g"
            ),
            {"now": now, "n": members},
        )
        # Everyone bought recently (active) except one in ten, whose last order is 120 days old.
        conn.execute(
            text(
                "INSERT INTO orders (id, member_id, source, external_id, channel, ordered_at,"
                " business_date, status, list_total_fen, discount_fen, total_fen, points_used,"
                " points_fen, paid_fen, points_earned, growth_earned, welcome_bonus,"
                " first_purchase, rules_trace, content_hash, refunded_fen, created_at)"
                " SELECT g, g, 'bench', g::text, 'store',"
                " CAST(:now AS timestamptz) - CASE WHEN g % 10 = 0 THEN interval '120 days'"
                " ELSE interval '20 days' END, DATE '2026-01-01', 'completed',"
                " 10000, 0, 10000, 0, 0, 10000, 0, 0, 0, false, '{}', '', 0,"
                " CAST(:now AS timestamptz) - interval '120 days'"
                " FROM generate_series(1, :n) g"
            ),
            {"now": now, "n": members},
        )
        conn.execute(text("ANALYZE"))


def define(db: Database) -> None:
    actor = Principal.system("bench")
    with db.unit_of_work() as s:
        for code, body in (
            ("bday", "{{name}}，生日快乐！"),
            ("expiry", "{{name}}，您有 {{expiringPoints}} 积分将于 {{expiryDate}} 过期。"),
            ("wake", "{{name}}，好久不见，送您一张券。"),
        ):
            messaging.put_template(
                s,
                actor,
                code,
                name=code,
                texts={"zh-CN": {"subject": "", "body": body}},
                provider_codes={},
                now=NOW,
            )
        for code, trigger, tpl in (
            ("birthday", "birthday", "bday"),
            ("expiry", "points_expiring", "expiry"),
            ("wake-up", "dormant", "wake"),
        ):
            journeys.create(
                s,
                actor,
                code=code,
                name=code,
                trigger=trigger,
                params=None,
                steps=[{"kind": "send", "template": tpl}],
                now=NOW,
            )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--members", type=int, default=100_000)
    args = ap.parse_args()
    with scratch_database() as url:
        db = Database(url)
        t0 = time.perf_counter()
        fill(db, args.members)
        define(db)
        built = time.perf_counter() - t0
        t = time.perf_counter()
        first = runner.run_job(db, NOW, TZ)
        first_s = time.perf_counter() - t
        t = time.perf_counter()
        again = runner.run_job(db, NOW, TZ)
        again_s = time.perf_counter() - t
        with db.unit_of_work() as s:
            queued = s.scalar(select(func.count()).select_from(Message))
            per = dict(
                s.execute(
                    select(Message.source_code, func.count()).group_by(Message.source_code)
                ).all()
            )
        db.engine.dispose()
    print(
        json.dumps(
            {
                "members": args.members,
                "build_s": round(built, 1),
                "run_s": round(first_s, 2),
                "entered": first.entered,
                "messages_queued": first.messages,
                "per_journey": per,
                "rerun_s": round(again_s, 2),
                "rerun_entered": again.entered,
                "rerun_messages_queued": again.messages,
                "messages_in_queue": queued,
            },
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
