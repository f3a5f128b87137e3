from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from patron.db import Base, JSONType, UTCDateTime

BigId = BigInteger().with_variant(Integer, "sqlite")


class Segment(Base):
    """A saved segment: its rule tree (validated by ``segments.domain``) and a version that
    goes up by one on every change of the tree or the name."""

    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    rule: Mapped[dict[str, Any]] = mapped_column(JSONType)
    version: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SegmentVersion(Base):
    """Every saved version of a segment (name and rule as they were), for the versions list."""

    __tablename__ = "segment_versions"

    segment_id: Mapped[int] = mapped_column(
        ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    rule: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TagRule(Base):
    """A dynamic tag: the tag (kind ``rule``) whose members are those a rule tree selects.
    Recomputed by difference; every change of membership is written to ``tag_history``."""

    __tablename__ = "tag_rules"

    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True)
    description: Mapped[str] = mapped_column(String(200), default="")
    rule: Mapped[dict[str, Any]] = mapped_column(JSONType)
    version: Mapped[int] = mapped_column(Integer)
    #: recompute after each order of a member (besides the scheduled job)
    on_order: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    computed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    added_last: Mapped[int] = mapped_column(Integer, default=0)
    removed_last: Mapped[int] = mapped_column(Integer, default=0)
    #: the last order and return ids the after-order recompute has looked at
    order_mark: Mapped[int] = mapped_column(BigInteger, default=0)
    return_mark: Mapped[int] = mapped_column(BigInteger, default=0)


class TagHistory(Base):
    """A member got (``added``) or lost (``removed``) a rule tag, and what recomputed it."""

    __tablename__ = "tag_history"
    __table_args__ = (
        Index("ix_tag_history_tag", "tag_id", "at"),
        Index("ix_tag_history_member", "member_id", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    change: Mapped[str] = mapped_column(String(8))  # added | removed
    source: Mapped[str] = mapped_column(String(8))  # job | order | manual (a recompute asked)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class MemberStage(Base):
    """The lifecycle stage a member is in as of the last daily run, and since when."""

    __tablename__ = "member_stages"
    __table_args__ = (Index("ix_member_stages_stage", "stage"),)

    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    stage: Mapped[str] = mapped_column(String(8))
    since: Mapped[date] = mapped_column(Date)


class StageTransition(Base):
    """A member moved from one stage to another (``from_stage`` empty: first seen), on a
    business day; ``month`` (YYYY-MM) lets cohort reports group without date functions."""

    __tablename__ = "stage_transitions"
    __table_args__ = (
        Index("ix_stage_transitions_month", "month", "from_stage", "to_stage"),
        Index("ix_stage_transitions_member", "member_id", "day"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    from_stage: Mapped[str | None] = mapped_column(String(8), nullable=True)
    to_stage: Mapped[str] = mapped_column(String(8))
    day: Mapped[date] = mapped_column(Date)
    month: Mapped[str] = mapped_column(String(7))


class StaticList(Base):
    """A fixed list of members imported from a file of member numbers or phones."""

    __tablename__ = "static_lists"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StaticListMember(Base):
    __tablename__ = "static_list_members"
    __table_args__ = (Index("ix_static_list_members_member", "member_id"),)

    list_id: Mapped[int] = mapped_column(
        ForeignKey("static_lists.id", ondelete="CASCADE"), primary_key=True
    )
    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
