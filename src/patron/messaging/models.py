from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from patron.db import Base, JSONType, UTCDateTime

BigId = BigInteger().with_variant(Integer, "sqlite")


class MessageTemplate(Base):
    """A message with variables, in zh-CN and/or English. ``provider_codes`` names the
    template registered with a provider that needs one (Aliyun SMS, WeChat)."""

    __tablename__ = "message_templates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    #: {"zh-CN": {"subject": "...", "body": "..."}, "en": {...}}
    texts: Mapped[dict[str, Any]] = mapped_column(JSONType)
    provider_codes: Mapped[dict[str, Any]] = mapped_column(JSONType)
    variables: Mapped[list[str]] = mapped_column(JSONType)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MemberAddress(Base):
    """Where a member is reached on a channel that is not a phone or email: a WeChat openid,
    an app's device or installation id."""

    __tablename__ = "member_addresses"
    __table_args__ = (UniqueConstraint("member_id", "channel"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Message(Base):
    """One message to one member: the durable queue row and then its record.

    status: queued → sending → sent → delivered | failed; queued → dead after the last attempt;
    suppressed (no consent or no way to reach the member at send time); dropped (over a cap with
    the drop policy). ``dedupe_key`` makes enqueueing idempotent (a journey step, a campaign)."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("dedupe_key"),
        Index("ix_messages_due", "status", "next_attempt_at"),
        Index("ix_messages_member_sent", "member_id", "sent_at"),
        Index("ix_messages_source", "source_kind", "source_code"),
        Index("ix_messages_provider", "provider_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    template_code: Mapped[str] = mapped_column(String(40))
    source_kind: Mapped[str] = mapped_column(String(16))  # journey | campaign | batch | survey
    source_code: Mapped[str] = mapped_column(String(40))
    dedupe_key: Mapped[str] = mapped_column(String(120))
    locale: Mapped[str] = mapped_column(String(8))
    subject: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[str] = mapped_column(Text)
    #: variables for providers that fill their own template (Aliyun SMS, WeChat)
    params: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    channel: Mapped[str | None] = mapped_column(String(16), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    deferrals: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(200), nullable=True)
    #: the consent the send relied on: its event id (member_consent_events) and when it was given
    consent_event_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    provider_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    #: the links of the body, in order; a short link names one by its position
    links: Mapped[list[str]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Opened: reported by the provider (a read receipt) or known from a click.
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    clicked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    clicks: Mapped[int] = mapped_column(Integer, default=0)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
