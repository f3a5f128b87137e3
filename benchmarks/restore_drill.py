"""Backup and restore drill at size (PostgreSQL): how long until a restored database is checked.

    python benchmarks/restore_drill.py --members 100000 --orders 1000000

Builds a scratch database through the real import path (members: validation, encryption, blind
index; orders: the rules engine and the ledger for every order, so the ledger, lots, events and
audit records are what production would hold), then times `patron backup` (pg_dump custom
format) and the drill: restore into another scratch database with `pg_restore -j`, every
domain's check, and the comparison of row counts and balances with the source. Prints one JSON
line. Set PATRON_BENCH_PG to use another server than postgresql://postgres@127.0.0.1:5432.
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
    args = parser.parse_args()
    with scratch_database() as url, tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        out: dict[str, object] = {
            "benchmark": "restore_drill",
            "members": args.members,
            "orders": args.orders,
        }
        out.update(load(url, tmp, args.members, args.orders))
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
        report = ops_backup.drill(url, made.path, jobs=args.jobs)
        out.update(
            {
                "restore_s": round(report.restore_seconds, 1),
                "check_s": round(report.check_seconds, 1),
                "compare_s": round(report.compare_seconds, 1),
                "drill_total_s": round(report.total_seconds, 1),
                "violations": len(report.violations),
                "differences": len(report.differences),
                "goal_s": 15 * 60,
            }
        )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
