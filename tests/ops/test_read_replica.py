"""Analytics read a streaming replica when PATRON_READ_DATABASE_URL is set: a private primary
and hot standby are started once for this module, each test works in a database of its own,
and pausing the standby's replay makes a row exist on the primary only — whatever reads the
replica does not see it until replay resumes and catches up."""

from __future__ import annotations

import csv
import io
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text
from typer.testing import CliRunner

from patron.analytics import jobs as analytics_jobs
from patron.analytics import scores
from patron.analytics.models import MemberScore
from patron.app import create_app
from patron.auth.principal import Principal
from patron.cli import app as cli
from patron.config import get_settings
from patron.db import Database, normalize_url
from patron.jobs.tasks import default_tasks
from patron.ledger import flows
from patron.ledger import service as ledger
from patron.migrate import upgrade
from patron.ops.replica import snapshot
from tests.analytics.history import add_members, add_orders
from tests.conftest import START, make_settings
from tests.ops import pgcluster
from tests.web.test_pages import _sign_in, _staff

JOINED = START - timedelta(days=40)  # a member before the dashboard's "today"
SH = ZoneInfo("Asia/Shanghai")

pytestmark = pytest.mark.skipif(
    pgcluster.unavailable_reason() is not None, reason=str(pgcluster.unavailable_reason())
)


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[pgcluster.Cluster, pgcluster.Cluster]]:
    """One primary and its hot standby for every test here (starting them takes seconds)."""
    with (
        pgcluster.private_cluster() as primary,
        pgcluster.streaming_replica(primary) as standby,
    ):
        yield primary, standby


def _database(cluster: tuple[pgcluster.Cluster, pgcluster.Cluster]) -> tuple[str, str]:
    """A migrated database of the test's own on the primary, and its URL on the standby."""
    primary, standby = cluster
    name = f"patron_{uuid.uuid4().hex[:8]}"
    admin = create_engine(normalize_url(primary.url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    upgrade(primary.url_for(name))
    return primary.url_for(name), standby.url_for(name)


def _caught_up(primary_url: str, replica_url: str) -> None:
    with create_engine(normalize_url(primary_url)).connect() as p:
        lsn = p.execute(text("SELECT pg_current_wal_lsn()")).scalar_one()
    engine = create_engine(normalize_url(replica_url))
    deadline = time.monotonic() + 60
    with engine.connect() as r:
        while time.monotonic() < deadline:
            behind = r.execute(
                text("SELECT pg_wal_lsn_diff(:lsn, pg_last_wal_replay_lsn()) > 0"), {"lsn": lsn}
            ).scalar_one()
            if not behind:
                break
            r.rollback()
            time.sleep(0.2)
        else:
            pytest.fail("the standby did not catch up within a minute")
    engine.dispose()


@contextmanager
def _replay_paused(replica_url: str) -> Iterator[None]:
    """The standby stops applying WAL until the block ends (resumed even if the test fails,
    so the next test's database reaches the standby)."""
    engine = create_engine(normalize_url(replica_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as r:
        r.execute(text("SELECT pg_wal_replay_pause()"))
        deadline = time.monotonic() + 60
        while r.execute(text("SELECT pg_get_wal_replay_pause_state()")).scalar_one() != "paused":
            assert time.monotonic() < deadline, "replay did not pause"
            time.sleep(0.05)
        try:
            yield
        finally:
            r.execute(text("SELECT pg_wal_replay_resume()"))
    engine.dispose()


def _members_total(html: str) -> int:
    found = re.search(r'data-kpi="members_total">.*?class="value">([\d,]+)<', html, re.S)
    assert found, html[:500]
    return int(found.group(1).replace(",", ""))


def _add_member(db: Database) -> None:
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO members (member_no, phone_enc, phone_index, member_type, status, "
                "registration_channel, created_at, updated_at) VALUES (:no, :enc, :ix, 'regular', "
                "'active', 'web', :at, :at)"
            ),
            {"no": str(uuid.uuid4().int)[:10], "enc": b"x", "ix": uuid.uuid4().hex, "at": JOINED},
        )


def test_the_dashboard_reads_the_replica(cluster, clock):
    primary_url, replica_url = _database(cluster)
    db = Database(primary_url)
    _add_member(db)
    app = create_app(make_settings(db, read_database_url=replica_url), db, clock)
    user = _staff(db, clock, "admin")
    _caught_up(primary_url, replica_url)
    with TestClient(app) as client:
        client.headers["Accept-Language"] = "en"
        assert _sign_in(client, user).status_code == 303
        assert _members_total(client.get("/console/").text) == 1
        with _replay_paused(replica_url):
            # The primary gains a member the replica does not show yet.
            _add_member(db)
            assert _members_total(client.get("/console/").text) == 1
        _caught_up(primary_url, replica_url)
        assert _members_total(client.get("/console/").text) == 2
    app.state.read_db.dispose()
    db.dispose()


# --- the scores job, evaluate, liability and the exports --------------------------------------

OLD, NEW = 1, 2  # members: OLD is on both servers, NEW only on the primary while replay pauses


def _history(db: Database, member_id: int) -> None:
    """Three purchases long before today and 100 points × the member's id."""
    with db.unit_of_work() as s:
        add_members(s, 1, start_id=member_id, at=START - timedelta(days=800))
        add_orders(
            s,
            [(member_id, (START - timedelta(days=d)).date(), 5000) for d in (600, 450, 300)],
        )
        ctx = ledger.Ctx(Principal.system("tests"), START - timedelta(days=10), SH)
        flows.earn(
            s, ctx, member_id, points=100 * member_id, source_type="test", source_id=f"m{member_id}"
        )


def _scored(db: Database) -> set[int]:
    with db.unit_of_work() as s:
        return set(s.scalars(select(MemberScore.member_id)))


def _cli(runner: CliRunner, *args: str) -> str:
    r = runner.invoke(cli, list(args), terminal_width=200)
    assert r.exit_code == 0, r.output
    return r.output


def _outstanding(output: str) -> int:
    found = re.search(r"outstanding ([\d,]+) points", output)
    assert found, output
    return int(found.group(1).replace(",", ""))


def _csv_rows(client: TestClient, report: str) -> list[list[str]]:
    r = client.get(f"/console/analytics/export/{report}?format=csv")
    assert r.status_code == 200, r.text[:300]
    return list(csv.reader(io.StringIO(r.text.lstrip("\ufeff"))))[1:]


def _page_outstanding(client: TestClient) -> int:
    html = client.get("/console/analytics/liability").text
    found = re.search(r'data-value="outstanding">([\d,]+)<', html)
    assert found, html[:500]
    return int(found.group(1).replace(",", ""))


@pytest.fixture
def cli_env(monkeypatch, tmp_path):
    def use(primary_url: str, replica_url: str) -> CliRunner:
        monkeypatch.setenv("PATRON_DATABASE_URL", primary_url)
        monkeypatch.setenv("PATRON_READ_DATABASE_URL", replica_url)
        monkeypatch.setenv("PATRON_KEY_FILE", str(tmp_path / "keys.json"))
        monkeypatch.setenv("PATRON_ENV", "demo")
        get_settings.cache_clear()
        return CliRunner()

    yield use
    get_settings.cache_clear()


def test_scores_evaluate_liability_and_exports_read_the_replica(cluster, clock, cli_env):
    primary_url, replica_url = _database(cluster)
    db = Database(primary_url)
    replica = Database(replica_url)
    _history(db, OLD)
    settings = make_settings(db, read_database_url=replica_url)
    app = create_app(settings, db, clock)
    user = _staff(db, clock, "admin")
    runner = cli_env(primary_url, replica_url)
    (task,) = [
        t for t in default_tasks(db, app.state.cipher, clock, settings, replica) if
        t.name == "member_scores"
    ]  # fmt: skip
    _caught_up(primary_url, replica_url)
    with TestClient(app) as client:
        client.headers["Accept-Language"] = "en"
        assert _sign_in(client, user).status_code == 303
        with _replay_paused(replica_url):
            _history(db, NEW)  # orders and points on the primary only

            # The scheduler's job and `patron jobs run scores` read the replica: NEW has
            # orders on the primary but is not scored; the scores are written to the primary.
            task.run()
            assert _scored(db) == {OLD}
            _cli(runner, "jobs", "run", "scores")
            assert _scored(db) == {OLD}
            with db.unit_of_work() as s, snapshot(replica) as reads:
                assert scores.evaluate(s, now=clock.now(), tz=SH, reads=reads).members == 1
            # The liability (command and console export) counts OLD's points only.
            assert _outstanding(_cli(runner, "analytics", "liability")) == 100
            assert sum(int(r[1]) for r in _csv_rows(client, "liability-tiers")) == 100
            # The scores export reads the replica, where the job's rows have not arrived.
            assert _csv_rows(client, "scores") == []
            # So do the console's liability and member scores pages (no run replayed yet).
            assert _page_outstanding(client) == 100
            assert 'data-state="never-scored"' in client.get("/console/analytics").text

        _caught_up(primary_url, replica_url)
        assert [r[0] for r in _csv_rows(client, "scores")] == [f"T{OLD:09d}"]
        _cli(runner, "jobs", "run", "scores")
        assert _scored(db) == {OLD, NEW}
        assert _outstanding(_cli(runner, "analytics", "liability")) == 300
        assert sum(int(r[1]) for r in _csv_rows(client, "liability-tiers")) == 300
        assert _page_outstanding(client) == 300
        assert 'data-state="never-scored"' not in client.get("/console/analytics").text
        # Without a replica the job reads the primary it writes to.
        analytics_jobs.run_scores(db, datetime.now(UTC), SH)
        assert _scored(db) == {OLD, NEW}
    app.state.read_db.dispose()
    replica.dispose()
    db.dispose()
