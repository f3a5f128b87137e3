"""Member scores and the models' holdout metrics on a simulated SQLite database.

    python benchmarks/scores.py --members 20000 [--seed 1] [--db PATH] [--lines] [--reuse]
    python benchmarks/scores.py --members 1000000 --intensity 1.5 --url postgresql://… \
        [--reuse] [--no-evaluate]

Builds a migrated SQLite database with members who buy as the BG/NBD process says (gamma
purchase rates, a dropout chance after each purchase, spend per member from a gamma), two years
of history ending today, written with executemany — then times the nightly scores job (RFM in
SQL, BG/NBD, Gamma-Gamma, churn model) and `evaluate`, prints the evaluation as
`patron analytics evaluate` does, and a final JSON line. ``--lines`` gives every order one to
three lines (SKUs in ten categories, members favouring two), so the recommendations and the
category cycles have something to learn; ``--reuse`` times the jobs again on an existing
``--db`` without building it.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
from rich.console import Console
from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from patron.analytics import scores
from patron.analytics.report import print_evaluation
from patron.db import Database, normalize_url
from patron.members.models import Member
from patron.migrate import upgrade
from patron.orders.models import Order, OrderLine

TZ = ZoneInfo("Asia/Shanghai")
DAYS = 730


def simulate(
    n: int, seed: int, intensity: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(member, day offset 0..DAYS, paid fen) per purchase, vectorised over members.
    ``intensity`` scales the purchase rates and the expected purchases before leaving (1.0:
    about 7 orders per member; 1.5: about 10)."""
    rng = np.random.default_rng(seed)
    start = rng.integers(0, DAYS // 2, n)
    rate = rng.gamma(0.9, 1 / 25.0, n) * intensity  # purchases per day
    drop = rng.beta(1.0, 4.0 * intensity, n)
    mean_fen = rng.gamma(4.0, 2500.0, n) + 100
    span = DAYS - start
    later = rng.poisson(rate * span)
    keep = np.minimum(later, rng.geometric(drop))  # repeat purchases before leaving
    member = np.repeat(np.arange(n), later)
    when = start[member] + rng.random(member.size) * span[member]
    order = np.lexsort((when, member))
    member, when = member[order], when[order]
    first_of = np.cumsum(later) - later
    rank = np.arange(member.size) - first_of[member]
    sel = rank < keep[member]
    member = np.concatenate([np.arange(n), member[sel]])
    day = np.concatenate([start, np.floor(when[sel]).astype(np.int64)])
    fen = np.maximum(1, rng.gamma(8.0, mean_fen[member] / 8)).astype(np.int64)
    return member + 1, day, fen


CATEGORIES = 10
SKUS_PER_CATEGORY = 20


def lines_for(member: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(order index, SKU number, category) of 1–3 lines per order: each member favours two of
    the ten categories (four lines in five come from them), SKUs within a category by a
    Zipf-like popularity; so baskets co-occur by taste, not only by popularity."""
    rng = np.random.default_rng(seed + 1)
    n_members = int(member.max()) + 1
    taste = np.stack(
        [rng.integers(0, CATEGORIES, n_members), rng.integers(0, CATEGORIES, n_members)], axis=1
    )
    count = rng.integers(1, 4, member.size)
    order = np.repeat(np.arange(member.size), count)
    owner = member[order]
    favoured = rng.random(order.size) < 0.8
    category = np.where(
        favoured,
        taste[owner, rng.integers(0, 2, order.size)],
        rng.integers(0, CATEGORIES, order.size),
    )
    weights = 1.0 / np.arange(1, SKUS_PER_CATEGORY + 1)
    sku = rng.choice(SKUS_PER_CATEGORY, size=order.size, p=weights / weights.sum())
    return order, category * SKUS_PER_CATEGORY + sku, category


def build_postgres(url: str, n: int, seed: int, today: date, intensity: float) -> int:
    """The same members and orders on PostgreSQL, fast enough for millions of orders: members
    from ``generate_series``, the orders' (member, day, fen) copied into a staging table with
    COPY and expanded by one INSERT … SELECT (foreign-key triggers off for the load, as a
    restore does). No order lines."""
    upgrade(url)
    member, day, fen = simulate(n, seed, intensity)
    engine = create_engine(normalize_url(url))
    base = today - timedelta(days=DAYS)
    at = datetime.now(UTC) - timedelta(days=DAYS + 1)
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("SET session_replication_role = replica")
        cur.execute(
            "INSERT INTO members (id, member_no, phone_enc, phone_index, registration_channel,"
            " status, member_type, created_at, updated_at)"
            " SELECT i, 'B' || lpad(i::text, 9, '0'), '\\x78'::bytea, 'idx-' || i, 'web',"
            " 'active', 'regular', %(at)s, %(at)s FROM generate_series(1, %(n)s) AS i",
            {"at": at, "n": n},
        )
        cur.execute("CREATE TEMP TABLE bench_orders (k bigint, m bigint, d int, f bigint)")
        step = 1_000_000
        with cur.copy("COPY bench_orders (k, m, d, f) FROM STDIN") as copy:
            for lo in range(0, member.size, step):
                hi = min(lo + step, member.size)
                text_rows = "".join(
                    f"{k}\t{m}\t{d}\t{f}\n"
                    for k, m, d, f in zip(
                        range(lo, hi),
                        member[lo:hi].tolist(),
                        day[lo:hi].tolist(),
                        fen[lo:hi].tolist(),
                        strict=True,
                    )
                )
                copy.write(text_rows)
        # Secondary indexes are built once after the load (far faster than 10M inserts each).
        cur.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'orders'"
            " AND indexname LIKE 'ix_orders_%'"
        )
        indexes = cur.fetchall()
        for name, _ in indexes:
            cur.execute(f'DROP INDEX "{name}"')
        cur.execute("ALTER TABLE orders DROP CONSTRAINT uq_orders_source_external_id")
        cur.execute(
            "INSERT INTO orders (member_id, source, external_id, channel, ordered_at,"
            " business_date, status, list_total_fen, discount_fen, total_fen, points_used,"
            " points_fen, paid_fen, points_earned, growth_earned, welcome_bonus,"
            " first_purchase, rules_trace, content_hash, refunded_fen, created_at)"
            " SELECT m, 'bench', 'O' || k, 'store', (%(base)s::date + d) + interval '2 hours',"
            " %(base)s::date + d, 'completed', f, 0, f, 0, 0, f, 0, 0, 0, false, '{}',"
            " repeat('0', 64), 0, (%(base)s::date + d) + interval '2 hours'"
            " FROM bench_orders ORDER BY k",
            {"base": base},
        )
        for _, definition in indexes:
            cur.execute(definition)
        cur.execute(
            "ALTER TABLE orders ADD CONSTRAINT uq_orders_source_external_id"
            " UNIQUE (source, external_id)"
        )
        cur.execute("SELECT setval(pg_get_serial_sequence('members', 'id'), %s)", (n,))
        raw.commit()
        cur.execute("ANALYZE members")
        cur.execute("ANALYZE orders")
        raw.commit()
    finally:
        raw.close()
        engine.dispose()
    return int(member.size)


def build(
    url: str,
    n: int,
    seed: int,
    today: date,
    *,
    with_lines: bool = False,
    intensity: float = 1.0,
) -> int:
    if url.startswith("postgresql"):
        return build_postgres(url, n, seed, today, intensity)
    upgrade(url)
    db = Database(url)
    member, day, fen = simulate(n, seed, intensity)
    at = datetime.now(UTC) - timedelta(days=DAYS + 1)
    with db.unit_of_work() as s:
        s.execute(
            insert(Member),
            [
                {
                    "id": i,
                    "member_no": f"B{i:09d}",
                    "phone_enc": b"x",
                    "phone_index": f"idx-{i}",
                    "registration_channel": "web",
                    "status": "active",
                    "member_type": "regular",
                    "created_at": at,
                    "updated_at": at,
                }
                for i in range(1, n + 1)
            ],
        )
        base = today - timedelta(days=DAYS)
        rows = []
        for k, (m, d, f) in enumerate(
            zip(member.tolist(), day.tolist(), fen.tolist(), strict=True)
        ):
            bday = base + timedelta(days=d)
            stamp = datetime(bday.year, bday.month, bday.day, 2, tzinfo=UTC)
            rows.append(
                {
                    "member_id": m,
                    "source": "bench",
                    "external_id": f"O{k}",
                    "channel": "store",
                    "ordered_at": stamp,
                    "business_date": bday,
                    "status": "completed",
                    "list_total_fen": f,
                    "discount_fen": 0,
                    "total_fen": f,
                    "points_used": 0,
                    "points_fen": 0,
                    "paid_fen": f,
                    "points_earned": 0,
                    "growth_earned": 0,
                    "welcome_bonus": 0,
                    "first_purchase": False,
                    "rules_trace": {},
                    "content_hash": "0" * 64,
                    "refunded_fen": 0,
                    "created_at": stamp,
                }
            )
        s.execute(insert(Order), rows)
        if with_lines:
            order, sku, category = lines_for(member, seed)
            # Orders were inserted in order, ids from 1.
            first = np.r_[True, order[1:] != order[:-1]]
            line_no = np.arange(order.size) - np.maximum.accumulate(
                np.where(first, np.arange(order.size), 0)
            )
            s.execute(
                insert(OrderLine),
                [
                    {
                        "order_id": o + 1,
                        "line_no": ln + 1,
                        "sku": f"SKU{k:04d}",
                        "category": f"C{c:02d}",
                        "quantity": 1,
                        "unit_price_fen": 1000,
                        "discount_fen": 0,
                        "net_fen": 1000,
                        "points_fen": 0,
                        "points": 0,
                        "paid_fen": 1000,
                    }
                    for o, ln, k, c in zip(
                        order.tolist(),
                        line_no.tolist(),
                        sku.tolist(),
                        category.tolist(),
                        strict=True,
                    )
                ],
            )
    db.dispose()
    return len(rows)


def _backend_pid(session: Session) -> int | None:
    """The PostgreSQL backend serving the session, when the server runs on this machine (its
    CPU time is then read from /proc); None otherwise."""
    if session.connection().dialect.name != "postgresql":
        return None
    pid = int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())
    return pid if Path(f"/proc/{pid}/stat").exists() else None


def _process_cpu(pid: int | None) -> float:
    """User + system CPU seconds of a process of this machine (0 without one)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--members", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--db", type=Path, default=None)
    ap.add_argument(
        "--url", default=None, help="an empty (or, with --reuse, built) PostgreSQL database"
    )
    ap.add_argument(
        "--intensity", type=float, default=1.0, help="1.0: ~7 orders a member; 1.5: ~10"
    )
    ap.add_argument("--lines", action="store_true", help="orders with lines (recommendations)")
    ap.add_argument("--reuse", action="store_true", help="time the jobs on an existing database")
    ap.add_argument("--no-evaluate", action="store_true", help="time the scores job only")
    args = ap.parse_args()
    path = args.db or Path(tempfile.mkdtemp()) / "scores.db"
    url = args.url or f"sqlite:///{path}"
    now = datetime.now(UTC)
    today = now.astimezone(TZ).date()
    wall = time.perf_counter()
    if args.reuse:
        with Database(url).unit_of_work() as s:
            orders = int(s.scalar(select(func.count()).select_from(Order)) or 0)
    else:
        orders = build(
            url, args.members, args.seed, today, with_lines=args.lines, intensity=args.intensity
        )
    where = make_url(normalize_url(url)).render_as_string(hide_password=True)
    print(f"{args.members:,} members, {orders:,} orders in {where}")
    if not args.reuse:
        print(f"built in {time.perf_counter() - wall:.1f} s")
    db = Database(url)
    result: dict[str, object] = {"members": args.members, "orders": orders}
    steps = ("scores",) if args.no_evaluate else ("scores", "evaluate")
    ev = None
    for name in steps:
        wall, cpu = time.perf_counter(), time.process_time()
        with db.unit_of_work() as s:
            backend = _backend_pid(s)
            server = _process_cpu(backend)
            if name == "scores":
                run = scores.run_scores(s, now=now, tz=TZ)
            else:
                ev = scores.evaluate(s, now=now, tz=TZ)
            server = _process_cpu(backend) - server
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(f"{name}: {wall:.2f} s wall, {cpu:.2f} s CPU (this process)")
        result[f"{name}_seconds"] = round(wall, 3)
        result[f"{name}_cpu_seconds"] = round(cpu, 3)
        if backend is not None:
            print(f"{name}: {server:.2f} s CPU in the database backend (not its parallel workers)")
            result[f"{name}_database_cpu_seconds"] = round(server, 3)
    print(f"scores: churn risk from {run.churn_source}; missing: {list(run.missing)}")
    print(f"timings: {run.extras.get('timings')}")
    if ev is not None:
        print_evaluation(Console(width=120), ev)
    db.dispose()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
