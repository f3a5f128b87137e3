"""Deterministic buckets: the same member and experiment always land in the same bucket."""

from __future__ import annotations

import hashlib
from typing import Any, Final

from sqlalchemy import BigInteger, ColumnElement, Integer, Numeric, Text, case, cast, func, literal
from sqlalchemy.dialects.postgresql import BIT

BUCKETS: Final = 10_000  # basis points: a bucket below ``share_bp`` is inside the share
_TWO_64: Final = 2**64


def bucket(experiment: str, member_id: int) -> int:
    """A stable number in ``0 .. 9999`` from the experiment's key and the member's id (SHA-256,
    so it does not depend on the process, the platform or the database)."""
    digest = hashlib.sha256(f"{experiment}:{member_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def in_share(experiment: str, member_id: int, share_bp: int) -> bool:
    return bucket(experiment, member_id) < share_bp


def bucket_sql(experiment: str, member_id: Any, dialect: str) -> ColumnElement[int]:
    """``bucket`` as a SQL expression on a member-id column, so set-based writers can hold out
    a control group without reading ids into Python. PostgreSQL computes the same SHA-256
    (its first 8 bytes as an unsigned number); SQLite calls ``bucket`` itself, registered on
    each connection as ``patron_bucket`` (``patron.db``)."""
    if dialect != "postgresql":
        return func.patron_bucket(literal(experiment), member_id)
    digest = func.sha256(
        func.convert_to(literal(f"{experiment}:").concat(cast(member_id, Text)), "UTF8")
    )
    signed = cast(
        cast(literal("x").concat(func.encode(func.substring(digest, 1, 8), "hex")), BIT(64)),
        BigInteger,
    )
    unsigned = cast(signed, Numeric) + case(
        (signed < 0, literal(_TWO_64, Numeric())), else_=literal(0, Numeric())
    )
    return cast(unsigned % BUCKETS, Integer)
