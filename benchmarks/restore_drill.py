"""Backup and restore drill at size (PostgreSQL): how long until a restored database is checked.

    python benchmarks/restore_drill.py --members 100000 --orders 1000000
    python benchmarks/restore_drill.py --url postgresql://…/bench_scale [--jobs 4]

Builds a scratch database through the real import path (members: validation, encryption, blind
index; orders: the rules engine and the ledger for every order, so the ledger, lots, events and
audit records are what production would hold), then times `patron backup` (pg_dump custom
format) and the drill: restore into another scratch database with `pg_restore -j`, every
domain's check, and the comparison of row counts and balances with the source. Prints one JSON
line. ``--url`` skips the load and drills an existing database instead (one filled by
benchmarks/scale_data.py: 1M members and 10M orders in minutes); it is left as it was. Set
PATRON_BENCH_PG to use another server than postgresql://postgres@127.0.0.1:5432.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text

sys.path.insert(0, os.path.dirname(__file__))
from _common import scratch_database
from import_bench import TZ, write_files

from patron.auth.principal import Principal
from patron.catalog import service as catalog
from patron.catalog.schemas import CategoryIn, ProductIn, StoreIn
from patron.db import Database, normalize_url
from patron.imports.importers import MemberImporter, OrderImporter
from patron.imports.runner import run_import
from patron.kit.crypto import FieldCipher
from patron.ops import backup as ops_backup


def load(url: str, tmp: Path, members: int, orders: int) -> dict[str, float]:
    cipher = FieldCipher(b"d" * 32, b"i" * 32)
    actor = Principal.system("bench")
    now = datetime.now(UTC)
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
    mpath, opath = write_files(tmp, members, orders)
    t0 = time.perf_counter()
    run_import(db, MemberImporter(cipher, actor, tz=TZ, now=now), mpath, report_path=tmp / "m.err")
    t1 = time.perf_counter()
    run_import(
        db,
        OrderImporter(cipher, actor, tz=TZ, now=now),
        opath,
        report_path=tmp / "o.err",
        batch_size=500,
    )
    t2 = time.perf_counter()
    db.dispose()
    return {"load_members_s": round(t1 - t0, 1), "load_orders_s": round(t2 - t1, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=5_000)
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--jobs", type=int, default=2, help="pg_restore parallel jobs")
    parser.add_argument("--url", help="drill this existing database instead of loading one")
    args = parser.parse_args()
    if args.url:
        out = drill_existing(args.url, args.jobs)
    else:
        with scratch_database() as url, tempfile.TemporaryDirectory() as tmpdir:
            out = {"members": args.members, "orders": args.orders}
            out.update(load(url, Path(tmpdir), args.members, args.orders))
            out.update(measure(url, Path(tmpdir), args.jobs))
    print(json.dumps({"benchmark": "restore_drill", **out}))


def drill_existing(url: str, jobs: int) -> dict[str, object]:
    engine = create_engine(normalize_url(url))
    with engine.connect() as conn:
        out: dict[str, object] = {
            "members": conn.execute(text("SELECT count(*) FROM members")).scalar_one(),
            "orders": conn.execute(text("SELECT count(*) FROM orders")).scalar_one(),
        }
    engine.dispose()
    with tempfile.TemporaryDirectory() as tmpdir:
        out.update(measure(url, Path(tmpdir), jobs))
    return out


def measure(url: str, tmp: Path, jobs: int) -> dict[str, object]:
    """Back ``url`` up, drill the backup, time each part."""
    out: dict[str, object] = {"jobs": jobs}
    engine = create_engine(normalize_url(url))
    with engine.connect() as conn:
        out["database_mb"] = round(
            conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
            / 1_048_576
        )
    engine.dispose()
    made = ops_backup.backup(url, tmp / "backups")
    out["backup_s"] = round(made.seconds, 1)
    out["backup_mb"] = round(made.size_bytes / 1_048_576, 1)
    print(f"backup: {out['backup_s']} s, {out['backup_mb']} MB", file=sys.stderr, flush=True)
    started = time.perf_counter()

    def progress(step: str) -> None:
        print(f"{time.perf_counter() - started:.0f} s: {step}", file=sys.stderr, flush=True)

    report = ops_backup.drill(url, made.path, jobs=jobs, progress=progress)
    out.update(
        {
            "restore_s": round(report.restore_seconds, 1),
            "check_s": round(report.check_seconds, 1),
            "compare_s": round(report.compare_seconds, 1),
            "drill_total_s": round(report.total_seconds, 1),
            "restore_and_check_s": round(report.restore_seconds + report.check_seconds, 1),
            "violations": report.violations[:10],
            "differences": report.differences[:10],
            "goal_s": 15 * 60,
        }
    )
    return out


if __name__ == "__main__":
    main()
