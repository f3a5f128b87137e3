"""`patron demo`, `patron check` and `patron jobs run` end to end on a SQLite file."""

from __future__ import annotations

import sqlite3

import pytest
from typer.testing import CliRunner

from patron.cli import app
from patron.config import get_settings


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("PATRON_DATABASE_URL", f"sqlite:///{tmp_path / 'p.db'}")
    monkeypatch.setenv("PATRON_KEY_FILE", str(tmp_path / "keys.json"))
    monkeypatch.setenv("PATRON_ENV", "demo")
    get_settings.cache_clear()
    yield tmp_path / "p.db"
    get_settings.cache_clear()


def test_demo_history_check_and_jobs(env):
    runner = CliRunner()
    r = runner.invoke(app, ["demo", "--members", "25"])
    assert r.exit_code == 0, r.output
    assert "Orders:" in r.output
    r = runner.invoke(app, ["check"])
    assert r.exit_code == 0, r.output
    assert "every invariant holds" in r.output
    for job in ("expire", "release", "tiers", "reminders", "webhooks", "purge-idempotency"):
        r = runner.invoke(app, ["jobs", "run", job])
        assert r.exit_code == 0, (job, r.output)
    # Tamper with a cached balance: the reconciliation names the violation and fails.
    with sqlite3.connect(env) as conn:
        conn.execute("UPDATE points_accounts SET available = available + 7 WHERE member_id = 1")
    r = runner.invoke(app, ["check"])
    assert r.exit_code == 1
    assert "violation" in r.output


def test_commands_refuse_an_unmigrated_database(env):
    r = CliRunner().invoke(app, ["check"])
    assert r.exit_code == 2
    assert "patron migrate" in r.output
