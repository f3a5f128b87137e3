"""A private, throwaway PostgreSQL cluster for tests that stop, restart or replicate the server
(the shared test server must never be touched). Runs as the ``postgres`` user when the tests
run as root, because PostgreSQL refuses to run as root."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from tests.ops.server import free_port


def _bindir() -> Path | None:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


def unavailable_reason() -> str | None:
    if _bindir() is None:
        return "PostgreSQL server binaries (initdb, pg_ctl) are not installed"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser to start PostgreSQL as another user"
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no postgres user to run the cluster"
    return None


@dataclass
class Cluster:
    datadir: Path
    port: int
    bindir: Path

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url_for(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self._run(
            "pg_ctl", "-D", str(self.datadir), "-l", str(self.datadir / "server.log"), "-w",
            "-o", f"-p {self.port} -k {self.datadir} -c listen_addresses=127.0.0.1", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.datadir), "-m", mode, "-w", "stop")


#: A throwaway cluster for tests: nothing it holds must survive a crash.
TEST_SETTINGS = {"fsync": "off", "shared_buffers": "32MB", "max_connections": "50"}


@contextmanager
def private_cluster(settings: dict[str, str] | None = None) -> Iterator[Cluster]:
    """Start a cluster configured with ``settings`` (postgresql.conf lines; the tests' by
    default) on a free port; remove it afterwards."""
    bindir = _bindir()
    assert bindir is not None
    root = Path(tempfile.mkdtemp(prefix="patron-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    cluster = Cluster(root / "data", free_port(), bindir)
    cluster._run(
        "initdb", "-D", str(cluster.datadir), "-U", "postgres", "--auth=trust", "-E", "UTF8",
        "--no-sync",
    )  # fmt: skip
    with (cluster.datadir / "postgresql.conf").open("a") as conf:
        for key, value in (TEST_SETTINGS if settings is None else settings).items():
            conf.write(f"{key} = '{value}'\n")
    cluster.start()
    try:
        yield cluster
    finally:
        with suppress(subprocess.CalledProcessError):
            cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def streaming_replica(primary: Cluster) -> Iterator[Cluster]:
    """A hot standby of ``primary`` (pg_basebackup -R), streaming its WAL."""
    root = Path(tempfile.mkdtemp(prefix="patron-pg-replica-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    replica = Cluster(root / "data", free_port(), primary.bindir)
    replica._run(
        "pg_basebackup", "-D", str(replica.datadir), "-h", "127.0.0.1", "-p", str(primary.port),
        "-U", "postgres", "-R", "-X", "stream", "--no-sync", "--checkpoint=fast",
    )  # fmt: skip  # a spread checkpoint would make it wait minutes for an idle primary
    replica.start()
    try:
        yield replica
    finally:
        with suppress(subprocess.CalledProcessError):
            replica.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
