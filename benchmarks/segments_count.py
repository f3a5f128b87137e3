"""Segment count on PostgreSQL: members and orders generated in SQL, three conditions.

    python benchmarks/segments_count.py --members 100000 --orders-per-member 10 [--runs 5]

Creates a scratch database (PATRON_BENCH_PG, default the local server), fills members, tiers,
SMS consents and orders with ``generate_series``, then times ``segments.service.preview``
(count + sample of 20) for tier AND sms consent AND spend in 90 days, median of ``--runs``.
Then, at the same size, times a rule tag over the same tree (first computation: every member
added; a recompute with nothing changed; a recompute after 1% of the members bought) and the
daily lifecycle stage run (first run: every member's first stage; a rerun: nothing changes).
Goal (issue): 1M members / 10M orders within 2 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from benchmarks._common import apply_recommended, scratch_database
from sqlalchemy import Connection, text

from patron.auth.principal import Principal
from patron.db import Database
from patron.segments import lifecycle, service, tags
from patron.segments.domain import parse_rule

NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
TREE = {
    "op": "and",
    "rules": [
        {"field": "tier", "values": ["gold"]},
        {"field": "consent", "channel": "sms"},
        {"field": "spend_fen", "min": 50000, "window_days": 90},
    ],
}


def _without_order_indexes(conn: Connection) -> list[str]:
    """Drop the secondary indexes and unique constraints of ``orders``; answer the statements
    that build them again (a bulk insert then sorts once per index instead of inserting 10M
    keys one by one in random order)."""
    again: list[str] = []
    for name, definition in conn.execute(
        text(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = 'orders'::regclass AND contype = 'u'"
        )
    ).all():
        conn.execute(text(f'ALTER TABLE orders DROP CONSTRAINT "{name}"'))
        again.append(f'ALTER TABLE orders ADD CONSTRAINT "{name}" {definition}')
    for name, definition in conn.execute(
        text(
            "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x"
            " JOIN pg_class i ON i.oid = x.indexrelid"
            " WHERE x.indrelid = 'orders'::regclass AND NOT x.indisprimary"
        )
    ).all():
        conn.execute(text(f'DROP INDEX "{name}"'))
        again.append(definition)
    return again


def fill(db: Database, members: int, per_member: int) -> None:
    """Members, tiers, consents and orders in a few set-based statements. Foreign keys are not
    checked row by row (the ids are consistent by construction) and the orders' indexes are
    built after the insert; a VACUUM then leaves the tables as autovacuum would."""
    now = NOW.isoformat()
    with db.engine.begin() as conn:
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text("SET LOCAL maintenance_work_mem = '1GB'"))
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
        conn.execute(
            text(
                "INSERT INTO member_tiers (member_id, tier_code, since, updated_at)"
                " SELECT g, (ARRAY['base','silver','gold'])[1 + g % 3], :now, :now"
                " FROM generate_series(1, :n) g"
            ),
            {"now": now, "n": members},
        )
        conn.execute(
            text(
                "INSERT INTO member_consents (member_id, channel, granted, updated_at, source)"
                " SELECT g, 'sms', g % 2 = 0, :now, 'bench' FROM generate_series(1, :n) g"
            ),
            {"now": now, "n": members},
        )
        rebuild = _without_order_indexes(conn)
        conn.execute(
            text(
                "INSERT INTO orders (id, member_id, source, external_id, channel, ordered_at,"
                " business_date, status, list_total_fen, discount_fen, total_fen, points_used,"
                " points_fen, paid_fen, points_earned, growth_earned, welcome_bonus,"
                " first_purchase, rules_trace, content_hash, refunded_fen, created_at)"
                " SELECT g, 1 + (g::bigint * 7919) % :n, 'bench', g::text, 'store',"
                " CAST(:now AS timestamptz) - (g % 365) * interval '1 day',"
                " (CAST(:now AS timestamptz) - (g % 365) * interval '1 day')::date, 'completed',"
                " 1000 + g % 30000, 0, 1000 + g % 30000, 0, 0, 1000 + g % 30000, 0, 0, 0,"
                " false, '{}', '', 0, :now FROM generate_series(1, :o) g"
            ),
            {"now": now, "n": members, "o": members * per_member},
        )
        for statement in rebuild:
            conn.execute(text(statement))
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--members", type=int, default=100_000)
    ap.add_argument("--orders-per-member", type=int, default=10)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument(
        "--url", help="time an existing database filled the same way (neither filled nor dropped)"
    )
    ap.add_argument("--preview-only", action="store_true", help="skip rule tags and stages")
    args = ap.parse_args()
    if args.url:
        measure(args.url, args, built=None)
        return
    with scratch_database() as url:
        apply_recommended(url)
        db = Database(url)
        t0 = time.perf_counter()
        fill(db, args.members, args.orders_per_member)
        built = time.perf_counter() - t0
        db.engine.dispose()
        measure(url, args, built=built)


def measure(url: str, args: argparse.Namespace, *, built: float | None) -> None:
    db = Database(url)
    rule = parse_rule(TREE)
    times, count = [], 0
    for _ in range(args.runs):
        with db.unit_of_work() as s:
            t = time.perf_counter()
            count = service.preview(s, rule, now=NOW, tz=ZoneInfo("Asia/Shanghai")).count
            times.append(time.perf_counter() - t)
    print(json.dumps({"build_s": built and round(built, 1), "preview_times": times}), flush=True)
    out = {
        "members": args.members,
        "orders": args.members * args.orders_per_member,
        "count": count,
        "build_s": built and round(built, 1),
        "preview_median_s": round(statistics.median(times), 3),
    }
    if not args.preview_only:
        out |= time_tags_and_stages(db, rule, args.members)
    db.engine.dispose()
    print(json.dumps(out))


def time_tags_and_stages(db: Database, rule: object, members: int) -> dict[str, object]:
    tz = ZoneInfo("Asia/Shanghai")
    out: dict[str, object] = {}
    with db.unit_of_work() as s:
        t = time.perf_counter()
        _, _, done = tags.define(
            s, Principal.system("bench"), name="bench", description="", rule=rule,  # type: ignore[arg-type]
            on_order=True, now=NOW, tz=tz,
        )  # fmt: skip
        out["tag_first_s"] = round(time.perf_counter() - t, 3)
        out["tag_first_added"] = done.added
    with db.unit_of_work() as s:
        tag, tr = tags.get(s, "bench", lock=True)
        t = time.perf_counter()
        done = tags.recompute(s, tag, tr, now=NOW, tz=tz, source="job")
        out["tag_unchanged_s"] = round(time.perf_counter() - t, 3)
    with db.engine.begin() as conn:  # 1% of the members buy ¥600 today
        conn.execute(
            text(
                "INSERT INTO orders (id, member_id, source, external_id, channel, ordered_at,"
                " business_date, status, list_total_fen, discount_fen, total_fen, points_used,"
                " points_fen, paid_fen, points_earned, growth_earned, welcome_bonus,"
                " first_purchase, rules_trace, content_hash, refunded_fen, created_at)"
                " SELECT (SELECT max(id) FROM orders) + g, g, 'bench2', g::text, 'store', :now,"
                " CAST(:now AS timestamptz)::date,"
                " 'completed', 60000, 0, 60000, 0, 0, 60000, 0, 0, 0, false, '{}', '', 0, :now"
                " FROM generate_series(2, :n, 100) g"
            ),
            {"now": NOW.isoformat(), "n": members},
        )
    with db.unit_of_work() as s:
        tag, tr = tags.get(s, "bench", lock=True)
        t = time.perf_counter()
        done = tags.recompute(s, tag, tr, now=NOW, tz=tz, source="job")
        out["tag_after_orders_full_s"] = round(time.perf_counter() - t, 3)
        out["tag_after_orders_added"] = done.added
    with db.unit_of_work() as s:
        t = time.perf_counter()
        run = lifecycle.run_stages(s, now=NOW, tz=tz)
        out["stages_first_s"] = round(time.perf_counter() - t, 3)
        out["stages_first_changed"] = run.changed
    with db.unit_of_work() as s:
        t = time.perf_counter()
        run = lifecycle.run_stages(s, now=NOW, tz=tz)
        out["stages_rerun_s"] = round(time.perf_counter() - t, 3)
        out["stages_rerun_changed"] = run.changed
    return out


if __name__ == "__main__":
    main()
