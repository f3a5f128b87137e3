"""The outcome of the last backup, restore drill and ``patron check`` on this host.

Each command writes one small JSON file under ``PATRON_STATUS_DIR``; ``/metrics`` reads them,
so an alert can fire when the nightly backup or check did not run or found a problem.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

KINDS = ("backup", "drill", "check")


@dataclass(frozen=True)
class RunStatus:
    kind: str
    ok: bool
    finished_at: float  # Unix time
    seconds: float
    violations: int = 0


def record(status_dir: Path, kind: str, *, ok: bool, seconds: float, violations: int = 0) -> None:
    status_dir.mkdir(parents=True, exist_ok=True)
    status = RunStatus(kind, ok, time.time(), round(seconds, 3), violations)
    tmp = status_dir / f".{kind}.json.tmp"
    tmp.write_text(json.dumps(asdict(status)))
    os.replace(tmp, status_dir / f"{kind}.json")  # readers never see half a file


def read(status_dir: Path, kind: str) -> RunStatus | None:
    try:
        raw = json.loads((status_dir / f"{kind}.json").read_text())
        return RunStatus(
            kind=kind,
            ok=bool(raw["ok"]),
            finished_at=float(raw["finished_at"]),
            seconds=float(raw["seconds"]),
            violations=int(raw.get("violations", 0)),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
