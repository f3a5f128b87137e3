"""`patron jobs run journeys|messages` on a SQLite file: a cron or a worker can run them."""

from __future__ import annotations

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
    yield
    get_settings.cache_clear()


def test_journey_and_message_jobs_run_from_the_command_line(env):
    runner = CliRunner()
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    r = runner.invoke(app, ["jobs", "run", "journeys"])
    assert r.exit_code == 0 and "entered=0" in r.output, r.output
    r = runner.invoke(app, ["jobs", "run", "messages"])
    assert r.exit_code == 0 and "sent=0" in r.output, r.output
