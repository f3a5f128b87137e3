"""A small in-process scheduler for the embedded mode (one ``patron serve`` process).

Each task is an idempotent job function, so running it late, twice, or from several processes
is harmless; on PostgreSQL the delivery job claims rows with SKIP LOCKED. Of several processes
only the one holding the scheduler's lock runs the jobs (``leader.py``). ``patron jobs
scheduler`` runs it apart from the servers; ``patron jobs run`` runs one job from cron.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from patron.db import Database, utcnow
from patron.jobs import runs
from patron.jobs.leader import Leader
from patron.observability import get_logger

log = get_logger("patron.jobs")


@dataclass
class Task:
    name: str
    every_seconds: float
    run: Callable[[], object]
    next_at: float = field(default=0.0)


class Scheduler:
    """Runs due tasks every ``tick_seconds``; with a ``leader`` only while this process holds
    the scheduler's lock (jobs/leader.py), so several workers run each job once. With a
    ``db`` each run is recorded in ``job_runs`` (jobs/runs.py), where /metrics reads it."""

    def __init__(
        self,
        tasks: list[Task],
        tick_seconds: float = 1.0,
        leader: Leader | None = None,
        db: Database | None = None,
    ) -> None:
        self.tasks = tasks
        self.tick = tick_seconds
        self.leader = leader
        self.db = db
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        now = time.monotonic()
        for task in self.tasks:
            task.next_at = now + min(task.every_seconds, 5.0)
        self._thread = threading.Thread(target=self._loop, name="patron-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                # A job still runs: keep the lock (the process's end drops it) so that no other
                # process starts the jobs while this one is in one.
                return
            self._thread = None
        if self.leader is not None:
            self.leader.release()

    def run_due(self) -> list[str]:
        """Run every task that is due now; returns their names (used by tests)."""
        ran = []
        now = time.monotonic()
        for task in self.tasks:
            if task.next_at <= now:
                task.next_at = now + task.every_seconds
                started = utcnow()
                error: Exception | None = None
                try:
                    result = task.run()
                    log.info("job_done", job=task.name, result=str(result)[:200])
                except Exception as exc:  # a failing job must not stop the others
                    error = exc
                    log.error("job_failed", job=task.name, error_type=type(exc).__name__)
                if self.db is not None:
                    runs.record(
                        self.db,
                        task.name,
                        started_at=started,
                        finished_at=utcnow(),
                        error=error,
                        every_seconds=int(task.every_seconds),
                    )
                ran.append(task.name)
        return ran

    def _loop(self) -> None:
        while not self._stop.wait(self.tick):
            if self.leader is None or self.leader.hold():
                self.run_due()
