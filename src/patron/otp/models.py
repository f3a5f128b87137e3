from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from patron.db import Base, UTCDateTime


class OtpCode(Base):
    """One code sent to one phone. Only a keyed hash of the code is kept; the phone is its
    blind index (the same one the members table uses), never the number itself."""

    __tablename__ = "otp_codes"
    __table_args__ = (
        Index("ix_otp_codes_phone_created", "phone_index", "created_at"),
        Index("ix_otp_codes_source_created", "source_index", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    phone_index: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(16))
    code_hash: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # keyed hash of the requesting client's address (None when it is not known)
    source_index: Mapped[str | None] = mapped_column(String(64), nullable=True)


class UsedProof(Base):
    """A portal registration proof (the signed note that a phone passed its code check) that
    was spent: each proof registers or signs in once. Kept until the proof would have expired
    anyway, then pruned."""

    __tablename__ = "otp_used_proofs"
    __table_args__ = (Index("ix_otp_used_proofs_expires", "expires_at"),)

    proof_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
