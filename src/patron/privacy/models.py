from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from patron.db import Base, UTCDateTime


class ErasureRequest(Base):
    """A member asked to be forgotten. Recorded here for an operator; processing it (erasing
    personal data, keeping the ledger anonymised) is the privacy workflow's job."""

    __tablename__ = "erasure_requests"
    __table_args__ = (Index("ix_erasure_requests_status", "status", "requested_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | done | rejected
    channel: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(500), default="")
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    processed_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    #: the operator's note when completing or rejecting (a rejection says why)
    note: Mapped[str | None] = mapped_column(String(500), nullable=True)
