"""Bulk import against a raw COPY of the same rows (PostgreSQL).

    python benchmarks/import_bench.py --members 1000000 --orders 10000000

Writes CSV files of members and historical orders (one line per order), imports them with
`patron import` machinery (members: validation, phone normalisation, encryption, blind index,
consents; orders: the rules engine and the ledger for every order), then COPYs the same number of
rows into bare tables of the same shape in the same database, and prints a final JSON line with
both times, their ratio and the importer's peak memory. Goal: ≤ 5× the COPY time, flat memory.

The bare COPY runs first (into tables of the same shape, dropped after it), so a long run at full
size has its baseline before the import starts; ``--progress N`` prints the import's rate and
memory to stderr every N batches. The *floor* (``--floor``, on by default) copies the rows the
import wrote — every table it filled, same indexes, no foreign keys — into empty tables of the
same shape: what writing those rows costs without any planning, the least any importer that
writes them could take. ``floor_ratio`` is that against the bare COPY.

``--settings cluster`` runs it all on a private PostgreSQL cluster (initdb with this machine's
server binaries, fsync on) configured as docs/operations.md recommends, with the database and
table settings applied — the documented production configuration; by default it runs on the
server ``PATRON_BENCH_PG`` names, as that server is configured.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg

sys.path.insert(0, os.path.dirname(__file__))
from _common import SERVER_SETTINGS, apply_recommended, scratch_database

from patron.auth.principal import Principal
from patron.catalog import service as catalog
from patron.catalog.schemas import CategoryIn, ProductIn, StoreIn
from patron.db import Database
from patron.imports.importers import MemberImporter, OrderImporter
from patron.imports.runner import run_import
from patron.kit.crypto import FieldCipher

TZ = ZoneInfo("Asia/Shanghai")


def write_files(tmp: Path, members: int, orders: int) -> tuple[Path, Path]:
    rng = random.Random(7)
    mpath, opath = tmp / "members.csv", tmp / "orders.csv"
    with mpath.open("w") as fh:
        fh.write("phone,name,channel,store_code,birthday,sms\n")
        for i in range(members):
            fh.write(f"139{i:08d},会员{i},store,SH001,1990-01-{1 + i % 28:02d},1\n")
    # Spread over the two years before today, however many orders: an order dated in the future
    # is refused (a fixed step of minutes put every order after the first ~1.1M in the future).
    end = datetime.now(TZ).replace(microsecond=0) - timedelta(days=1)
    start = end - timedelta(days=730)
    step = timedelta(days=730) / max(orders, 1)
    with opath.open("w") as fh:
        fh.write("order_id,phone,store_code,ordered_at,sku,quantity,unit_price\n")
        for i in range(orders):
            at = start + step * i
            m = rng.randrange(members)
            fh.write(f"H{i},139{m:08d},SH001,{at:%Y-%m-%d %H:%M:%S},BEA-1,1,199.00\n")
    return mpath, opath


def copy_baseline(url: str, mpath: Path, opath: Path) -> float:
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        # Same columns, defaults and indexes as the real tables; no foreign keys or triggers.
        for table in ("members", "orders", "order_lines"):
            cur.execute(
                f"CREATE TABLE copy_{table} (LIKE {table} INCLUDING DEFAULTS INCLUDING INDEXES)"
            )
        conn.commit()
        start = time.perf_counter()
        now = datetime.now(UTC)
        with (
            mpath.open() as fh,
            cur.copy(
                "COPY copy_members (id, member_no, phone_enc, phone_index, name, member_type, "
                "status, registration_channel, created_at, updated_at) FROM STDIN"
            ) as cp,
        ):
            next(fh)
            for i, line in enumerate(fh):
                phone, name = line.split(",", 2)[:2]
                cp.write_row(
                    (
                        i + 1,
                        f"{1000000000 + i}",
                        phone.encode(),
                        phone,
                        name,
                        "regular",
                        "active",
                        "store",
                        now,
                        now,
                    )
                )
        with (
            opath.open() as fh,
            cur.copy(
                "COPY copy_orders (id, member_id, source, external_id, channel, store_code, "
                "ordered_at, business_date, status, list_total_fen, discount_fen, total_fen, "
                "points_used, points_fen, paid_fen, points_earned, growth_earned, welcome_bonus, "
                "first_purchase, rules_trace, content_hash, refunded_fen, created_at) FROM STDIN"
            ) as cp,
        ):
            next(fh)
            for i, line in enumerate(fh):
                parts = line.split(",")
                cp.write_row(
                    (i + 1, 1, "import", parts[0], "store", "SH001", now, now.date(),
                     "completed", 19900, 0, 19900, 0, 0, 19900, 199, 199, 0, False, "{}",
                     "x", 0, now)
                )  # fmt: skip
        with (
            opath.open() as fh,
            cur.copy(
                "COPY copy_order_lines (id, order_id, line_no, sku, category, quantity, "
                "unit_price_fen, discount_fen, net_fen, points_fen, points, paid_fen, "
                "returned_quantity, refunded_fen, refunded_points) FROM STDIN"
            ) as cp,
        ):
            next(fh)
            for i, _line in enumerate(fh):
                cp.write_row(
                    (i + 1, i + 1, 1, "BEA-1", "beauty", 1, 19900, 0, 19900, 0, 199, 19900,
                     0, 0, 0)
                )  # fmt: skip
        conn.commit()
        elapsed = time.perf_counter() - start
        for table in ("members", "orders", "order_lines"):
            cur.execute(f"DROP TABLE copy_{table}")
        conn.commit()
        return elapsed


def copy_floor(url: str) -> tuple[float, int]:
    """COPY every row the imports wrote (every table that holds rows; the catalog's few are
    noise) into empty tables of the same shape (same indexes, no foreign keys or triggers);
    returns the seconds the COPYs in took and the rows."""
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    elapsed, rows = 0.0, 0
    with tempfile.TemporaryDirectory() as tmpdir, psycopg.connect(dsn) as conn:
        cur = conn.cursor()
        names = cur.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'alembic_version' ORDER BY tablename"
        ).fetchall()
        tables = [
            name
            for (name,) in names
            if cur.execute(f"SELECT EXISTS (SELECT 1 FROM {name})").fetchone()[0]
        ]
        for table in tables:
            dump = Path(tmpdir) / table
            with dump.open("wb") as fh, cur.copy(f"COPY {table} TO STDOUT (FORMAT binary)") as cp:
                for chunk in cp:
                    fh.write(chunk)
            cur.execute(
                f"CREATE TABLE floor_{table} (LIKE {table} INCLUDING DEFAULTS INCLUDING INDEXES)"
            )
            conn.commit()
            start = time.perf_counter()
            with (
                dump.open("rb") as fh,
                cur.copy(f"COPY floor_{table} FROM STDIN (FORMAT binary)") as cp,
            ):
                while chunk := fh.read(1 << 20):
                    cp.write(chunk)
            conn.commit()
            elapsed += time.perf_counter() - start
            copied = cur.execute(f"SELECT count(*) FROM floor_{table}").fetchone()[0]
            print(f"[import] floor {table}: {copied:,} rows", file=sys.stderr, flush=True)
            rows += copied
            cur.execute(f"DROP TABLE floor_{table}")
            conn.commit()
            dump.unlink()
    return elapsed, rows


def database_bytes(url: str) -> int:
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        return int(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--orders", type=int, default=50_000)
    parser.add_argument(
        "--floor",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also COPY the rows the import wrote into bare tables (the writes' own cost)",
    )
    parser.add_argument(
        "--progress", type=int, default=0, help="print rate and memory every N batches"
    )
    parser.add_argument("--settings", choices=("server", "cluster"), default="server")
    args = parser.parse_args()
    if args.settings == "cluster":
        from tests.ops.pgcluster import private_cluster, unavailable_reason

        reason = unavailable_reason()
        if reason:
            sys.exit(f"--settings cluster: {reason}")
        with private_cluster({**SERVER_SETTINGS, "max_connections": "100"}) as cluster:
            run(args, cluster.url)
    else:
        run(args, None)


def run(args: argparse.Namespace, server_url: str | None) -> None:
    cipher = FieldCipher(b"d" * 32, b"i" * 32)
    actor = Principal.system("bench")
    now = datetime.now(UTC)
    rss: list[int] = []
    started = time.perf_counter()

    def progress(done: int, total: int) -> None:
        rss.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        if args.progress and len(rss) % args.progress == 0:
            elapsed = time.perf_counter() - started
            print(
                f"[import] {elapsed:8.0f} s  {done:>10,} / {total:,} bytes of the file, "
                f"peak rss {rss[-1] // 1024} MB",
                file=sys.stderr,
                flush=True,
            )

    with scratch_database(server_url) as url, tempfile.TemporaryDirectory() as tmpdir:
        if server_url:
            apply_recommended(url)
        tmp = Path(tmpdir)
        mpath, opath = write_files(tmp, args.members, args.orders)
        copy_s = copy_baseline(url, mpath, opath)
        print(f"[import] bare COPY {copy_s:.2f} s", file=sys.stderr, flush=True)
        db = Database(url)
        with db.unit_of_work() as s:
            catalog.upsert_store(
                s, actor, StoreIn(code="SH001", name="s", region="East China"), now=now
            )
            catalog.upsert_category(s, actor, CategoryIn(code="beauty", name="b"), now=now)
            catalog.upsert_product(
                s,
                actor,
                ProductIn(sku="BEA-1", name="b", category_code="beauty", price_fen=19900),
                now=now,
            )
        started = t0 = time.perf_counter()
        m = run_import(
            db,
            MemberImporter(cipher, actor, tz=TZ, now=now),
            mpath,
            report_path=tmp / "m.err",
            batch_size=2000,
            progress=progress,
        )
        t1 = time.perf_counter()
        o = run_import(
            db,
            OrderImporter(cipher, actor, tz=TZ, now=now),
            opath,
            report_path=tmp / "o.err",
            batch_size=2000,  # the importer's default (patron import --batch-size)
            progress=progress,
        )
        t2 = time.perf_counter()
        cpu_s = resource.getrusage(resource.RUSAGE_SELF).ru_utime
        db.dispose()
        size = database_bytes(url)
        floor_s, floor_rows = copy_floor(url) if args.floor else (None, None)
    import_s = t2 - t0
    print(
        json.dumps(
            {
                "benchmark": "import",
                "settings": args.settings,
                "members": args.members,
                "orders": args.orders,
                "members_imported": m.imported,
                "orders_imported": o.imported,
                "rejected": m.rejected + o.rejected,
                "members_s": round(t1 - t0, 2),
                "orders_s": round(t2 - t1, 2),
                "import_s": round(import_s, 2),
                "copy_s": round(copy_s, 2),
                "ratio": round(import_s / copy_s, 1) if copy_s else None,
                "orders_per_s": round(o.imported / (t2 - t1), 1) if t2 > t1 else None,
                "importer_cpu_s": round(cpu_s, 1),
                "floor_s": None if floor_s is None else round(floor_s, 2),
                "floor_rows": floor_rows,
                "floor_ratio": round(floor_s / copy_s, 1) if floor_s and copy_s else None,
                "database_mb": size // 2**20,
                "rss_kb_first": rss[0] if rss else None,
                "rss_kb_last": rss[-1] if rss else None,
                "goal_ratio": 5,
            }
        )
    )


if __name__ == "__main__":
    main()
