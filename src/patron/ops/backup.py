"""Backups, restores and the restore drill.

PostgreSQL: ``pg_dump`` in its custom format (compressed; ``pg_restore`` loads it with several
jobs in parallel). SQLite: the online backup API, which copies a consistent snapshot while the
server keeps writing. A drill restores the latest backup into a scratch database, runs every
domain's reconciliation (``patron check``) on it, and compares row counts and balance totals
with the source: a backup is only as good as the last restore that was timed and checked.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import create_engine, func, inspect, select, text
from sqlalchemy.engine import URL, make_url

from patron.db import Database, normalize_url, utcnow

PG_SUFFIX = ".dump"
#: Settings of pg_restore's own sessions: index builds sort in memory instead of on disk (the
#: default 64 MB spills every index of a large table), and no COMMIT waits for a WAL flush (a
#: restore that a crash interrupts is started again into a new database anyway).
RESTORE_OPTIONS = ("maintenance_work_mem=512MB", "synchronous_commit=off")
SQLITE_SUFFIX = ".sqlite"


class BackupError(RuntimeError):
    """A backup or restore could not be made; the message says what to do."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    seconds: float
    size_bytes: int


@dataclass
class DrillReport:
    backup: Path
    backup_taken_at: datetime
    restore_seconds: float
    check_seconds: float
    compare_seconds: float
    violations: list[str]
    rows: dict[str, tuple[int, int]]  # table -> (source, restored)
    totals: dict[str, tuple[int, int]]  # balance total -> (source, restored)
    differences: list[str] = field(default_factory=list)

    @property
    def total_seconds(self) -> float:
        return self.restore_seconds + self.check_seconds + self.compare_seconds

    @property
    def ok(self) -> bool:
        return not self.violations and not self.differences


def _url(url: str) -> URL:
    return make_url(normalize_url(url))


def _is_sqlite(url: str) -> bool:
    return _url(url).get_backend_name() == "sqlite"


def _sqlite_path(url: str) -> Path:
    database = _url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up; use a file")
    return Path(database)


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq connection string without the password, and an environment carrying it
    (a password in the arguments would show in the process list)."""
    u = _url(url)
    env = dict(os.environ)
    if u.password:
        env["PGPASSWORD"] = str(u.password)
    plain = u.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            f"{name} was not found: install the PostgreSQL client tools of the server's major "
            "version (Debian: postgresql-client)"
        )
    return found


def _run(args: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        # The tools' messages name objects, never row data; keep the last lines.
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise BackupError(f"{Path(args[0]).name} failed ({done.returncode}): {tail}")


def backup(url: str, dest_dir: Path, *, now: datetime | None = None) -> BackupResult:
    """Write one backup file into ``dest_dir`` and return it. The file appears under its final
    name only when complete, so the drill never picks up half a backup."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    stamp = (now or utcnow()).strftime("%Y%m%dT%H%M%SZ")
    suffix = SQLITE_SUFFIX if _is_sqlite(url) else PG_SUFFIX
    final = dest_dir / f"patron-{stamp}{suffix}"
    partial = final.with_name(final.name + ".partial")
    start = time.perf_counter()
    try:
        if _is_sqlite(url):
            _sqlite_copy(_sqlite_path(url), partial)
        else:
            conninfo, env = _libpq(url)
            _run([_tool("pg_dump"), "-Fc", "-Z", "6", "-f", str(partial), "-d", conninfo], env)
        os.replace(partial, final)
    finally:
        partial.unlink(missing_ok=True)
    return BackupResult(final, time.perf_counter() - start, final.stat().st_size)


def _sqlite_copy(source: Path, target: Path) -> None:
    if not source.exists():
        raise BackupError(f"no database file at {source}")
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target)
    try:
        # pages=0: one step, a consistent snapshot even while the server writes
        src.backup(dst, pages=0)
    finally:
        dst.close()
        src.close()


def latest_backup(backup_dir: Path) -> Path | None:
    found = [
        p
        for p in backup_dir.glob("patron-*")
        if p.is_file() and p.suffix in (PG_SUFFIX, SQLITE_SUFFIX)
    ]
    return max(found, key=lambda p: p.name) if found else None  # names sort by time


def taken_at(path: Path) -> datetime:
    from datetime import UTC

    stamp = path.stem.removeprefix("patron-")
    try:
        return datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def restore(path: Path, url: str, *, jobs: int = 2) -> float:
    """Load ``path`` into the (empty) database at ``url``; returns the seconds taken. Refuses
    a database that already holds Patron tables: restore into a new one, then switch."""
    if not path.is_file():
        raise BackupError(f"no backup file at {path}")
    start = time.perf_counter()
    if _is_sqlite(url):
        if path.suffix != SQLITE_SUFFIX:
            raise BackupError("this is a PostgreSQL backup; restore it into a PostgreSQL database")
        target = _sqlite_path(url)
        if target.exists() and target.stat().st_size > 0:
            raise BackupError(f"{target} exists: restore into a new file, then switch to it")
        target.parent.mkdir(parents=True, exist_ok=True)
        _sqlite_copy(path, target)
    else:
        if path.suffix != PG_SUFFIX:
            raise BackupError("this is a SQLite backup; restore it into a SQLite file")
        if _has_tables(url):
            raise BackupError(
                "the target database is not empty: create a new database (createdb), restore "
                "into it, then point PATRON_DATABASE_URL at it"
            )
        conninfo, env = _libpq(url)
        options = " ".join(f"-c {o}" for o in RESTORE_OPTIONS)
        env["PGOPTIONS"] = f"{env.get('PGOPTIONS', '')} {options}".strip()
        _run(
            [
                _tool("pg_restore"),
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                "-j",
                str(max(1, jobs)),
                "-d",
                conninfo,
                str(path),
            ],
            env,
        )
        _analyze(url)
    return time.perf_counter() - start


def _analyze(url: str) -> None:
    """Planner statistics for the restored database: a dump carries none, and until
    autovacuum gets round to every table the ledger check (and a server on the restored copy)
    would plan its joins blind."""
    engine = create_engine(normalize_url(url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("ANALYZE"))
    finally:
        engine.dispose()


def _has_tables(url: str) -> bool:
    engine = create_engine(normalize_url(url))
    try:
        return bool(inspect(engine).get_table_names())
    finally:
        engine.dispose()


@contextmanager
def scratch_database(source_url: str) -> Iterator[str]:
    """An empty database beside the source (same PostgreSQL server, or a temporary SQLite
    file), dropped afterwards."""
    if _is_sqlite(source_url):
        with tempfile.TemporaryDirectory(prefix="patron-drill-") as tmp:
            yield f"sqlite:///{Path(tmp) / 'drill.db'}"
        return
    server = _url(source_url)
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    name = f"patron_drill_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _counts(db: Database) -> tuple[dict[str, int], dict[str, int]]:
    from patron import models_registry
    from patron.db import Base
    from patron.ledger.models import GrowthAccount, PointsAccount, PointsPosting
    from patron.orders.models import Order

    models_registry.load_all()
    existing = set(inspect(db.engine).get_table_names())
    rows: dict[str, int] = {}
    with db.session() as s:
        for table in Base.metadata.sorted_tables:
            if table.name in existing:
                rows[table.name] = int(s.scalar(select(func.count()).select_from(table)) or 0)
        totals = {
            "points available": s.scalar(select(func.sum(PointsAccount.available))),
            "points pending": s.scalar(select(func.sum(PointsAccount.pending))),
            "points debt": s.scalar(select(func.sum(PointsAccount.debt))),
            "points posted": s.scalar(select(func.sum(PointsPosting.available_delta))),
            "growth": s.scalar(select(func.sum(GrowthAccount.balance))),
            "orders paid (fen)": s.scalar(select(func.sum(Order.paid_fen))),
        }
    return rows, {k: int(v or 0) for k, v in totals.items()}


def drill(
    source_url: str,
    backup_file: Path,
    *,
    jobs: int = 2,
    progress: Callable[[str], None] = lambda _step: None,
) -> DrillReport:
    """Restore ``backup_file`` into a scratch database, check it and compare it with the
    source; the scratch database is dropped afterwards."""
    from patron.checks import run_all
    from patron.migrate import pending

    with scratch_database(source_url) as scratch:
        progress("restoring")
        restore_s = restore(backup_file, scratch, jobs=jobs)
        restored = Database(scratch)
        try:
            progress("checking")
            t0 = time.perf_counter()
            if pending(scratch):
                violations = ["the restored schema is behind this release: run `patron migrate`"]
            else:
                with restored.unit_of_work() as session:
                    violations = run_all(session, now=utcnow())
            check_s = time.perf_counter() - t0
            progress("comparing with the source")
            t1 = time.perf_counter()
            source = Database(source_url)
            try:
                src_rows, src_totals = _counts(source)
            finally:
                source.dispose()
            dst_rows, dst_totals = _counts(restored)
            compare_s = time.perf_counter() - t1
        finally:
            restored.dispose()
    rows = {t: (src_rows.get(t, 0), dst_rows.get(t, 0)) for t in sorted(src_rows | dst_rows)}
    totals = {k: (src_totals[k], dst_totals[k]) for k in src_totals}
    differences = [
        f"{t}: {a} rows in the source, {b} restored" for t, (a, b) in rows.items() if a != b
    ]
    differences += [
        f"{k}: {a} in the source, {b} restored" for k, (a, b) in totals.items() if a != b
    ]
    return DrillReport(
        backup=backup_file,
        backup_taken_at=taken_at(backup_file),
        restore_seconds=restore_s,
        check_seconds=check_s,
        compare_seconds=compare_s,
        violations=violations,
        rows=rows,
        totals=totals,
        differences=differences,
    )
