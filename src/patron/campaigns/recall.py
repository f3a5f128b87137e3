"""Recall ("revival") packs (SPEC C2): points and a coupon for dormant members, given by a job,
at most once per member within the recall window.

Who is dormant comes from the segments' lifecycle (``segments.compile.lifecycle_stage`` with
the ``lifecycle`` settings), so the console's segments and the recall agree. One run:

1. selects up to ``batch`` members in the chosen stages with no pack within ``window_days``
   (one SELECT, lowest ids first);
2. claims them by inserting their ``recall_grants`` rows (``ON CONFLICT DO NOTHING`` on
   (member, business date)): two runs at once give each member one pack, the one whose insert
   won earns;
3. credits the points through the ledger's batch writer (``ledger.batch.earn_many``, source
   ``recall``, keyed by the grant): the same lots, expiry, events and audit as one earning per
   member, in a fixed number of statements;
4. issues the coupon set-based to the claimed members (``coupons.bulk``, key
   ``recall:DATE``).

Settings: program section ``recall`` (``RecallSettings``). Disabled by default.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from itertools import pairwise
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import and_, exists, func, not_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from patron.campaigns.models import RecallGrant
from patron.coupons import bulk
from patron.kit.timeutil import business_date
from patron.ledger import batch
from patron.ledger.domain import BatchCredit
from patron.ledger.models import PointsPosting
from patron.ledger.service import Ctx
from patron.members.models import Member
from patron.program import service as program
from patron.segments import domain as seg
from patron.segments import service as segments
from patron.segments.compile import lifecycle_stage

SECTION: Final = "recall"
SOURCE_TYPE: Final = "recall"


def _dormant() -> list[seg.Stage]:
    return ["dormant"]


class RecallSettings(BaseModel):
    """Program section ``recall``."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    #: lifecycle stages that count as dormant (docs/segments.md)
    stages: list[seg.Stage] = Field(default_factory=_dormant, min_length=1)
    #: points credited with the pack (0 = none)
    points: int = Field(default=200, ge=0, le=100_000)
    #: coupon template given with the pack (None = no coupon)
    coupon_template: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    #: a member receives at most one pack within this many days
    window_days: int = Field(default=90, ge=1, le=3650)
    #: members per run (the job runs again for the rest)
    batch: int = Field(default=1_000, ge=1, le=50_000)

    @model_validator(mode="after")
    def _gives_something(self) -> RecallSettings:
        if self.enabled and not self.points and not self.coupon_template:
            raise ValueError("a recall pack needs points, a coupon template or both")
        return self


@dataclass(frozen=True, slots=True)
class RecallReport:
    members: int
    points: int
    coupons: int


def get_settings(session: Session) -> RecallSettings:
    return program.get_section(session, SECTION, RecallSettings)


def due(session: Session, ctx: Ctx, s: RecallSettings) -> list[int]:
    """Ids of members in the dormant stages with no pack within the window."""
    today = business_date(ctx.now, ctx.tz)
    recent = exists().where(
        RecallGrant.member_id == Member.id,
        RecallGrant.granted_on > today - timedelta(days=s.window_days),
    )
    stage = lifecycle_stage(ctx.now, segments.lifecycle_settings(session))
    return list(
        session.scalars(
            select(Member.id)
            .where(Member.status == "active", stage.in_(s.stages), not_(recent))
            .order_by(Member.id)
            .limit(s.batch)
        )
    )


def run(session: Session, ctx: Ctx) -> RecallReport:
    s = get_settings(session)
    if not s.enabled:
        return RecallReport(0, 0, 0)
    candidates = due(session, ctx, s)
    if not candidates:
        return RecallReport(0, 0, 0)
    today = business_date(ctx.now, ctx.tz)
    claimed = _claim(session, ctx, s, candidates)
    if not claimed:
        return RecallReport(0, 0, 0)
    points = 0
    if s.points:
        earned = batch.earn_many(
            session,
            ctx,
            [
                BatchCredit(
                    member_id,
                    s.points,
                    SOURCE_TYPE,
                    f"{today.isoformat()}:{member_id}",
                    "recall pack",
                )
                for _, member_id in claimed
            ],
        )
        points = s.points * len(claimed)
        # the ORM's bulk UPDATE by primary key: one executemany
        session.execute(
            update(RecallGrant),
            [
                {"id": grant_id, "posting_id": got.posting_id}
                for (grant_id, _), got in zip(claimed, earned, strict=True)
            ],
        )
    coupons = 0
    if s.coupon_template:
        ids = [m for _, m in claimed]
        report = bulk.issue_to_audience(
            session,
            ctx,
            s.coupon_template,
            select(Member.id).where(Member.id.in_(ids)),
            reason="recall",
            key=f"recall:{today.isoformat()}",
            note="recall pack",
        )
        coupons = report.issued
    return RecallReport(len(claimed), points, coupons)


def _claim(
    session: Session, ctx: Ctx, s: RecallSettings, member_ids: list[int]
) -> list[tuple[int, int]]:
    """Insert the grants; (grant id, member id) of those this run inserted."""
    today = business_date(ctx.now, ctx.tz)
    dialect = session.get_bind().dialect.name
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(RecallGrant)
    rows = [
        {
            "member_id": mid,
            "granted_on": today,
            "window_days": s.window_days,
            "points": s.points,
            "coupon_template": s.coupon_template,
            "created_at": ctx.now,
        }
        for mid in member_ids
    ]
    got = session.execute(
        ins.values(rows).on_conflict_do_nothing().returning(RecallGrant.id, RecallGrant.member_id)
    ).all()
    return sorted((int(g), int(m)) for g, m in got)


def violations(session: Session) -> list[str]:
    """``patron check``: at most one pack per member within the window of the later one, and
    each pack's points are the posting it names."""
    out: list[str] = []
    close: list[tuple[int, object]]
    if session.get_bind().dialect.name == "postgresql":
        later = RecallGrant.__table__.alias("later")
        close = [
            (int(m), d)
            for m, d in session.execute(
                select(later.c.member_id, later.c.granted_on)
                .join(
                    RecallGrant,
                    and_(
                        RecallGrant.member_id == later.c.member_id,
                        RecallGrant.granted_on < later.c.granted_on,
                        RecallGrant.granted_on > later.c.granted_on - later.c.window_days,
                    ),
                )
                .limit(20)
            )
        ]
    else:  # SQLite has no date arithmetic on columns: compare in order, in Python
        close = _close_sqlite(session)
    for mid, day in close:
        out.append(f"Member {mid} got a second recall pack on {day}, within the recall window.")
    wrong = session.execute(
        select(RecallGrant.id, RecallGrant.member_id)
        .outerjoin(PointsPosting, PointsPosting.id == RecallGrant.posting_id)
        .where(
            RecallGrant.points > 0,
            (PointsPosting.id.is_(None))
            | (PointsPosting.member_id != RecallGrant.member_id)
            | (PointsPosting.available_delta + PointsPosting.pending_delta != RecallGrant.points),
        )
        .limit(20)
    ).all()
    for gid, mid in wrong:
        out.append(f"Recall pack {gid} of member {mid} does not match its points posting.")
    return out


def _close_sqlite(session: Session) -> list[tuple[int, object]]:
    rows = session.execute(
        select(RecallGrant.member_id, RecallGrant.granted_on, RecallGrant.window_days).order_by(
            RecallGrant.member_id, RecallGrant.granted_on
        )
    ).all()
    out: list[tuple[int, object]] = []
    for prev, cur in pairwise(rows):
        if prev[0] == cur[0] and (cur[1] - prev[1]).days < cur[2]:
            out.append((cur[0], cur[1]))
    return out


def given(session: Session) -> tuple[int, int]:
    """(packs given, members who got one) so far (the console)."""
    row = session.execute(
        select(func.count(RecallGrant.id), func.count(func.distinct(RecallGrant.member_id)))
    ).one()
    return int(row[0]), int(row[1])
