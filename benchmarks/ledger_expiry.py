"""Expiry run and reconciliation on a large ledger (PostgreSQL).

    python benchmarks/ledger_expiry.py --lots 10000000 --due 1000000 [--settings both]

Builds members with ten 100-point lots each (the due ones already past expiry) through COPY,
vacuums them (a ledger of that size has stood for months), then times `run_expire` (the job
`patron jobs run expire` runs) and `run_check` (`patron check`). Prints a final JSON line.
Goal: the expiry run within 30 s for 10M lots / 1M due.

``--settings``: ``server`` runs on the scratch database as the server configures it;
``recommended`` first applies the database and table settings of docs/operations.md to it (the
server-wide ones, e.g. shared_buffers, are reported next to the server's values: a benchmark
does not reconfigure a shared server); ``both`` runs each and reports the two side by side;
``cluster`` starts a private PostgreSQL cluster (initdb, the server binaries of this machine)
configured with the server settings of docs/operations.md — durable: fsync and full-page writes
stay on — and runs there with the database and table settings applied (the documented
production configuration, on this machine's disk and cores).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime, timedelta

import psycopg

sys.path.insert(0, os.path.dirname(__file__))
from _common import SERVER_SETTINGS, apply_recommended, scratch_database, timed

from patron.db import Database
from patron.ledger.check import run_check
from patron.ledger.jobs import run_expire

LOTS_PER_MEMBER = 10
POINTS = 100


def build(url: str, lots: int, due: int, now: datetime) -> None:
    members = lots // LOTS_PER_MEMBER
    past = now - timedelta(days=1)
    future = now + timedelta(days=200)
    earned = now - timedelta(days=300)
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        with cur.copy(
            "COPY members (id, member_no, phone_enc, phone_index, member_type, status, "
            "registration_channel, created_at, updated_at) FROM STDIN"
        ) as cp:
            for m in range(1, members + 1):
                cp.write_row(
                    (
                        m,
                        f"{1000000000 + m}",
                        b"\x01",
                        f"{m:064x}",
                        "regular",
                        "active",
                        "web",
                        earned,
                        earned,
                    )
                )
        with cur.copy(
            "COPY points_postings (id, member_id, kind, available_delta, pending_delta, "
            "debt_delta, reason, idempotency_key, actor, created_at) FROM STDIN"
        ) as cp:
            for lot in range(1, lots + 1):
                m = (lot - 1) // LOTS_PER_MEMBER + 1
                cp.write_row(
                    (lot, m, "earn", POINTS, 0, 0, "bench", f"bench:{lot}", "bench", earned)
                )
        with cur.copy(
            "COPY points_lots (id, member_id, posting_id, amount, remaining, earned_at, "
            "expires_at) FROM STDIN"
        ) as cp:
            # Spread the due lots over members: every k-th lot is due.
            step = max(lots // max(due, 1), 1)
            n_due = 0
            for lot in range(1, lots + 1):
                m = (lot - 1) // LOTS_PER_MEMBER + 1
                is_due = n_due < due and lot % step == 0
                n_due += is_due
                cp.write_row((lot, m, lot, POINTS, POINTS, earned, past if is_due else future))
        with cur.copy(
            "COPY points_accounts (member_id, available, pending, debt, lifetime_earned, "
            "lifetime_redeemed, lifetime_expired, version, updated_at) FROM STDIN"
        ) as cp:
            for m in range(1, members + 1):
                total = POINTS * LOTS_PER_MEMBER
                cp.write_row((m, total, 0, 0, total, 0, 0, 0, earned))
        for table in ("members", "points_postings", "points_lots"):
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        conn.commit()
    # A ledger this size has stood for months: vacuumed, its hint bits and visibility map set.
    # Without this the expiry run would pay for the build's first-touch writes (and race the
    # autovacuum the build set off), which a production run does not.
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) members, points_postings, points_lots, points_accounts")


def run(
    args: argparse.Namespace, recommended: bool, server_url: str | None = None
) -> dict[str, object]:
    now = datetime.now(UTC)
    results: dict[str, float] = {}
    server: dict[str, dict[str, str]] = {}
    with scratch_database(server_url) as url:
        if recommended:
            server = apply_recommended(url)
        with timed(results, "build_s"):
            build(url, args.lots, args.due, now)
        db = Database(url)
        with timed(results, "expire_s"):
            report = run_expire(db, now, workers=args.workers)
        with timed(results, "expire_again_s"):
            again = run_expire(db, now, workers=args.workers)
        violations: list[str] = []
        if not args.skip_check:
            with timed(results, "check_s"), db.unit_of_work() as session:
                violations = run_check(session, now=now)
        db.dispose()
    return {
        "expired_lots": report.lots,
        "expired_points": report.points,
        "second_run_lots": again.lots,
        "violations": len(violations),
        **results,
        **({"server_settings": server} if recommended else {}),
    }


def run_on_cluster(args: argparse.Namespace) -> None:
    from tests.ops.pgcluster import private_cluster, unavailable_reason

    reason = unavailable_reason()
    if reason:
        sys.exit(f"--settings cluster: {reason}")
    overrides = dict(item.split("=", 1) for item in args.set)
    settings = {**SERVER_SETTINGS, "max_connections": "100", **overrides}
    with private_cluster(settings) as cluster:
        result = run(args, True, cluster.url)
    print(
        json.dumps(
            {
                "benchmark": "ledger_expiry",
                "settings": "cluster",
                "overrides": overrides,
                "lots": args.lots,
                "due": args.due,
                "workers": args.workers,
                **result,
                "goal_expire_s": 30,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lots", type=int, default=10_000_000)
    parser.add_argument("--due", type=int, default=1_000_000)
    parser.add_argument("--skip-check", action="store_true")
    parser.add_argument("--workers", type=int, default=1, help="parallel expiry connections")
    parser.add_argument(
        "--settings", choices=("server", "recommended", "both", "cluster"), default="server"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="with --settings cluster: a server setting in place of the recommended one",
    )
    args = parser.parse_args()
    if args.settings == "cluster":
        run_on_cluster(args)
        return
    runs = {"server": [False], "recommended": [True], "both": [False, True]}[args.settings]
    out: dict[str, object] = {
        "benchmark": "ledger_expiry",
        "lots": args.lots,
        "due": args.due,
        "workers": args.workers,
    }
    for recommended in runs:
        result = run(args, recommended)
        if len(runs) == 1:
            out.update(result)
        else:
            out["recommended" if recommended else "server"] = result
    out["goal_expire_s"] = 30
    print(json.dumps(out))


if __name__ == "__main__":
    main()
