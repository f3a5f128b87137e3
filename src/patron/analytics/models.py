"""Tables of the analytics models: per-member scores written by the nightly job, and the record
of each model run (fitted parameters, problems, holdout metrics) that pages and commands show."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
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
    #: Median days from as_of to the next purchase if the member is still active (NULL: no
    #: usable estimate).
    next_purchase_days: Mapped[float | None] = mapped_column(Float, nullable=True)


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


class MemberReplenishment(Base):
    """Per member and category: when the member is due to buy the category again (last purchase
    + the category's typical interval). Replaced whole by each run of the scores job."""

    __tablename__ = "member_replenishment"
    __table_args__ = (Index("ix_member_replenishment_due_on", "due_on"),)

    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    category: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_day: Mapped[date] = mapped_column(Date)
    cycle_days: Mapped[int] = mapped_column(Integer)
    due_on: Mapped[date] = mapped_column(Date)


class MemberRecommendation(Base):
    """The top products (``kind`` product, ``item`` a SKU) and coupons (``kind`` coupon, ``item``
    a coupon template code) for a member, rank 1 the best. Replaced whole by each run of the
    scores job. Segments may read it: ``EXISTS (SELECT 1 FROM member_recommendations r WHERE
    r.member_id = members.id AND r.kind = 'product' AND r.item = :sku)``."""

    __tablename__ = "member_recommendations"
    __table_args__ = (Index("ix_member_recommendations_item", "kind", "item"),)

    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    item: Mapped[str] = mapped_column(String(64))
    score: Mapped[float] = mapped_column(Float)
    as_of: Mapped[date] = mapped_column(Date)


class AnalyticsAlert(Base):
    """A daily metric outside its expected range. One row per metric, scope and day (the
    unique key makes a rerun of the check raise nothing twice)."""

    __tablename__ = "analytics_alerts"
    __table_args__ = (
        UniqueConstraint("metric", "scope", "day", name="uq_analytics_alerts_metric_scope_day"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    metric: Mapped[str] = mapped_column(String(32))
    scope: Mapped[str] = mapped_column(String(32))  # "" = all stores, else a store code
    day: Mapped[date] = mapped_column(Date)
    value: Mapped[int] = mapped_column(BigInteger)
    expected: Mapped[float | None] = mapped_column(Float, nullable=True)
    low: Mapped[float | None] = mapped_column(Float, nullable=True)
    high: Mapped[float | None] = mapped_column(Float, nullable=True)
    reason: Mapped[str] = mapped_column(String(16))  # threshold | seasonal
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
