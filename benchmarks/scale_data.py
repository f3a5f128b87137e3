"""Fill a PostgreSQL database with a large, consistent Patron dataset, set-based in SQL.

    python benchmarks/scale_data.py --url postgresql://postgres@127.0.0.1:5432/bench_scale \\
        [--members 1000000] [--orders 10000000] [--create] [--check] [--keys keys.json]

Loading through the order importer runs the rules engine and the ledger for every order
(about 0.45 ms an order: 75 minutes for 10M). This generator writes the same rows directly,
each table in one ``INSERT … SELECT … FROM generate_series`` (members' encrypted phones and
numbers are the exception: they are made in Python and copied in, about 10 s a million), so
1M members and 10M orders take minutes. The database must be at the head migration and hold no
members (``--create`` creates and migrates it). What it writes, for M members and O orders:

- members: numbers with a Luhn digit, phones 138… encrypted and blind-indexed with the keys of
  ``--keys`` (a JSON file of ``patron keys``; new keys are written there when it is missing),
  so the console and portal can read them when the server runs with the same keys;
- orders: order ``i`` belongs to member ``(i - 1) % M + 1``, spread evenly over the last two
  years, two lines (beauty, fresh) and one WeChat payment each, 1 point and 1 growth per yuan;
- the ledger: one earn posting and one lot per order (lots expire after a year); every lot
  past its expiry expired by its own posting and allocation; every third member redeemed part
  of their newest lot yesterday; accounts and growth accounts are the sums of their postings;
- tiers: each member on the default ladder's tier of their growth.

Every domain's check (``--check``, i.e. ``patron check``) is clean on the result. Each step is
timed; the final JSON line has the seconds per step, the row counts and the database size.
Foreign keys are not checked while filling (``session_replication_role = replica``; the ids
are consistent by construction), so the connecting role must be a superuser.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, make_url

sys.path.insert(0, os.path.dirname(__file__))
from patron.auth.principal import Principal
from patron.catalog import service as catalog
from patron.catalog.schemas import CategoryIn, ProductIn, StoreIn
from patron.config import generate_keys
from patron.db import Database, normalize_url
from patron.kit.crypto import FieldCipher
from patron.kit.ids import luhn_check_digit
from patron.members.service import PHONE_CTX
from patron.migrate import upgrade

ACTOR = "system:scale"

# :m members, :o orders, :now the reference time; order i at :start + (i - 1) * :step seconds
STEPS: tuple[tuple[str, str], ...] = (
    (
        "members",
        """
        INSERT INTO members (id, member_no, phone_enc, phone_index, name, gender, city, region,
            member_type, status, registration_channel, registration_store_code, created_at,
            updated_at)
        SELECT p.id, p.member_no, p.phone_enc, p.phone_index, '会员' || p.id,
            (ARRAY['female', 'male', 'unknown'])[p.id % 3 + 1],
            (ARRAY['上海', '杭州', '南京', '苏州'])[p.id % 4 + 1], 'East China',
            'regular', 'active', (ARRAY['store', 'web', 'wechat'])[p.id % 3 + 1], 'SH001',
            :start - interval '30 days' + p.id * interval '1 second',
            :start - interval '30 days' + p.id * interval '1 second'
        FROM scale_phones p
        """,
    ),
    (
        "orders",
        """
        INSERT INTO orders (id, member_id, source, external_id, channel, store_code, ordered_at,
            business_date, status, list_total_fen, discount_fen, total_fen, points_used,
            points_fen, paid_fen, points_earned, growth_earned, welcome_bonus, first_purchase,
            earn_posting_id, spend_posting_id, rules_trace, content_hash, refunded_fen,
            created_at)
        SELECT i, (i - 1) % :m + 1, 'pos', 'S' || i, 'store', 'SH001', t,
            (t AT TIME ZONE 'Asia/Shanghai')::date, 'completed', paid, 0, paid, 0, 0, paid,
            paid / 100, paid / 100, 0, i <= :m, i, NULL, '[]'::jsonb, md5(i::text), 0, t
        FROM (
            SELECT i, :start + (i - 1) * :step * interval '1 second' AS t,
                5000 + (i::bigint * 7919 % 50) * 1000 AS paid
            FROM generate_series(1, :o) AS i
        ) o
        """,
    ),
    (
        "order_lines",
        """
        INSERT INTO order_lines (id, order_id, line_no, sku, category, quantity, unit_price_fen,
            discount_fen, net_fen, points_fen, points, paid_fen, returned_quantity,
            refunded_fen, refunded_points)
        SELECT 2 * o.id - 1, o.id, 1, 'BEA-1', 'beauty', 1, o.paid_fen - 2500, 0,
            o.paid_fen - 2500, 0, (o.paid_fen - 2500) / 100, o.paid_fen - 2500, 0, 0, 0
        FROM orders o
        UNION ALL
        SELECT 2 * o.id, o.id, 2, 'FRE-1', 'fresh', 2, 1250, 0, 2500, 0, 25, 2500, 0, 0, 0
        FROM orders o
        """,
    ),
    (
        "order_payments",
        """
        INSERT INTO order_payments (id, order_id, method, amount_fen, points)
        SELECT o.id, o.id, 'wechat', o.paid_fen, 0 FROM orders o
        """,
    ),
    (
        "earn postings",
        """
        INSERT INTO points_postings (id, member_id, kind, available_delta, pending_delta,
            debt_delta, reason, source_type, source_id, idempotency_key, actor, created_at)
        SELECT o.id, o.member_id, 'earn', o.points_earned, 0, 0, 'order', 'order',
            o.external_id, 'order/pos/' || o.external_id || '/earn', :actor, o.ordered_at
        FROM orders o
        """,
    ),
    (
        "lots",
        """
        INSERT INTO points_lots (id, member_id, posting_id, amount, remaining, earned_at,
            expires_at, source_type, source_id)
        SELECT o.id, o.member_id, o.id, o.points_earned,
            CASE WHEN o.ordered_at + interval '365 days' <= :now THEN 0
                 WHEN o.member_id % 3 = 0 AND o.id + :m > :o
                 THEN o.points_earned - least(o.points_earned, 50 + o.member_id % 100)
                 ELSE o.points_earned END,
            o.ordered_at, o.ordered_at + interval '365 days', 'order', o.external_id
        FROM orders o
        """,
    ),
    (
        "expiry postings",
        """
        INSERT INTO points_postings (id, member_id, kind, available_delta, pending_delta,
            debt_delta, reason, source_type, source_id, idempotency_key, actor, created_at)
        SELECT :o + l.id, l.member_id, 'expire', -l.amount, 0, 0, 'points expired', 'lot',
            l.id::text, 'expire/lot/' || l.id, :actor, l.expires_at
        FROM points_lots l
        WHERE l.expires_at <= :now
        """,
    ),
    (
        "expiry allocations",
        """
        INSERT INTO points_allocations (id, posting_id, lot_id, member_id, amount)
        SELECT l.id, :o + l.id, l.id, l.member_id, l.amount
        FROM points_lots l
        WHERE l.expires_at <= :now
        """,
    ),
    (
        # every third member redeemed part of their newest lot (the last order is member
        # m's newest when i + M > O) yesterday, if that lot is still valid
        "redemptions",
        """
        CREATE TEMPORARY TABLE scale_spends ON COMMIT DROP AS
        SELECT l.member_id, l.id AS lot_id, least(l.amount, 50 + l.member_id % 100) AS points
        FROM points_lots l
        WHERE l.id > :o - :m AND l.member_id % 3 = 0 AND l.expires_at > :now;
        INSERT INTO points_postings (id, member_id, kind, available_delta, pending_delta,
            debt_delta, reason, source_type, source_id, idempotency_key, actor, created_at)
        SELECT 2 * :o + s.member_id, s.member_id, 'redeem', -s.points, 0, 0, 'redemption',
            'redemption', 'R' || s.member_id, 'redeem/R' || s.member_id, :actor,
            :now - interval '1 day'
        FROM scale_spends s;
        INSERT INTO points_allocations (id, posting_id, lot_id, member_id, amount)
        SELECT :o + s.member_id, 2 * :o + s.member_id, s.lot_id, s.member_id, s.points
        FROM scale_spends s
        """,
    ),
    (
        "points accounts",
        """
        INSERT INTO points_accounts (member_id, available, pending, debt, lifetime_earned,
            lifetime_redeemed, lifetime_expired, version, updated_at)
        SELECT m.id, coalesce(p.av, 0), 0, 0, coalesce(p.earned, 0), coalesce(p.rd, 0),
            coalesce(p.ex, 0), 1, :now
        FROM members m
        LEFT JOIN (
            SELECT member_id, sum(available_delta) AS av,
                sum(available_delta) FILTER (WHERE kind = 'earn') AS earned,
                -sum(available_delta) FILTER (WHERE kind = 'redeem') AS rd,
                -sum(available_delta) FILTER (WHERE kind = 'expire') AS ex
            FROM points_postings GROUP BY member_id
        ) p ON p.member_id = m.id
        """,
    ),
    (
        "growth postings",
        """
        INSERT INTO growth_postings (id, member_id, kind, amount, effective_at, reason,
            source_type, source_id, idempotency_key, actor, created_at)
        SELECT o.id, o.member_id, 'earn', o.growth_earned, o.ordered_at, 'order', 'order',
            o.external_id, 'order/pos/' || o.external_id || '/growth', :actor, o.ordered_at
        FROM orders o
        """,
    ),
    (
        "growth accounts",
        """
        INSERT INTO growth_accounts (member_id, balance, lifetime_earned, updated_at)
        SELECT m.id, coalesce(g.n, 0), coalesce(g.n, 0), :now
        FROM members m
        LEFT JOIN (SELECT member_id, sum(amount) AS n FROM growth_postings GROUP BY member_id) g
            ON g.member_id = m.id
        """,
    ),
    (
        "tiers",
        """
        INSERT INTO member_tiers (member_id, tier_code, since, next_evaluation_at, updated_at)
        SELECT g.member_id,
            CASE WHEN g.balance >= 20000 THEN 'diamond' WHEN g.balance >= 5000 THEN 'gold'
                 WHEN g.balance >= 1000 THEN 'silver' ELSE 'regular' END,
            :now - interval '1 day', :now + interval '30 days', :now
        FROM growth_accounts g
        """,
    ),
)

SEQUENCES = (
    "members",
    "orders",
    "order_lines",
    "order_payments",
    "points_postings",
    "points_lots",
    "points_allocations",
    "growth_postings",
)
TABLES = (*SEQUENCES, "points_accounts", "growth_accounts", "member_tiers")


def _in(tables: tuple[str, ...]) -> str:
    return ", ".join(f"'{t}'::regclass" for t in tables)


def drop_indexes(conn: Connection) -> list[str]:
    """Drop the filled tables' indexes, keys and the foreign keys that touch them; return the
    statements that make them again (keys, then indexes, then foreign keys). Building an index
    once over the filled table is several times faster than keeping it up row by row."""
    tables = _in(TABLES)
    fks = conn.execute(
        text(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM "
            f"pg_constraint WHERE contype = 'f' AND (conrelid IN ({tables}) "
            f"OR confrelid IN ({tables}))"
        )
    ).all()
    keys = conn.execute(
        text(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM "
            f"pg_constraint WHERE contype IN ('p', 'u') AND conrelid IN ({tables})"
        )
    ).all()
    names = {k[1] for k in keys}
    indexes = [
        (name, sql)
        for name, sql in conn.execute(
            text(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
                f"AND tablename IN ({', '.join(repr(t) for t in TABLES)})"
            )
        ).all()
        if name not in names
    ]
    for table, name, _ in fks:
        conn.execute(text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
    for table, name, _ in keys:
        conn.execute(text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
    for name, _ in indexes:
        conn.execute(text(f'DROP INDEX "{name}"'))
    return [
        *(f'ALTER TABLE {t} ADD CONSTRAINT "{n}" {d}' for t, n, d in keys),
        *(sql for _, sql in indexes),
        *(f'ALTER TABLE {t} ADD CONSTRAINT "{n}" {d}' for t, n, d in fks),
    ]


def member_no(member_id: int) -> str:
    body = f"1{member_id:08d}"
    return body + luhn_check_digit(body)


def copy_phones(conn: Connection, members: int, cipher: FieldCipher) -> None:
    """Numbers, encrypted phones and their blind index, made in Python and copied in."""
    conn.execute(
        text(
            "CREATE TEMPORARY TABLE scale_phones (id integer PRIMARY KEY, member_no text, "
            "phone_enc bytea, phone_index text)"
        )
    )
    raw = conn.connection.dbapi_connection
    assert raw is not None
    chunk = 100_000
    for start in range(1, members + 1, chunk):
        buf = io.StringIO()
        for mid in range(start, min(members, start + chunk - 1) + 1):
            phone = f"+86138{mid:08d}"
            enc = cipher.encrypt(phone, PHONE_CTX).hex()
            buf.write(
                f"{mid}\t{member_no(mid)}\t\\\\x{enc}\t{cipher.blind_index(phone, PHONE_CTX)}\n"
            )
        buf.seek(0)
        with raw.cursor() as cur, cur.copy("COPY scale_phones FROM STDIN") as copy:
            copy.write(buf.getvalue())


def prepare(url: str) -> None:
    """The store, categories and products the orders name (through the services)."""
    now = datetime.now(UTC)
    actor = Principal.system("scale")
    db = Database(url)
    with db.unit_of_work() as s:
        catalog.upsert_store(
            s, actor, StoreIn(code="SH001", name="Scale", region="East China"), now=now
        )
        for code, name in (("beauty", "Beauty"), ("fresh", "Fresh")):
            catalog.upsert_category(s, actor, CategoryIn(code=code, name=name), now=now)
        for sku, cat, price in (("BEA-1", "beauty", 19900), ("FRE-1", "fresh", 1250)):
            product = ProductIn(sku=sku, name=sku, category_code=cat, price_fen=price)
            catalog.upsert_product(s, actor, product, now=now)
    db.dispose()


def create(url: str) -> None:
    target = make_url(normalize_url(url))
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()
    upgrade(url)


def keys_from(path: Path | None) -> dict[str, str]:
    if path and path.exists():
        loaded: dict[str, str] = json.loads(path.read_text())
        return loaded
    keys = generate_keys()
    if path:
        path.write_text(json.dumps(keys))
    return keys


def fill(url: str, members: int, orders: int, keys: dict[str, str]) -> dict[str, object]:
    now = datetime.now(UTC).replace(microsecond=0)
    span = 730 * 86400  # two years of orders, oldest first
    params = {
        "m": members,
        "o": orders,
        "now": now,
        "start": datetime.fromtimestamp(now.timestamp() - span - 86400, UTC),
        "step": span / max(1, orders),
        "actor": ACTOR,
    }
    cipher = FieldCipher(base64.b64decode(keys["data_key"]), base64.b64decode(keys["index_key"]))
    seconds: dict[str, float] = {}
    engine = create_engine(normalize_url(url))
    with engine.begin() as conn:
        if conn.execute(text("SELECT count(*) FROM members")).scalar_one():
            sys.exit("the database already holds members: fill a new one (--create)")
    prepare(url)
    with engine.begin() as conn:
        # ids are consistent by construction: no foreign-key trigger per row
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text("SET LOCAL work_mem = '256MB'"))
        conn.execute(text("SET LOCAL maintenance_work_mem = '1GB'"))
        t0 = time.perf_counter()
        rebuild = drop_indexes(conn)
        copy_phones(conn, members, cipher)
        seconds["phones"] = round(time.perf_counter() - t0, 1)
        for name, sql in STEPS:
            t0 = time.perf_counter()
            for statement in sql.split(";"):
                used = {k: v for k, v in params.items() if f":{k}" in statement}
                conn.execute(text(statement), used)
            seconds[name] = round(time.perf_counter() - t0, 1)
            print(f"{name}: {seconds[name]} s", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        for statement in rebuild:
            conn.execute(text(statement))
        seconds["indexes and keys"] = round(time.perf_counter() - t0, 1)
        print(f"indexes and keys: {seconds['indexes and keys']} s", file=sys.stderr, flush=True)
        for table in SEQUENCES:
            conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT coalesce(max(id), 1) FROM {table}))"
                )
            )
    t0 = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))
    seconds["analyze"] = round(time.perf_counter() - t0, 1)
    with engine.connect() as conn:
        rows = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES}
        size = conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
    engine.dispose()
    return {"seconds": seconds, "rows": rows, "database_mb": round(size / 1_048_576)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True, help="the PostgreSQL database to fill")
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--create", action="store_true", help="create and migrate it first")
    parser.add_argument("--check", action="store_true", help="then run `patron check`")
    parser.add_argument("--keys", type=Path, help="JSON file of the keys (made when missing)")
    args = parser.parse_args()
    out: dict[str, object] = {
        "benchmark": "scale_data",
        "members": args.members,
        "orders": args.orders,
    }
    started = time.perf_counter()
    if args.create:
        create(args.url)
    out.update(fill(args.url, args.members, args.orders, keys_from(args.keys)))
    out["fill_s"] = round(time.perf_counter() - started, 1)
    if args.check:
        from patron.checks import run_all

        db = Database(args.url)
        t0 = time.perf_counter()
        with db.unit_of_work() as s:
            violations = run_all(s, now=datetime.now(UTC))
        out["check_s"] = round(time.perf_counter() - t0, 1)
        out["violations"] = violations[:20]
        db.dispose()
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
