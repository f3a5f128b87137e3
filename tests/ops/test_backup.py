"""Backups restore, and the drill proves it: on SQLite and on PostgreSQL, at small size."""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from patron.cli import app as cli
from patron.config import get_settings
from patron.ops import backup as ops_backup
from patron.ops import status
from tests.factories import order_body


@pytest.fixture
def history(client, shop, make_member):
    """A few members with orders, a return and a points payment."""
    members = [make_member() for _ in range(3)]
    for i, no in enumerate(members):
        r = client.post("/api/v1/orders", json=order_body(no, ext=f"B-{i}"), headers=shop)
        assert r.status_code == 201, r.text
    r = client.post(
        "/api/v1/orders/pos/B-0/returns",
        json={
            "external_id": "R-1",
            "returned_at": "2026-03-01T12:00:00+08:00",
            "lines": [{"line_no": 2, "quantity": 1}],
        },
        headers=shop,
    )
    assert r.status_code in (200, 201), r.text
    return members


def _skip_without_tools(database):
    if database.dialect == "postgresql" and shutil.which("pg_dump") is None:
        pytest.skip("pg_dump/pg_restore not installed (Debian: postgresql-client)")


def test_backup_then_drill_is_clean_and_matches_the_source(database, history, tmp_path):
    _skip_without_tools(database)
    made = ops_backup.backup(database.url, tmp_path / "b")
    assert made.size_bytes > 0
    assert ops_backup.latest_backup(tmp_path / "b") == made.path
    assert not list((tmp_path / "b").glob("*.partial"))
    report = ops_backup.drill(database.url, made.path)
    assert report.violations == []
    assert report.differences == []
    assert report.ok
    assert report.rows["members"] == (3, 3)
    assert report.rows["orders"] == (3, 3)
    assert report.totals["points available"][0] > 0
    assert report.total_seconds >= report.restore_seconds


def test_the_drill_reports_rows_missing_from_the_backup(database, history, tmp_path, client, shop):
    _skip_without_tools(database)
    made = ops_backup.backup(database.url, tmp_path / "b")
    r = client.post("/api/v1/orders", json=order_body(history[1], ext="LATE"), headers=shop)
    assert r.status_code == 201
    report = ops_backup.drill(database.url, made.path)
    assert not report.ok
    assert "orders: 4 rows in the source, 3 restored" in report.differences


def test_the_drill_finds_a_corrupt_ledger_in_the_backup(database, history, tmp_path):
    _skip_without_tools(database)
    with database.engine.begin() as conn:
        conn.execute(text("UPDATE points_accounts SET available = available + 7"))
    made = ops_backup.backup(database.url, tmp_path / "b")
    report = ops_backup.drill(database.url, made.path)
    assert report.violations
    assert not report.ok


def test_restore_refuses_a_database_that_is_not_empty(database, history, tmp_path):
    _skip_without_tools(database)
    made = ops_backup.backup(database.url, tmp_path / "b")
    with pytest.raises(ops_backup.BackupError, match=r"not empty|exists"):
        ops_backup.restore(made.path, database.url)


def test_restore_refuses_the_other_engines_backup(tmp_path):
    fake = tmp_path / "patron-20260101T000000Z.dump"
    fake.write_bytes(b"PGDMP")
    with pytest.raises(ops_backup.BackupError, match="PostgreSQL backup"):
        ops_backup.restore(fake, f"sqlite:///{tmp_path / 'new.db'}")


def test_backup_restore_and_drill_commands_on_sqlite(tmp_path, monkeypatch):
    monkeypatch.setenv("PATRON_DATABASE_URL", f"sqlite:///{tmp_path / 'p.db'}")
    monkeypatch.setenv("PATRON_KEY_FILE", str(tmp_path / "keys.json"))
    monkeypatch.setenv("PATRON_ENV", "demo")
    monkeypatch.setenv("PATRON_BACKUP_DIR", str(tmp_path / "backups"))
    monkeypatch.setenv("PATRON_STATUS_DIR", str(tmp_path / "status"))
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        r = runner.invoke(cli, ["backup", "drill"])
        assert r.exit_code != 0
        assert runner.invoke(cli, ["demo", "--members", "12"]).exit_code == 0
        r = runner.invoke(cli, ["backup"])
        assert r.exit_code == 0, r.output
        assert "backup written" in r.output
        r = runner.invoke(cli, ["backup", "drill"])
        assert r.exit_code == 0, r.output
        assert '"ok": true' in r.output
        assert "total" in r.output
        drilled = status.read(tmp_path / "status", "drill")
        assert drilled is not None and drilled.ok
        assert status.read(tmp_path / "status", "backup") is not None
        latest = ops_backup.latest_backup(tmp_path / "backups")
        assert latest is not None
        r = runner.invoke(
            cli, ["restore", str(latest), "--into", f"sqlite:///{tmp_path / 'restored.db'}"]
        )
        assert r.exit_code == 0, r.output
        monkeypatch.setenv("PATRON_DATABASE_URL", f"sqlite:///{tmp_path / 'restored.db'}")
        get_settings.cache_clear()
        r = runner.invoke(cli, ["check"])
        assert r.exit_code == 0, r.output
        assert status.read(tmp_path / "status", "check") is not None
    finally:
        get_settings.cache_clear()


def test_pg_restore_sessions_sort_in_memory_and_keep_the_callers_options(
    database, history, tmp_path, monkeypatch
):
    if database.dialect != "postgresql":
        pytest.skip("pg_restore options are PostgreSQL's")
    _skip_without_tools(database)
    made = ops_backup.backup(database.url, tmp_path / "b")
    seen: list[str] = []
    real_run = ops_backup._run

    def spy(args: list[str], env: dict[str, str]) -> None:
        seen.append(env.get("PGOPTIONS", ""))
        real_run(args, env)

    monkeypatch.setenv("PGOPTIONS", "-c statement_timeout=0")
    monkeypatch.setattr(ops_backup, "_run", spy)
    with ops_backup.scratch_database(database.url) as scratch:
        ops_backup.restore(made.path, scratch)
        restored = ops_backup.Database(scratch)
        with restored.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM members")).scalar_one() == 3
            # the restore leaves planner statistics behind (a dump carries none)
            analyzed = conn.execute(
                text(
                    "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables"
                    " WHERE relname = 'points_postings'"
                )
            ).scalar_one()
            assert analyzed
        restored.dispose()
    assert seen == [
        "-c statement_timeout=0 -c maintenance_work_mem=512MB -c synchronous_commit=off"
    ]
