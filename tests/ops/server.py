"""Run `patron serve` as a real process for the failure tests (kill -9, SIGTERM)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import TEST_KEYS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start(database_url: str, workdir: Path, *args: str) -> Server:
    port = free_port()
    env = {
        **os.environ,
        "PATRON_DATABASE_URL": database_url,
        "PATRON_ENV": "test",
        "PATRON_SCHEDULER": "false",
        "PATRON_LOG_LEVEL": "WARNING",
        "PATRON_STATUS_DIR": str(workdir / "status"),
        "PATRON_KEY_FILE": str(workdir / "keys.json"),
        **{f"PATRON_{k.upper()}": v for k, v in TEST_KEYS.items()},
    }
    src = str(Path(__file__).resolve().parents[2] / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    log = workdir / f"serve-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "patron.cli",
                "serve",
                "--port",
                str(port),
                "--no-migrate",
                *args,
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: its workers go with it (kill_all)
        )
    server = Server(proc, port, log)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"patron serve exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{server.base}/health/live", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    kill_all(server)
    raise RuntimeError(f"patron serve did not start: {log.read_text()[-2000:]}")


@contextmanager
def serving(database_url: str, workdir: Path, *args: str) -> Iterator[Server]:
    server = start(database_url, workdir, *args)
    try:
        yield server
    finally:
        kill_all(server)
        server.proc.wait(30)


def kill_all(server: Server) -> None:
    """kill -9 of the server and its worker processes, as a supervisor stops a service; a
    worker left behind would go on serving on the port after its master died."""
    with suppress(ProcessLookupError):
        os.killpg(server.proc.pid, signal.SIGKILL)
