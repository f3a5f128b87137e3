"""The last run of each scheduled job, kept in the database so that every server's /metrics,
the console and ``patron doctor`` see the jobs wherever they ran: the scheduler embedded in a
``patron serve`` worker, a ``patron jobs scheduler`` apart, or ``patron jobs run`` from cron."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from patron.db import Base, UTCDateTime


class JobRun(Base):
    """One row per job, overwritten by each run; the counters only grow."""

    __tablename__ = "job_runs"
    __table_args__ = (
        CheckConstraint("runs_ok >= 0 AND runs_failed >= 0", name="runs_not_negative"),
        CheckConstraint("last_ms >= 0", name="last_ms_not_negative"),
    )

    job: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: the scheduler's interval for the job; None when only cron ran it (no lag is judged)
    every_seconds: Mapped[int | None] = mapped_column(Integer)
    last_started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_finished_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_ms: Mapped[int] = mapped_column(BigInteger)
    last_ok: Mapped[bool] = mapped_column(Boolean)
    last_ok_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: the exception's type only: a message may quote a member's data
    last_error: Mapped[str | None] = mapped_column(String(120))
    last_host: Mapped[str] = mapped_column(String(255))
    runs_ok: Mapped[int] = mapped_column(BigInteger, default=0)
    runs_failed: Mapped[int] = mapped_column(BigInteger, default=0)
