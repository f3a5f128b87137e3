"""Helpers shared by the benchmarks: a throwaway PostgreSQL database and timing."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from patron.db import normalize_url
from patron.migrate import upgrade

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextmanager
def scratch_database(server_url: str | None = None) -> Iterator[str]:
    """Create a migrated, empty database for one benchmark run; drop it afterwards."""
    server = make_url(
        normalize_url(server_url or os.environ.get("PATRON_BENCH_PG", DEFAULT_SERVER))
    )
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    # PATRON_BENCH_DB_PREFIX names the scratch databases of one person's runs on a shared server
    prefix = os.environ.get("PATRON_BENCH_DB_PREFIX", "patron_bench")
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = server.set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def serve(
    url: str,
    keys: dict[str, str],
    port: int,
    workers: int,
    *,
    bench_endpoints: bool = False,
    settings: dict[str, str] | None = None,
    log: str | None = None,
) -> Iterator[str]:
    """Run `patron serve` on ``url`` (already migrated) as a production server would run, wait
    until it answers, yield its base address and stop it afterwards.

    ``settings`` are more PATRON_* variables (e.g. ``{"PORTAL_SESSION_MINUTES": "1440"}``);
    ``log`` names a file in the temporary directory that receives the server's stderr (default:
    discarded)."""
    env = {
        **os.environ,
        "PATRON_DATABASE_URL": url,
        "PATRON_ENV": "production",
        "PATRON_SCHEDULER": "false",
        "PATRON_LOG_LEVEL": "WARNING",
        **({"PATRON_BENCH_ENDPOINTS": "1"} if bench_endpoints else {}),
        **{f"PATRON_{k.upper()}": v for k, v in keys.items()},
        **{f"PATRON_{k.upper()}": v for k, v in (settings or {}).items()},
    }
    command = [sys.executable, "-m", "patron.cli", "serve", "--port", str(port)]
    command += ["--workers", str(workers), "--no-migrate"]
    log_path = Path(tempfile.gettempdir()) / log if log else None
    stderr = log_path.open("w") if log_path else subprocess.DEVNULL
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120  # a busy machine starts workers slowly
        while True:
            try:
                urllib.request.urlopen(f"{base}/health", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    sys.exit(f"the server did not start{f'; see {log_path}' if log_path else ''}")
                time.sleep(0.5)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()  # workers stuck in a graceful shutdown
            server.wait()
        if log_path:
            stderr.close()  # type: ignore[union-attr]


@contextmanager
def timed(results: dict[str, float], key: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    results[key] = round(time.perf_counter() - start, 3)


# ---- the recommended PostgreSQL settings (docs/operations.md) --------------------------------

#: Server settings for a Patron database server (16 GB RAM, SSD). They need the server's
#: configuration (postgresql.conf / ALTER SYSTEM, shared_buffers a restart), so a benchmark on a
#: shared server only reports them next to the values the server has.
SERVER_SETTINGS = {
    "shared_buffers": "4GB",
    "effective_cache_size": "12GB",
    "max_wal_size": "8GB",
    "min_wal_size": "1GB",
    "checkpoint_timeout": "15min",
    "checkpoint_completion_target": "0.9",
    "wal_compression": "on",
    "autovacuum_max_workers": "4",
    "autovacuum_naptime": "15s",
}
#: Settings a database may carry itself (ALTER DATABASE ... SET), applied by the benchmarks.
DATABASE_SETTINGS = {
    "work_mem": "64MB",
    "maintenance_work_mem": "1GB",
    "random_page_cost": "1.1",
    "effective_io_concurrency": "200",
    "jit": "off",
}
#: Autovacuum of the ledger's hot tables: vacuum and analyze after a small share of changes
#: (the default 20 % of 10M lots is 2M dead rows before a vacuum), with a higher cost limit.
LEDGER_TABLES = (
    "points_accounts",
    "points_lots",
    "points_postings",
    "points_allocations",
    "growth_accounts",
    "growth_postings",
    "orders",
    "order_lines",
    "webhook_events",
    "webhook_deliveries",
)
TABLE_SETTINGS = {
    "autovacuum_vacuum_scale_factor": "0.02",
    "autovacuum_analyze_scale_factor": "0.01",
    "autovacuum_vacuum_insert_scale_factor": "0.05",
    "autovacuum_vacuum_cost_limit": "2000",
}
#: accounts and lots are updated in place on every order: room on the page keeps the updates HOT
FILLFACTOR = {"points_accounts": 80, "points_lots": 90, "growth_accounts": 80}


def apply_recommended(url: str) -> dict[str, dict[str, str]]:
    """Apply the database and table settings to a scratch database; return the server settings
    as the server has them next to the recommended values (they are not changed here)."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        name = conn.execute(text("SELECT current_database()")).scalar_one()
        for key, value in DATABASE_SETTINGS.items():
            conn.execute(text(f"ALTER DATABASE \"{name}\" SET {key} = '{value}'"))
        options = ", ".join(f"{k} = {v}" for k, v in TABLE_SETTINGS.items())
        for table in LEDGER_TABLES:
            extra = f", fillfactor = {FILLFACTOR[table]}" if table in FILLFACTOR else ""
            conn.execute(text(f"ALTER TABLE {table} SET ({options}{extra})"))
        server = {
            key: {
                "server": conn.execute(text(f"SHOW {key}")).scalar_one(),
                "recommended": value,
            }
            for key, value in SERVER_SETTINGS.items()
        }
    engine.dispose()
    return server
