"""Deterministic buckets: the same member and experiment always land in the same bucket."""

from __future__ import annotations

import hashlib
from typing import Final

BUCKETS: Final = 10_000  # basis points: a bucket below ``share_bp`` is inside the share


def bucket(experiment: str, member_id: int) -> int:
    """A stable number in ``0 .. 9999`` from the experiment's key and the member's id (SHA-256,
    so it does not depend on the process, the platform or the database)."""
    digest = hashlib.sha256(f"{experiment}:{member_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def in_share(experiment: str, member_id: int, share_bp: int) -> bool:
    return bucket(experiment, member_id) < share_bp
