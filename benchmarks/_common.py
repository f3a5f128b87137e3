"""Helpers shared by the benchmarks: a throwaway PostgreSQL database and timing."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

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
    name = f"patron_bench_{uuid.uuid4().hex[:8]}"
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
def timed(results: dict[str, float], key: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    results[key] = round(time.perf_counter() - start, 3)
