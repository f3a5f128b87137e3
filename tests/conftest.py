"""Shared fixtures. Every database test runs on SQLite and, when PATRON_TEST_DATABASE_URL is set,
on PostgreSQL too. With PATRON_REQUIRE_POSTGRES=1 an unreachable PostgreSQL fails the run."""

from __future__ import annotations

import base64
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError

from patron import models_registry
from patron.app import create_app
from patron.auth import service as auth_service
from patron.auth.principal import Principal
from patron.config import Settings
from patron.db import Database, normalize_url
from patron.kit.clock import FrozenClock
from patron.migrate import upgrade

models_registry.load_all()

# Staff passwords are hashed at production strength (~0.2-0.4 s a hash here) and tests create
# hundreds of staff users; the tests' hashes use the same algorithm at its lowest cost.
auth_service._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)

# Tests never depend on timing: on a busy machine Hypothesis' own clocks (the per-example
# deadline, the "generation is slow" check) would fail correct code. Explicit settings on a test
# still win over the profile.
hypothesis_settings.register_profile(
    "patron",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
hypothesis_settings.load_profile("patron")


@pytest.fixture(autouse=True)
def _no_metrics_dir_between_tests() -> Iterator[None]:
    """`patron serve --workers N` points prometheus-client at a shared directory through the
    environment; a test that runs it must not switch later tests to that (deleted) directory."""
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    yield
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)


PG_URL = os.environ.get("PATRON_TEST_DATABASE_URL")
REQUIRE_PG = os.environ.get("PATRON_REQUIRE_POSTGRES") == "1"
START = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
TEST_KEYS = {
    "data_key": base64.b64encode(b"d" * 32).decode(),
    "index_key": base64.b64encode(b"i" * 32).decode(),
    "token_key": base64.b64encode(b"t" * 32).decode(),
}


class TestDatabase(Database):
    """A Database that can be put back to the freshly migrated, empty state."""

    __test__ = False

    def __init__(self, url: str, reset_fn: Callable[[TestDatabase], None]) -> None:
        super().__init__(url)
        self._reset_fn = reset_fn

    def reset(self) -> None:
        self._reset_fn(self)


# ---- SQLite: migrate a template file once, copy it per test ---------------------------------


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tmpl") / "template.db"
    upgrade(f"sqlite:///{path}")
    eng = create_engine(f"sqlite:///{path}")
    with eng.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    eng.dispose()
    return path


def _sqlite_db(template: Path, target: Path) -> TestDatabase:
    def reset(db: TestDatabase) -> None:
        db.engine.dispose()
        for suffix in ("-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(template, target)

    shutil.copyfile(template, target)
    return TestDatabase(f"sqlite:///{target}", reset)


# ---- PostgreSQL: one migrated database per test session, truncated per test ------------------


def _pg_admin_url(url: str) -> str:
    return make_url(normalize_url(url)).set(database="postgres").render_as_string(False)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str | None]:
    if not PG_URL:
        if REQUIRE_PG:
            pytest.fail("PATRON_REQUIRE_POSTGRES=1 but PATRON_TEST_DATABASE_URL is not set")
        yield None
        return
    base = make_url(normalize_url(PG_URL))
    name = f"{base.database or 'patron_test'}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(_pg_admin_url(PG_URL), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
            # Tests never need a commit to survive a crash of the test server: not waiting for
            # the WAL flush at every commit makes the PostgreSQL lane markedly faster.
            conn.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    except Exception as exc:
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL is required but unreachable: {exc}")
        admin.dispose()
        yield None
        return
    url = base.set(database=name).render_as_string(False)
    upgrade(url)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


_TABLES: dict[str, list[str]] = {}  # per database URL: the migrated tables


def _tables(db: Database) -> list[str]:
    key = db.engine.url.render_as_string(False)
    if key not in _TABLES:
        _TABLES[key] = sorted(set(inspect(db.engine).get_table_names()) - {"alembic_version"})
    return _TABLES[key]


# Sequences that have handed out a value go back to their start, as RESTART IDENTITY did.
_RESTART_SEQUENCES = """
SELECT setval(format('%I.%I', schemaname, sequencename)::regclass, start_value, false)
FROM pg_sequences WHERE schemaname = current_schema() AND last_value IS NOT NULL
"""


def _empty_all(db: Database) -> None:
    """Back to the freshly migrated, empty state. TRUNCATE of all ~100 tables costs seconds per
    test (new files for every table); a test touches a handful, so only the tables holding rows
    are emptied, with foreign-key triggers off for the delete (needs a superuser, as the test
    server's `postgres` is; otherwise every table is truncated as before). New rows may then
    fill the space of deleted ones: a test that wants rows in order says ORDER BY."""
    tables = _tables(db)
    probe = " UNION ALL ".join(f"SELECT '{t}' WHERE EXISTS (SELECT 1 FROM \"{t}\")" for t in tables)
    try:
        with db.engine.begin() as conn:
            used = list(conn.execute(text(probe)).scalars())
            if used:
                conn.execute(text("SET LOCAL session_replication_role = replica"))
                for t in used:
                    conn.execute(text(f'DELETE FROM "{t}"'))
            conn.execute(text(_RESTART_SEQUENCES))
    except ProgrammingError:  # not allowed to turn triggers off
        listed = ", ".join(f'"{t}"' for t in tables)
        with db.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {listed} RESTART IDENTITY CASCADE"))


def _pg_db(url: str) -> TestDatabase:
    db = TestDatabase(url, _empty_all)
    _empty_all(db)
    return db


# ---- the fixtures tests use ------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def database(
    request: pytest.FixtureRequest, sqlite_template: Path, tmp_path: Path
) -> Iterator[TestDatabase]:
    if request.param == "sqlite":
        db = _sqlite_db(sqlite_template, tmp_path / "patron.db")
    else:
        url = request.getfixturevalue("pg_url")
        if url is None:
            pytest.skip("PostgreSQL not configured (set PATRON_TEST_DATABASE_URL)")
        db = _pg_db(url)
    yield db
    db.dispose()


@pytest.fixture
def pg_database(pg_url: str | None) -> Iterator[TestDatabase]:
    if pg_url is None:
        pytest.skip("PostgreSQL not configured (set PATRON_TEST_DATABASE_URL)")
    db = _pg_db(pg_url)
    yield db
    db.dispose()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


def make_settings(db: Database, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "test",
        "database_url": db.url,
        "log_json": True,
        "log_level": "WARNING",
        "scheduler": False,
        **TEST_KEYS,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(database: TestDatabase) -> Settings:
    return make_settings(database)


@pytest.fixture
def app(settings: Settings, database: TestDatabase, clock: FrozenClock) -> Any:
    return create_app(settings, database, clock)


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def auth_headers(
    database: TestDatabase, app: Any, clock: FrozenClock
) -> Callable[..., dict[str, str]]:
    """``auth_headers("clerk")`` → headers of a freshly created staff user with that role."""
    made: dict[str, dict[str, str]] = {}

    def make(role: str, fresh: bool = False) -> dict[str, str]:
        """``fresh=True`` signs a new user in now (tokens expire when the clock moves on)."""
        if role in made and not fresh:
            return made[role]
        with database.unit_of_work() as session:
            user = auth_service.create_staff(
                session,
                Principal.system("tests"),
                username=f"{role}-{uuid.uuid4().hex[:6]}",
                display_name=role,
                role=role,
                password="test-password-123",
                now=clock.now(),
            )
            token = auth_service.issue_token(user, app.state.keys["token_key"], 30, clock.now())
        made[role] = {"Authorization": f"Bearer {token}"}
        return made[role]

    return make


@pytest.fixture
def api_key_headers(database: TestDatabase, clock: FrozenClock) -> Callable[..., dict[str, str]]:
    def make(*scopes: str) -> dict[str, str]:
        with database.unit_of_work() as session:
            created = auth_service.create_api_key(
                session,
                Principal.system("tests"),
                name="test",
                scopes=list(scopes),
                now=clock.now(),
            )
        return {"X-API-Key": created.secret}

    return make


@pytest.fixture
def make_member(
    client: TestClient, auth_headers: Callable[[str], dict[str, str]]
) -> Callable[..., str]:
    """Register a member through the API; returns the member number."""
    counter = iter(range(10_000))

    def make(phone: str | None = None, **fields: Any) -> str:
        n = next(counter)
        body = {"phone": phone or f"1390000{n:04d}", "channel": "web", **fields}
        resp = client.post("/api/v1/members", json=body, headers=auth_headers("admin"))
        assert resp.status_code == 201, resp.text
        return str(resp.json()["member_no"])

    return make


@pytest.fixture
def shop(client, auth_headers):
    """A store SH001, categories beauty/fresh, products BEA-1 and FRE-1; operator headers."""
    h = auth_headers("operator")
    client.put(
        "/api/v1/stores/SH001",
        json={"code": "SH001", "name": "上海店", "region": "East China"},
        headers=h,
    )
    for code in ("beauty", "fresh"):
        client.put(f"/api/v1/categories/{code}", json={"code": code, "name": code}, headers=h)
    for sku, cat, price, mp in (
        ("BEA-1", "beauty", 19900, {"gold": 17900}),
        ("FRE-1", "fresh", 1250, {}),
    ):
        r = client.put(
            f"/api/v1/products/{sku}",
            json={
                "sku": sku,
                "name": sku,
                "category_code": cat,
                "price_fen": price,
                "member_prices": mp,
            },
            headers=h,
        )
        assert r.status_code == 200, r.text
    return h
