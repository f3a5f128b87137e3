from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from patron.db import Base, JSONType, UTCDateTime


class Campaign(Base):
    """A campaign: schedule and audience (JSON, validated by ``campaigns.domain``), an earning
    multiplier compiled into the rules, a budget and an optional control group."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    #: draft → active ⇄ paused → ended
    status: Mapped[str] = mapped_column(String(12), default="draft")
    schedule: Mapped[dict[str, Any]] = mapped_column(JSONType)
    audience: Mapped[dict[str, Any]] = mapped_column(JSONType)
    #: earning multiplier while the schedule is on (None: the campaign gives no multiplier)
    multiplier_bp: Mapped[int | None] = mapped_column(Integer, nullable=True)
    budget_points: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    budget_fen: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    #: the usage cap in force for this campaign (copied from the settings when created)
    budget_cap_bp: Mapped[int] = mapped_column(Integer)
    #: money spent outside points (event fees waived, coupons once they exist), in fen
    other_cost_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    control_bp: Mapped[int] = mapped_column(Integer, default=0)
    experiment_key: Mapped[str] = mapped_column(String(64))
    budget_alerted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CampaignParticipation(Base):
    """A member took part (an action, an event, a referral): one row per campaign and member."""

    __tablename__ = "campaign_participations"
    __table_args__ = (
        UniqueConstraint("campaign_id", "member_id"),
        Index("ix_campaign_participations_member", "member_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    group: Mapped[str] = mapped_column(String(12))
    source: Mapped[str] = mapped_column(String(16))
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CampaignAction(Base):
    """An action that earns (share, review, survey, quiz) with its caps per member."""

    __tablename__ = "campaign_actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100))
    points: Mapped[int] = mapped_column(Integer)
    daily_cap: Mapped[int | None] = mapped_column(Integer, nullable=True)
    total_cap: Mapped[int | None] = mapped_column(Integer, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: a coupon template's code: each reward also issues one (keyed by action, member, ref)
    coupon_template: Mapped[str | None] = mapped_column(String(64), nullable=True)


class CampaignActionGrant(Base):
    """One rewarded action; (action, member, ref) is the natural key of its points."""

    __tablename__ = "campaign_action_grants"
    __table_args__ = (
        UniqueConstraint("action_id", "member_id", "ref"),
        Index("ix_campaign_action_grants_member_day", "member_id", "business_date"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    action_id: Mapped[int] = mapped_column(ForeignKey("campaign_actions.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    ref: Mapped[str] = mapped_column(String(64))
    business_date: Mapped[date] = mapped_column(Date)
    points: Mapped[int] = mapped_column(BigInteger)
    posting_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReferralCode(Base):
    """A member's referral code (the link and QR carry it)."""

    __tablename__ = "referral_codes"

    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    code: Mapped[str] = mapped_column(String(16), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Referral(Base):
    """A referee who registered with a referrer: pending → rewarded | held | refused, and a
    rewarded referral whose qualifying order was refunded → clawed_back."""

    __tablename__ = "referrals"
    __table_args__ = (
        Index("ix_referrals_referrer", "referrer_id", "status"),
        Index("ix_referrals_prefix", "phone_prefix", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    referrer_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    referee_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), unique=True
    )
    status: Mapped[str] = mapped_column(String(12))
    #: why it is held or refused: self_referral, referrer_cap, phone_prefix_burst, refunded
    reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    phone_prefix: Mapped[str] = mapped_column(String(8))
    order_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    referrer_points: Mapped[int] = mapped_column(BigInteger, default=0)
    referee_points: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class MemberEvent(Base):
    """A member event (salon, trip, trial, birthday party) with a capacity. ``registered``
    counts the places taken; the guarded UPDATE ``registered < capacity`` is the only way in."""

    __tablename__ = "member_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: tier codes allowed to register (empty: every tier)
    tiers: Mapped[list[str]] = mapped_column(JSONType)
    capacity: Mapped[int] = mapped_column(Integer)
    registered: Mapped[int] = mapped_column(Integer, default=0)
    points_cost: Mapped[int] = mapped_column(Integer, default=0)
    #: a fee paid outside Patron (shown to the member, recorded for the campaign's cost)
    fee_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="SET NULL"), nullable=True
    )
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class EventRegistration(Base):
    """registered | waitlisted → registered (a place freed) | cancelled; after the event
    registered → attended (checked in by code) or no_show (when the event is closed)."""

    __tablename__ = "event_registrations"
    __table_args__ = (
        UniqueConstraint("event_id", "member_id"),
        Index("ix_event_registrations_queue", "event_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("member_events.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(12))
    checkin_code: Mapped[str] = mapped_column(String(16), unique=True)
    spend_posting_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RecallGrant(Base):
    """A recall ("revival") pack given to a dormant member: points and a coupon, at most once
    per member within the recall window in force when it was given (``window_days``)."""

    __tablename__ = "recall_grants"
    __table_args__ = (UniqueConstraint("member_id", "granted_on"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    #: business date of the grant
    granted_on: Mapped[date] = mapped_column(Date)
    window_days: Mapped[int] = mapped_column(Integer)
    points: Mapped[int] = mapped_column(BigInteger)
    posting_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    coupon_template: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Contest(Base):
    """A UGC contest (SPEC A8): members submit within the window, operators moderate and
    choose up to ``max_winners`` winners, each rewarded once with points and/or a coupon."""

    __tablename__ = "ugc_contests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(String(2000), default="")
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reward_points: Mapped[int] = mapped_column(BigInteger, default=0)
    #: a coupon template's code (None: no coupon)
    reward_coupon: Mapped[str | None] = mapped_column(String(64), nullable=True)
    max_winners: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ContestEntry(Base):
    """One member's entry in a contest (one per member): text and an optional image from the
    image store; pending → approved | rejected (with a note); an approved entry may win once."""

    __tablename__ = "ugc_entries"
    __table_args__ = (
        UniqueConstraint("contest_id", "member_id", name="uq_ugc_entries_member"),
        Index("ix_ugc_entries_status", "contest_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contest_id: Mapped[int] = mapped_column(ForeignKey("ugc_contests.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    text: Mapped[str] = mapped_column(String(2000))
    image_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    #: pending | approved | rejected
    status: Mapped[str] = mapped_column(String(12), default="pending")
    note: Mapped[str] = mapped_column(String(500), default="")
    moderated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    winner: Mapped[bool] = mapped_column(Boolean, default=False)
    rewarded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    posting_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    coupon_code: Mapped[str | None] = mapped_column(String(16), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
