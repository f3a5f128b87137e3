from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from patron.db import Base, UTCDateTime


class Member(Base):
    __tablename__ = "members"
    __table_args__ = (
        # name then id: the list sorted by name, and its export's seeks, read it in order
        Index("ix_members_name_id", "name", "id"),
        Index("ix_members_email_index", "email_index"),
        Index("ix_members_created_at", "created_at"),
        # Covers the dashboard's member counts and registrations per day (no row lookups).
        Index("ix_members_created_status", "created_at", "status"),
        Index("ix_members_registration_store", "registration_store_code"),
        # PostgreSQL also has ix_members_name_pattern (text_pattern_ops) for name prefixes;
        # migration 0008 creates it there only.
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_no: Mapped[str] = mapped_column(String(16), unique=True)
    # Personal data at rest: AES-GCM ciphertext + keyed blind index for exact lookup.
    phone_enc: Mapped[bytes] = mapped_column(LargeBinary)
    phone_index: Mapped[str] = mapped_column(String(64), unique=True)
    email_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    email_index: Mapped[str | None] = mapped_column(String(64), nullable=True)
    name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    birthday: Mapped[date | None] = mapped_column(Date, nullable=True)
    gender: Mapped[str | None] = mapped_column(String(16), nullable=True)
    city: Mapped[str | None] = mapped_column(String(64), nullable=True)
    region: Mapped[str | None] = mapped_column(String(64), nullable=True)
    preferred_channel: Mapped[str | None] = mapped_column(String(16), nullable=True)
    member_type: Mapped[str] = mapped_column(String(16), default="regular")
    status: Mapped[str] = mapped_column(String(16), default="active")
    registration_channel: Mapped[str] = mapped_column(String(16))
    registration_store_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    referrer_staff_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id"), nullable=True
    )
    referrer_member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Portal sessions issued before this instant are refused (sign-out, phone change).
    sessions_valid_after: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    # Never loaded behind a query's back: ``members.service.consents_of`` / ``tags_of`` read
    # them when a view needs them (a write such as an order never does).
    consents: Mapped[list[MemberConsent]] = relationship(
        back_populates="member", order_by="MemberConsent.channel", lazy="raise"
    )
    tags: Mapped[list[Tag]] = relationship(
        secondary="member_tags", order_by="Tag.name", lazy="raise", viewonly=True
    )


class MemberConsent(Base):
    """Current marketing consent per channel; every change is also an event below."""

    __tablename__ = "member_consents"
    __table_args__ = (UniqueConstraint("member_id", "channel"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    granted: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String(32))

    member: Mapped[Member] = relationship(back_populates="consents", lazy="raise")


class ConsentEvent(Base):
    __tablename__ = "member_consent_events"
    __table_args__ = (Index("ix_member_consent_events_member", "member_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    granted: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String(32))


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="manual")  # manual | rule
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MemberTag(Base):
    __tablename__ = "member_tags"

    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(120))
