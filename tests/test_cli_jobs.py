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
    # the demo's seeded earning fraud: the risk job opens reviews for it, a rerun none
    r = runner.invoke(app, ["jobs", "run", "risk-flags"])
    assert r.exit_code == 0 and "'earning_reviews': 28" in r.output, r.output
    r = runner.invoke(app, ["jobs", "run", "risk-flags"])
    assert "'earning_reviews': 0" in r.output, r.output
    # Each run from cron is recorded under the scheduler's name for the job (/metrics, console).
    with sqlite3.connect(env) as conn:
        recorded = dict(conn.execute("SELECT job, runs_ok FROM job_runs WHERE last_ok").fetchall())
    assert recorded == {
        "expire_points": 1,
        "release_pending": 1,
        "tiers": 1,
        "points_reminders": 1,
        "webhooks": 1,
        "purge_idempotency": 1,
        "risk_flags": 2,
    }
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


def test_staff_and_api_key_commands_and_demo_rerun(env, monkeypatch):
    from fastapi.testclient import TestClient

    from patron.app import create_app

    runner = CliRunner()
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    monkeypatch.setenv("PATRON_NEW_PASSWORD", "a long passphrase")
    r = runner.invoke(app, ["staff", "create", "wang.fang", "--role", "operator"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["staff", "create", "wang.fang", "--role", "operator"])
    assert r.exit_code == 1
    assert "username_taken" in r.output
    r = runner.invoke(app, ["apikey", "create", "ERP", "--scope", "members:read"])
    assert r.exit_code == 0, r.output
    secret = next(w for w in r.output.split() if w.startswith("ptn_"))
    r = runner.invoke(app, ["apikey", "create", "bad", "--scope", "staff:admin"])
    assert r.exit_code == 1
    first = runner.invoke(app, ["demo", "--members", "15", "--no-history"])
    second = runner.invoke(app, ["demo", "--members", "15", "--no-history"])
    assert first.exit_code == second.exit_code == 0
    assert "15 new, 15 in total" in first.output
    assert "0 new, 15 in total" in second.output
    demo_key = next(w for w in second.output.split() if w.startswith("ptn_"))
    assert demo_key in first.output
    settings = get_settings().model_copy(update={"scheduler": False})
    with TestClient(create_app(settings)) as c:
        assert c.get("/api/v1/members", headers={"X-API-Key": secret}).json()["total"] == 15
        assert c.get("/api/v1/members", headers={"X-API-Key": demo_key}).status_code == 200
        token = c.post(
            "/api/v1/auth/token", json={"username": "wang.fang", "password": "a long passphrase"}
        ).json()
        assert token["role"] == "operator"


def test_serve_migrates_then_trusts_only_the_named_proxies(env, monkeypatch):
    """Behind a reverse proxy the SMS-code limits need the client's address: `patron serve`
    passes the trusted proxies to uvicorn (and migrates first)."""
    import uvicorn

    seen: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: seen.update(kwargs))
    runner = CliRunner()
    r = runner.invoke(app, ["serve", "--workers", "2", "--forwarded-allow-ips", "10.0.0.5"])
    assert r.exit_code == 0, r.output
    assert seen["forwarded_allow_ips"] == "10.0.0.5"
    assert seen["proxy_headers"] is True and seen["workers"] == 2
    with sqlite3.connect(env) as conn:  # migrated before the workers start
        assert conn.execute("SELECT count(*) FROM alembic_version").fetchone()[0] == 1
    r = runner.invoke(app, ["serve"])
    assert seen["forwarded_allow_ips"] is None  # uvicorn's default: FORWARDED_ALLOW_IPS or local


def test_a_failed_cron_run_is_recorded_and_still_fails(env, monkeypatch):
    from patron.jobs import cli as jobs_cli

    runner = CliRunner()
    assert runner.invoke(app, ["migrate"]).exit_code == 0

    def broken(*_args: object) -> object:
        raise ConnectionResetError

    monkeypatch.setattr(jobs_cli, "_run", broken)
    r = runner.invoke(app, ["jobs", "run", "alerts"])
    assert r.exit_code != 0
    assert isinstance(r.exception, ConnectionResetError)
    with sqlite3.connect(env) as conn:
        row = conn.execute(
            "SELECT last_ok, last_error, runs_failed, every_seconds FROM job_runs"
            " WHERE job = 'analytics_alerts'"
        ).fetchone()
    assert row == (0, "ConnectionResetError", 1, None)
