"""Tables of the analytics models: per-member scores written by the nightly job, and the record
of each model run (fitted parameters, problems, holdout metrics) that pages and commands show."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, Date, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from patron.db import Base, JSONType, UTCDateTime

BigId = BigInteger().with_variant(Integer, "sqlite")


class MemberScore(Base):
    """One row per member with a purchase, replaced whole by each run of the scores job.
    Model columns are NULL when the run's fit was not usable (the run says why)."""

    __tablename__ = "member_scores"
    __table_args__ = (Index("ix_member_scores_segment", "segment"),)

    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    as_of: Mapped[date] = mapped_column(Date)
    recency_days: Mapped[int] = mapped_column(Integer)  # as_of − last purchase day
    purchase_days: Mapped[int] = mapped_column(Integer)  # days with a purchase
    monetary_fen: Mapped[int] = mapped_column(BigInteger)  # net spend so far
    r_score: Mapped[int] = mapped_column(Integer)
    f_score: Mapped[int] = mapped_column(Integer)
    m_score: Mapped[int] = mapped_column(Integer)
    segment: Mapped[str] = mapped_column(String(32))
    p_alive: Mapped[float | None] = mapped_column(Float, nullable=True)
    expected_purchases: Mapped[float | None] = mapped_column(Float, nullable=True)
    clv_fen: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    churn_risk: Mapped[float | None] = mapped_column(Float, nullable=True)


class ModelRun(Base):
    """What a run of the scores job or of an evaluation found, as JSON (fits with parameters,
    log-likelihood and problems in words; holdout tables)."""

    __tablename__ = "analytics_model_runs"
    __table_args__ = (Index("ix_analytics_model_runs_kind", "kind", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # scores | evaluate
    ran_at: Mapped[datetime] = mapped_column(UTCDateTime)
    as_of: Mapped[date] = mapped_column(Date)
    members: Mapped[int] = mapped_column(Integer)
    report: Mapped[dict[str, Any]] = mapped_column(JSONType)
