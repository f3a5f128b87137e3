"""`patron jobs scheduler`: the embedded scheduler as a process of its own, for deployments that
switch it off on the servers (the compose file's `jobs` service runs it)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from patron.migrate import upgrade
from tests.conftest import TEST_KEYS

ROOT = Path(__file__).resolve().parents[2]


def _start(url: str, tmp_path: Path, name: str) -> tuple[subprocess.Popen[bytes], Path]:
    env = {
        **os.environ,
        "PATRON_DATABASE_URL": url,
        "PATRON_ENV": "test",
        "PATRON_LOG_LEVEL": "INFO",
        "PATRON_KEY_FILE": str(tmp_path / "keys.json"),
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH")) if p
        ),
        **{f"PATRON_{k.upper()}": v for k, v in TEST_KEYS.items()},
    }
    log = tmp_path / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "patron.cli", "jobs", "scheduler", "--retry", "1"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return proc, log


def _jobs_done(log: Path) -> set[str]:
    return set(re.findall(r"job_done\s+job=(\w+)", log.read_text()))


def _wait(cond, proc: subprocess.Popen[bytes], log: Path, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while not cond():
        assert proc.poll() is None, log.read_text()[-2000:]
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.3)


def _stop(proc: subprocess.Popen[bytes], log: Path) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert code == 0, log.read_text()[-2000:]


def test_the_scheduler_runs_jobs_on_their_intervals_and_stops_on_sigterm(tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    upgrade(url)
    proc, log = _start(url, tmp_path, "one")
    try:
        # Every task first runs within five seconds of the start.
        _wait(lambda: {"webhooks", "messages", "journeys"} <= _jobs_done(log), proc, log)
        text = log.read_text()
        assert "job_failed" not in text, text[-3000:]
        assert "scheduler:" in text and "scheduler_leading" in text
    finally:
        _stop(proc, log)


def test_a_second_scheduler_stands_by_and_takes_over_when_the_first_stops(tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    upgrade(url)
    first, first_log = _start(url, tmp_path, "first")
    second = None
    try:
        _wait(lambda: "webhooks" in _jobs_done(first_log), first, first_log)
        second, second_log = _start(url, tmp_path, "second")
        _wait(lambda: "scheduler_standing_by" in second_log.read_text(), second, second_log)
        time.sleep(6)  # every job would have run once by now in a leader
        assert _jobs_done(second_log) == set(), second_log.read_text()[-2000:]
        _stop(first, first_log)
        _wait(lambda: "webhooks" in _jobs_done(second_log), second, second_log)
        assert "scheduler_leading" in second_log.read_text()
    finally:
        if first.poll() is None:
            _stop(first, first_log)
        if second is not None:
            _stop(second, second_log)


def test_the_compose_jobs_service_runs_the_scheduler_and_the_servers_do_not():
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    services = compose["services"]
    assert services["patron"]["environment"]["PATRON_SCHEDULER"] == "false"
    jobs_sh = (ROOT / "deploy" / "jobs.sh").read_text()
    assert "patron jobs scheduler" in jobs_sh
    # The optional broker: consumers run `patron messages consume` next to a Redis service.
    assert services["senders"]["command"] == ["messages", "consume"]
    assert services["senders"]["profiles"] == services["redis"]["profiles"] == ["broker"]


def test_the_compose_file_is_valid_where_compose_is_installed(tmp_path):
    import shutil

    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.skip("docker-compose is not installed")
    # Compose v1 validates the schema; it does not know the project `name` key of v2.
    text = (ROOT / "deploy" / "compose.yaml").read_text()
    (tmp_path / "compose.yaml").write_text(
        "\n".join(line for line in text.splitlines() if not line.startswith("name:"))
    )
    (tmp_path / "patron.env").write_text((ROOT / "deploy" / "patron.env.example").read_text())
    env = {**os.environ, "POSTGRES_PASSWORD": "x", "PATRON_SITE": "members.example.com"}
    out = subprocess.run(
        [tool, "-f", str(tmp_path / "compose.yaml"), "--profile", "broker", "config"],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    config = yaml.safe_load(out.stdout)
    assert set(config["services"]) >= {"db", "migrate", "patron", "jobs", "redis", "senders"}
