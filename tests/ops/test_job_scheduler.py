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

import yaml

from patron.migrate import upgrade
from tests.conftest import TEST_KEYS

ROOT = Path(__file__).resolve().parents[2]


def test_the_scheduler_runs_jobs_on_their_intervals_and_stops_on_sigterm(tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    upgrade(url)
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
    log = tmp_path / "scheduler.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "patron.cli", "jobs", "scheduler"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        done: set[str] = set()
        deadline = time.monotonic() + 90
        # Every task first runs within five seconds of the start.
        while time.monotonic() < deadline and not {"webhooks", "messages", "journeys"} <= done:
            assert proc.poll() is None, log.read_text()[-2000:]
            done = set(re.findall(r"job_done\s+job=(\w+)", log.read_text()))
            time.sleep(0.5)
        assert {"webhooks", "messages", "journeys"} <= done, log.read_text()[-3000:]
        text = log.read_text()
        assert "job_failed" not in text, text[-3000:]
        assert "scheduler:" in text and "messages" in text
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert code == 0, log.read_text()[-2000:]


def test_the_compose_jobs_service_runs_the_scheduler_and_the_servers_do_not():
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    services = compose["services"]
    assert services["patron"]["environment"]["PATRON_SCHEDULER"] == "false"
    jobs_sh = (ROOT / "deploy" / "jobs.sh").read_text()
    assert "patron jobs scheduler" in jobs_sh
    # The optional broker: consumers run `patron messages consume` next to a Redis service.
    assert services["senders"]["command"] == ["messages", "consume"]
    assert services["senders"]["profiles"] == services["redis"]["profiles"] == ["broker"]
