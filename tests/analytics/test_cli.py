"""`patron jobs run scores` and `patron analytics evaluate` on a SQLite file."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from patron.cli import app
from patron.config import get_settings
from patron.db import Database
from tests.analytics.history import add_members, add_orders, simulate


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("PATRON_DATABASE_URL", f"sqlite:///{tmp_path / 'p.db'}")
    monkeypatch.setenv("PATRON_KEY_FILE", str(tmp_path / "keys.json"))
    monkeypatch.setenv("PATRON_ENV", "demo")
    get_settings.cache_clear()
    yield tmp_path / "p.db"
    get_settings.cache_clear()


def test_empty_database(env):
    runner = CliRunner()
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    r = runner.invoke(app, ["analytics", "evaluate"])
    assert r.exit_code == 0, r.output
    assert "no member bought anything on or before" in r.output
    r = runner.invoke(app, ["jobs", "run", "scores"])
    assert r.exit_code == 0, r.output
    assert "no member has bought" in r.output


def test_a_history(env):
    runner = CliRunner()
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    today = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai")).date()
    db = Database(get_settings().database_url)
    with db.unit_of_work() as s:
        ids = add_members(s, 150, at=datetime.now(UTC) - timedelta(days=800))
        add_orders(s, simulate(ids, until=today))
    db.dispose()
    r = runner.invoke(app, ["jobs", "run", "scores"])
    assert r.exit_code == 0, r.output
    assert "'members': " in r.output
    r = runner.invoke(app, ["analytics", "evaluate"], terminal_width=200)
    assert r.exit_code == 0, r.output
    assert "BG/NBD" in r.output
    assert "Pareto/NBD" in r.output
    assert "repeat purchases (calibration)" in r.output
    assert "Churn warning" in r.output
    assert "baseline" in r.output
    # Exports: by member number, or pseudonymous (no member numbers, stable pseudonyms).
    plain, anon = env.parent / "plain.csv", env.parent / "anon.csv"
    assert runner.invoke(app, ["analytics", "export", str(plain)]).exit_code == 0
    r = runner.invoke(app, ["analytics", "export", str(anon), "--anonymized"])
    assert r.exit_code == 0, r.output
    plain_rows = list(csv.DictReader(plain.open()))
    anon_rows = list(csv.DictReader(anon.open()))
    assert len(plain_rows) == len(anon_rows) > 100
    assert plain_rows[0]["member_no"].startswith("T")
    assert "member_no" not in anon_rows[0]
    assert "T0" not in anon.read_text()
    assert [p["segment"] for p in plain_rows] == [a["segment"] for a in anon_rows]
    assert [p["loyalty_score"] for p in plain_rows] == [a["loyalty_score"] for a in anon_rows]
    assert all(
        p["loyalty_score"] == str(round(100 * (1 - float(p["churn_risk"])))) for p in plain_rows
    )
    runner.invoke(app, ["analytics", "export", str(plain), "--anonymized"])
    assert plain.read_text() == anon.read_text()


def test_liability_on_an_empty_database(env):
    runner = CliRunner()
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    r = runner.invoke(app, ["analytics", "liability"], terminal_width=200)
    assert r.exit_code == 0, r.output
    assert "outstanding 0 points" in r.output
    assert "No points have been issued yet" in r.output
    assert "so breakage cannot be" in r.output
    assert "redeemed" in r.output  # the monthly table is printed, with zeros
