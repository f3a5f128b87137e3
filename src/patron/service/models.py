from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from patron.db import Base, JSONType, UTCDateTime

BigId = BigInteger().with_variant(Integer, "sqlite")


class Ticket(Base):
    """A member's question or complaint, opened by the member (portal), a clerk or an operator.
    ``response_due_at`` is fixed when it opens (the SLA target of its category, tier and
    priority); the breach job stamps ``breached_at`` once when it passes unanswered."""

    __tablename__ = "service_tickets"
    __table_args__ = (
        Index("ix_service_tickets_queue", "status", "queue", "response_due_at"),
        Index("ix_service_tickets_member", "member_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_no: Mapped[str] = mapped_column(String(16), unique=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    category: Mapped[str] = mapped_column(String(24))
    priority: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(16), default="open")
    channel: Mapped[str] = mapped_column(String(12))
    queue: Mapped[str] = mapped_column(String(12))
    tier_code: Mapped[str] = mapped_column(String(32))
    store_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    assignee: Mapped[str | None] = mapped_column(String(64), nullable=True)  # staff username
    opened_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    response_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    resolution: Mapped[str | None] = mapped_column(Text, nullable=True)
    # A missing-points dispute: the order it is about, and the correction requested for it
    # through the adjustment (approval) flow when it was resolved.
    order_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("orders.id"), nullable=True)
    adjustment_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("points_adjustments.id"), nullable=True
    )


class TicketEvent(Base):
    """The ticket's timeline, append-only: opened, replies, assignment, breach, resolution."""

    __tablename__ = "service_ticket_events"
    __table_args__ = (Index("ix_service_ticket_events_ticket", "ticket_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("service_tickets.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(24))
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_label: Mapped[str] = mapped_column(String(120))
    body: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class Survey(Base):
    """A satisfaction answer: after a resolved ticket (``ticket_id``) or a scheduled NPS
    survey. The member's tier and store are copied so NPS per tier and store stays as it was."""

    __tablename__ = "service_surveys"
    __table_args__ = (Index("ix_service_surveys_at", "answered_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("service_tickets.id"), nullable=True, unique=True
    )
    kind: Mapped[str] = mapped_column(String(12))  # ticket | scheduled
    nps: Mapped[int] = mapped_column(Integer)  # 0–10: how likely to recommend us
    satisfaction: Mapped[int | None] = mapped_column(Integer, nullable=True)  # 1–5
    comment: Mapped[str] = mapped_column(String(500), default="")
    tier_code: Mapped[str] = mapped_column(String(32))
    store_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    answered_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Article(Base):
    """A knowledge-base answer in one language (``zh_CN`` or ``en``)."""

    __tablename__ = "kb_articles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64))
    locale: Mapped[str] = mapped_column(String(8))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    keywords: Mapped[str] = mapped_column(String(300), default="")
    published: Mapped[bool] = mapped_column(default=True)
    updated_by: Mapped[str] = mapped_column(String(120))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("uq_kb_articles_slug_locale", "slug", "locale", unique=True),)
