"""Member scores as CSV for analysts, streamed (a batch of rows at a time, never the whole
table in memory). The anonymised mode replaces the member number by a pseudonym (a keyed HMAC,
stable across exports made with the same keys, not reversible without them); the scores carry
no contact data in either mode."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
from collections.abc import Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from patron.analytics import rfm
from patron.analytics.models import MemberScore
from patron.members.models import Member

COLUMNS = (
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


def pseudonym(key: bytes, member_no: str) -> str:
    return hmac.new(key, f"scores-export\x00{member_no}".encode(), hashlib.sha256).hexdigest()[:20]


def scores_csv(session: Session, *, key: bytes | None, batch: int = 5000) -> Iterator[str]:
    """CSV text chunks; ``key`` set means anonymised (a ``pseudonym`` column instead of
    ``member_no``)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("pseudonym" if key is not None else "member_no", *COLUMNS))
    stmt = (
        select(Member.member_no, *(getattr(MemberScore, c) for c in COLUMNS))
        .join(Member, Member.id == MemberScore.member_id)
        .order_by(MemberScore.member_id)
        .execution_options(yield_per=batch)
    )
    for part in session.execute(stmt).partitions():
        for row in part:
            ident = pseudonym(key, row[0]) if key is not None else row[0]
            writer.writerow((ident, *("" if v is None else v for v in row[1:])))
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
    stmt = (
        select(Member.member_no, *(getattr(MemberScore, c) for c in COLUMNS))
        .join(Member, Member.id == MemberScore.member_id)
        .order_by(MemberScore.member_id)
        .execution_options(yield_per=batch)
    )
    segment = COLUMNS.index("segment") + 1
    for part in session.execute(stmt).partitions():
        rows: list[list[object]] = []
        for row in part:
            values: list[object] = ["" if v is None else v for v in row]
            values[0] = pseudonym(key, row[0]) if key is not None else row[0]
            values[1] = row[1].isoformat()
            names = rfm.SEGMENTS.get(str(row[segment]))
            values[segment] = names[1 if zh else 0] if names else row[segment]
            rows.append(values)
        yield rows
