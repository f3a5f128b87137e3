"""Member scores as CSV for analysts, streamed (a batch of rows at a time, never the whole
table in memory). The anonymised mode replaces the member number by a pseudonym (a keyed HMAC,
stable across exports made with the same keys, not reversible without them); the scores carry
no contact data in either mode. Beside the stored columns each row carries the loyalty score,
derived from the churn risk (``churn.loyalty_score``), right after it."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from patron.analytics import rfm
from patron.analytics.churn import loyalty_score
from patron.analytics.models import MemberScore
from patron.members.models import Member

#: The stored columns read from ``member_scores``.
STORED = (
    "as_of",
    "recency_days",
    "purchase_days",
    "monetary_fen",
    "r_score",
    "f_score",
    "m_score",
    "segment",
    "p_alive",
    "expected_purchases",
    "clv_fen",
    "churn_risk",
    "next_purchase_days",
)
_RISK = STORED.index("churn_risk") + 1
#: The exported columns after the member's identifier.
COLUMNS = (*STORED[:_RISK], "loyalty_score", *STORED[_RISK:])


def pseudonym(key: bytes, member_no: str) -> str:
    return hmac.new(key, f"scores-export\x00{member_no}".encode(), hashlib.sha256).hexdigest()[:20]


def _query(batch: int) -> Select[Any]:
    return (
        select(Member.member_no, *(getattr(MemberScore, c) for c in STORED))
        .join(Member, Member.id == MemberScore.member_id)
        .order_by(MemberScore.member_id)
        .execution_options(yield_per=batch)
    )


def _with_loyalty(stored: Sequence[Any]) -> list[Any]:
    """The stored values in ``STORED`` order with the loyalty score after the churn risk."""
    values = list(stored)
    values.insert(_RISK, loyalty_score(values[_RISK - 1]))
    return values


def scores_csv(session: Session, *, key: bytes | None, batch: int = 5000) -> Iterator[str]:
    """CSV text chunks; ``key`` set means anonymised (a ``pseudonym`` column instead of
    ``member_no``)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("pseudonym" if key is not None else "member_no", *COLUMNS))
    for part in session.execute(_query(batch)).partitions():
        for row in part:
            ident = pseudonym(key, row[0]) if key is not None else row[0]
            writer.writerow((ident, *("" if v is None else v for v in _with_loyalty(row[1:]))))
        yield out.getvalue()
        out.seek(0)
        out.truncate()
    yield out.getvalue()


def scores_batches(
    session: Session, *, key: bytes | None, batch: int = 5000, locale: str = "en"
) -> Iterator[list[list[object]]]:
    """Rows of the member scores a batch at a time: the member number (or its pseudonym when
    ``key`` is set), every column, and the segment's name in the viewer's language."""
    zh = locale.startswith("zh")
    segment = COLUMNS.index("segment") + 1
    for part in session.execute(_query(batch)).partitions():
        rows: list[list[object]] = []
        for row in part:
            values: list[object] = [
                "" if v is None else v for v in (row[0], *_with_loyalty(row[1:]))
            ]
            values[0] = pseudonym(key, row[0]) if key is not None else row[0]
            values[1] = row[1].isoformat()
            names = rfm.SEGMENTS.get(str(values[segment]))
            values[segment] = names[1 if zh else 0] if names else values[segment]
            rows.append(values)
        yield rows
