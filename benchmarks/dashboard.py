"""The KPI dashboard on a large SQLite database.

    python benchmarks/dashboard.py --members 100000 [--db PATH] [--runs 7]

Builds (or reuses, when it already holds that many members) a migrated SQLite database with
members registered over two years, their orders (some partly or fully returned, some paid with
points), earn/redeem/expire postings with lots, point accounts and tiers — all with set-based
``executemany`` inserts, no services — then times the dashboard service for the last 30 days
and for a year, and the full page (``GET /console/`` signed in, through the app) — median of
``--runs`` runs each — and prints a final JSON line. Goal: the page within 1 s for 100,000 members.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient

from patron.analytics import service as analytics
from patron.analytics.scope import EVERYTHING, Scope
from patron.app import create_app
from patron.auth import service as auth_service
from patron.auth.principal import Principal
from patron.config import Settings
from patron.db import Database
from patron.kit.clock import FrozenClock
from patron.migrate import upgrade

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
DAYS = 730
ORDERS_PER_MEMBER = 5  # on average; personas spread it from 0 to ~20
PASSWORD = "bench-password-123"
KEYS = {k: base64.b64encode(c * 32).decode() for k, c in (("data_key", b"d"), ("index_key", b"i"))}
KEYS["token_key"] = base64.b64encode(b"t" * 32).decode()
CHUNK = 20_000


def _ts(dt: datetime) -> str:
    # The text SQLite stores for a UTC timestamp column.
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _chunks(rows: Iterator[tuple[Any, ...]]) -> Iterator[list[tuple[Any, ...]]]:
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


def build(path: str, members: int) -> dict[str, int]:
    """Fill the database; returns the row counts written."""
    rng = random.Random(11)
    start = NOW - timedelta(days=DAYS)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    joined: list[datetime] = []

    def member_rows() -> Iterator[tuple[Any, ...]]:
        for m in range(1, members + 1):
            # More sign-ups recently: the square root skews registrations towards now.
            at = start + timedelta(seconds=int(DAYS * 86400 * rng.random() ** 0.7))
            joined.append(at)
            yield (
                m,
                f"{1_000_000_000 + m}",
                b"\x01",
                f"{m:064x}",
                "regular",
                "active",
                "store",
                "SH001",
                _ts(at),
                _ts(at),
            )

    for batch in _chunks(member_rows()):
        conn.executemany(
            "INSERT INTO members (id, member_no, phone_enc, phone_index, member_type, status, "
            "registration_channel, registration_store_code, created_at, updated_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?)",
            batch,
        )
    counts = {"members": members, "orders": 0, "postings": 0, "lots": 0, "member_tiers": 0}
    accounts: dict[int, list[int]] = {}  # member → [available, earned, redeemed, expired]
    tiers: list[tuple[Any, ...]] = []
    order_id = posting_id = lot_id = 0

    def order_and_points_rows() -> Iterator[tuple[str, tuple[Any, ...]]]:
        nonlocal order_id, posting_id, lot_id
        for m in range(1, members + 1):
            since = joined[m - 1]
            # Personas: a third never buy again after joining, a few buy very often.
            persona = rng.random()
            n = 0 if persona < 0.25 else rng.randint(1, 4) if persona < 0.85 else rng.randint(5, 25)
            acc = accounts.setdefault(m, [0, 0, 0, 0])
            span = max((NOW - since).total_seconds(), 3600)
            for _ in range(n):
                at = since + timedelta(seconds=int(span * rng.random()))
                order_id += 1
                total = rng.choice((3900, 9900, 19900, 29900, 59900, 129900)) * rng.randint(1, 3)
                status, refunded = "completed", 0
                roll = rng.random()
                if roll < 0.02:
                    status, refunded = "returned", total
                elif roll < 0.05:
                    status, refunded = "partially_returned", total // 3
                pts = total // 100
                yield (
                    "order",
                    (
                        order_id,
                        m,
                        "pos",
                        f"B{order_id}",
                        "store",
                        "SH001",
                        _ts(at),
                        at.astimezone(TZ).date().isoformat(),
                        status,
                        total,
                        0,
                        total,
                        0,
                        0,
                        total,
                        pts,
                        pts,
                        0,
                        0,
                        "{}",
                        "x",
                        refunded,
                        _ts(at),
                    ),
                )
                posting_id += 1
                lot_id += 1
                expires = at + timedelta(days=365)
                spent_at = at + timedelta(days=rng.randint(1, 60))
                spent = pts if rng.random() < 0.3 and spent_at < NOW else 0
                remaining = pts - spent
                expired = remaining if expires <= NOW else 0
                yield "posting", (posting_id, m, "earn", pts, f"earn:{posting_id}", _ts(at))
                yield (
                    "lot",
                    (lot_id, m, posting_id, pts, remaining - expired, _ts(at), _ts(expires)),
                )
                acc[1] += pts
                if spent:
                    posting_id += 1
                    yield (
                        "posting",
                        (posting_id, m, "redeem", -spent, f"redeem:{posting_id}", _ts(spent_at)),
                    )
                    acc[2] += spent
                if expired:
                    posting_id += 1
                    yield (
                        "posting",
                        (posting_id, m, "expire", -expired, f"expire:{posting_id}", _ts(expires)),
                    )
                    acc[3] += expired
                acc[0] += remaining - expired
            level = rng.random()
            if n and level < 0.45:
                code = "diamond" if level < 0.02 else "gold" if level < 0.12 else "silver"
                tiers.append((m, code, _ts(since), _ts(since)))

    sql = {
        "order": "INSERT INTO orders (id, member_id, source, external_id, channel, store_code, "
        "ordered_at, business_date, status, list_total_fen, discount_fen, total_fen, points_used,"
        " points_fen, paid_fen, points_earned, growth_earned, welcome_bonus, first_purchase, "
        "rules_trace, content_hash, refunded_fen, created_at) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        "posting": "INSERT INTO points_postings (id, member_id, kind, available_delta, "
        "pending_delta, debt_delta, reason, idempotency_key, actor, created_at) "
        "VALUES (?,?,?,?,0,0,'bench',?,'bench',?)",
        "lot": "INSERT INTO points_lots (id, member_id, posting_id, amount, remaining, earned_at,"
        " expires_at) VALUES (?,?,?,?,?,?,?)",
    }
    plural = {"order": "orders", "posting": "postings", "lot": "lots"}
    for batch in _chunks(iter(order_and_points_rows())):  # type: ignore[arg-type]
        for kind in ("order", "posting", "lot"):
            rows = [row for k, row in batch if k == kind]
            if rows:
                conn.executemany(sql[kind], rows)
                counts[plural[kind]] += len(rows)
    conn.executemany(
        "INSERT INTO points_accounts (member_id, available, pending, debt, lifetime_earned, "
        "lifetime_redeemed, lifetime_expired, version, updated_at) VALUES (?,?,0,0,?,?,?,0,?)",
        [(m, a, e, r, x, _ts(NOW)) for m, (a, e, r, x) in accounts.items()],
    )
    conn.executemany(
        "INSERT INTO member_tiers (member_id, tier_code, since, updated_at) VALUES (?,?,?,?)",
        tiers,
    )
    counts["member_tiers"] = len(tiers)
    conn.commit()
    conn.execute("ANALYZE")
    conn.commit()
    conn.close()
    return counts


def member_count(path: str) -> int:
    if not os.path.exists(path):
        return -1
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM members").fetchone()[0])
    except sqlite3.Error:
        return -1
    finally:
        conn.close()


def median_ms(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    """Median wall time and median CPU time of this process, in ms. SQLite runs in-process, so
    the CPU time is the work itself, whatever else the machine is busy with."""
    fn()  # warm the caches and the page's templates once
    wall, cpu = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return round(statistics.median(wall) * 1000, 1), round(statistics.median(cpu) * 1000, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--db", default=os.path.join(tempfile.gettempdir(), "patron_dashboard_bench.db")
    )
    args = parser.parse_args()
    results: dict[str, Any] = {"benchmark": "dashboard", "members": args.members}
    if member_count(args.db) != args.members:
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(args.db + suffix):
                os.remove(args.db + suffix)
        url = f"sqlite:///{args.db}"
        upgrade(url)
        t0 = time.perf_counter()
        results.update(build(args.db, args.members))
        results["build_s"] = round(time.perf_counter() - t0, 1)
    else:
        results["reused"] = True
    url = f"sqlite:///{args.db}"
    db = Database(url)
    today = NOW.astimezone(TZ).date()

    def service(days: int, scope: Scope = EVERYTHING) -> Callable[[], object]:
        def run() -> object:
            with db.unit_of_work() as session:
                return analytics.dashboard(
                    session,
                    start=today - timedelta(days=days - 1),
                    end=today,
                    now=NOW,
                    tz=TZ,
                    scope=scope,
                )

        return run

    for days in (30, 365, 730):
        wall, cpu = median_ms(service(days), args.runs)
        results[f"service_{days}d_ms"], results[f"service_{days}d_cpu_ms"] = wall, cpu
    # One store (every order of the generated data is at SH001, so the filter removes nothing
    # and the figure is the cost of the filter itself).
    store = Scope(store="SH001", stores=("SH001",))
    wall, cpu = median_ms(service(30, store), args.runs)
    results["service_30d_store_ms"], results["service_30d_store_cpu_ms"] = wall, cpu

    settings = Settings(env="test", database_url=url, log_level="WARNING", scheduler=False, **KEYS)
    app = create_app(settings, db, FrozenClock(NOW))
    username = f"bench-{int(time.time())}"
    with db.unit_of_work() as session:
        auth_service.create_staff(
            session,
            Principal.system("bench"),
            username=username,
            display_name="Bench",
            role="admin",
            password=PASSWORD,
            now=NOW,
        )
    with TestClient(app) as client:
        form = client.get("/console/login")
        token = form.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        client.post(
            "/console/login",
            data={"username": username, "password": PASSWORD, "csrf_token": token},
        )

        def page(query: str) -> Callable[[], object]:
            def run() -> object:
                r = client.get("/console/" + query)
                assert r.status_code == 200, r.status_code
                return r

            return run

        year = f"?from={today - timedelta(days=364)}&to={today}"
        for label, query in (("30d", ""), ("365d", year)):
            wall, cpu = median_ms(page(query), args.runs)
            results[f"page_{label}_ms"], results[f"page_{label}_cpu_ms"] = wall, cpu
    db.dispose()
    results["runs"] = args.runs
    results["load_avg_1m"] = round(os.getloadavg()[0], 2)
    results["goal_page_ms"] = 1000
    print(json.dumps(results))


if __name__ == "__main__":
    main()
