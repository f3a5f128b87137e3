"""`patron doctor` names each problem of a deployment and says what to fix."""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from patron.cli import app as cli
from patron.config import Settings, generate_keys, get_settings
from patron.db import Database
from patron.ops import doctor

REAL = {k: SecretStr(v) for k, v in generate_keys().items()}
PLENTY = lambda _p: (100 * 1024**3, 10 * 1024**3, 90 * 1024**3)  # noqa: E731


def _settings(tmp_path, **over):
    values = {
        "env": "production",
        "database_url": f"sqlite:///{tmp_path / 'p.db'}",
        "backup_dir": tmp_path / "backups",
        "key_file": tmp_path / "keys.json",
        **REAL,
    }
    values.update(over)
    return Settings(**values)


def _levels(findings, check):
    return [(f.level, f.message) for f in findings if f.check == check]


def test_demo_keys_and_shared_keys_are_errors(tmp_path):
    demo = base64.b64encode(b"d" * 32).decode()
    found = doctor.check_keys(_settings(tmp_path, data_key=SecretStr(demo)))
    assert any(f.level == "error" and "not random" in f.message for f in found)
    same = _settings(tmp_path, index_key=REAL["data_key"])
    assert any("same value" in f.message for f in doctor.check_keys(same))
    assert [f.level for f in doctor.check_keys(_settings(tmp_path))] == ["ok"]


def test_missing_keys_in_production_and_a_readable_key_file(tmp_path):
    none = _settings(tmp_path, data_key=None, index_key=None, token_key=None)
    found = doctor.check_keys(none)
    assert found[0].level == "error"
    assert "patron keys generate" in found[0].fix
    keyfile = tmp_path / "keys.json"
    keyfile.write_text(json.dumps(generate_keys()))
    os.chmod(keyfile, 0o644)
    found = doctor.check_keys(none)
    assert any("read by other users" in f.message for f in found)
    assert any("chmod 600" in f.fix for f in found)


def test_unreachable_database_and_schema_behind(tmp_path):
    gone = _settings(tmp_path, database_url="postgresql://x@127.0.0.1:1/none?connect_timeout=2")
    db = Database(gone.database_url)
    found = doctor.check_database(gone, db)
    db.dispose()
    assert found[0].level == "error" and "does not answer" in found[0].message
    fresh = _settings(tmp_path)
    db = Database(fresh.database_url)
    found = doctor.check_database(fresh, db)
    db.dispose()
    assert ("error", "the database schema is behind this release") in _levels(found, "schema")
    assert any(f.level == "warning" and "SQLite" in f.message for f in found)


def test_clock_skew_against_the_database(pg_database, tmp_path):
    s = _settings(tmp_path, database_url=pg_database.url)
    now = datetime.now(UTC)
    assert _levels(doctor.check_clock(s, pg_database, now), "clock")[0][0] == "ok"
    late = doctor.check_clock(s, pg_database, now + timedelta(seconds=10))
    assert _levels(late, "clock")[0][0] == "warning"
    way_off = doctor.check_clock(s, pg_database, now - timedelta(minutes=5))
    assert _levels(way_off, "clock")[0][0] == "error"


def test_timezone_is_reported(tmp_path):
    s = _settings(tmp_path, business_timezone="Asia/Shanghai")
    db = Database(s.database_url)
    found = doctor.check_clock(s, db, datetime(2026, 3, 1, 2, tzinfo=UTC))
    db.dispose()
    assert "10:00" in _levels(found, "timezone")[0][1]


@pytest.mark.parametrize(("free_gib", "level"), [(90, "ok"), (1.5, "warning"), (0.2, "error")])
def test_disk_space(tmp_path, free_gib, level):
    usage = lambda _p: (100 * 1024**3, 0, int(free_gib * 1024**3))  # noqa: E731
    found = doctor.check_disk(_settings(tmp_path), usage)
    assert {f.level for f in found} == {level}
    assert {"backups", "database"} <= {
        w for f in found for w in ("backups", "database") if w in f.message
    }


def test_settings_sanity(tmp_path):
    from ipaddress import ip_network

    risky = _settings(
        tmp_path,
        secure_cookies=False,
        hsts=False,
        bench_endpoints=True,
        log_level="DEBUG",
        log_json=False,
        webhook_allowed_networks=[ip_network("0.0.0.0/0")],
    )
    found = doctor.check_settings(risky)
    errors = [f.message for f in found if f.level == "error"]
    warnings = [f.message for f in found if f.level == "warning"]
    assert any("SECURE_COOKIES" in m for m in errors)
    assert any("BENCH_ENDPOINTS" in m for m in errors)
    assert any("0.0.0.0/0" in m for m in errors)
    assert any("HSTS" in m for m in warnings)
    assert any("DEBUG" in m for m in warnings)
    assert any("JSON" in m for m in warnings)
    assert all(f.fix for f in found if f.level != "ok")
    assert any("demo" in f.message for f in doctor.check_settings(_settings(tmp_path, env="demo")))


def test_doctor_command_exits_1_on_errors_and_0_when_healthy(tmp_path, monkeypatch):
    for name, value in REAL.items():
        monkeypatch.setenv(f"PATRON_{name.upper()}", value.get_secret_value())
    monkeypatch.setenv("PATRON_DATABASE_URL", f"sqlite:///{tmp_path / 'p.db'}")
    monkeypatch.setenv("PATRON_BACKUP_DIR", str(tmp_path / "b"))
    monkeypatch.setenv("PATRON_ENV", "development")
    monkeypatch.setattr(doctor, "_disk_usage", PLENTY)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        r = runner.invoke(cli, ["doctor", "--json"])
        assert r.exit_code == 1, r.output
        findings = json.loads(r.output)
        assert any(f["check"] == "schema" and f["level"] == "error" for f in findings)
        assert runner.invoke(cli, ["migrate"]).exit_code == 0
        r = runner.invoke(cli, ["doctor"])
        assert r.exit_code == 0, r.output
        assert "schema is up to date" in r.output
    finally:
        get_settings.cache_clear()


def test_a_message_broker_that_does_not_answer_is_an_error(tmp_path):
    from tests.ops.server import free_port

    assert doctor.check_broker(_settings(tmp_path)) == []
    closed = _settings(tmp_path, message_broker_url=f"redis://127.0.0.1:{free_port()}/0")
    [finding] = doctor.check_broker(closed)
    assert finding.level == "error" and "PATRON_MESSAGE_BROKER_URL" in finding.fix
    redis_url = os.environ.get("PATRON_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    found = doctor.check_broker(_settings(tmp_path, message_broker_url=redis_url))
    if found[0].level == "error" and os.environ.get("PATRON_REQUIRE_REDIS") != "1":
        pytest.skip("no Redis here")
    assert [f.level for f in found] == ["ok"] and "Redis answers" in found[0].message
