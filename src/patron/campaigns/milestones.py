"""Points milestones unlocking benefits (SPEC A7): 10,000 points earned → a dedicated service,
30,000 → early access (the seeds' numbers, settings in the program section ``milestones``).

A milestone counts the points a member has *earned* over their life (``lifetime_earned`` of
the points account), so spending never locks a benefit again. Unlocking is derived from the
ledger, not stored: nothing can disagree with it.

A milestone may also give a coupon (a template's code). The ``milestone_coupons`` job issues
it set-based to every member past the milestone, keyed ``milestone:<code>`` with the template
and the member, so each member gets it once however often the job runs; the coupon itself is
the record that it was given.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Final, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patron.auth.principal import Principal
from patron.coupons import bulk
from patron.coupons import service as coupons
from patron.coupons.models import CouponTemplate
from patron.errors import PatronError
from patron.ledger.models import PointsAccount
from patron.ledger.service import Ctx
from patron.program import service as program

SECTION: Final = "milestones"


class Milestone(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
    name: str = Field(min_length=1, max_length=100)
    points: int = Field(ge=1, le=1_000_000_000)
    benefit: str = Field(default="", max_length=200)
    #: a coupon template's code: each member who reaches the milestone gets one coupon of it
    coupon: str | None = Field(default=None, min_length=1, max_length=64)


class MilestoneSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    milestones: tuple[Milestone, ...] = Field(
        default=(
            Milestone(
                code="dedicated_service",
                name="Dedicated service",
                points=10_000,
                benefit="A personal adviser",
            ),
            Milestone(
                code="early_access",
                name="Early access",
                points=30_000,
                benefit="New products before everyone else",
            ),
        ),
        max_length=20,
    )

    @model_validator(mode="after")
    def _unique(self) -> Self:
        codes = [m.code for m in self.milestones]
        if len(set(codes)) != len(codes):
            raise ValueError("each milestone needs its own code")
        return self


@dataclass(frozen=True, slots=True)
class Progress:
    earned: int
    unlocked: tuple[Milestone, ...]
    next: Milestone | None

    @property
    def to_next(self) -> int | None:
        return None if self.next is None else self.next.points - self.earned


def progress(earned: int, settings: MilestoneSettings) -> Progress:
    """Which milestones ``earned`` lifetime points unlock, and the next one."""
    ordered = sorted(settings.milestones, key=lambda m: m.points)
    unlocked = tuple(m for m in ordered if earned >= m.points)
    nxt = next((m for m in ordered if earned < m.points), None)
    return Progress(earned, unlocked, nxt)


def member_progress(session: Session, member_id: int) -> Progress:
    earned = session.scalar(
        select(PointsAccount.lifetime_earned).where(PointsAccount.member_id == member_id)
    )
    return progress(int(earned or 0), program.get_section(session, SECTION, MilestoneSettings))


def get_settings(session: Session) -> MilestoneSettings:
    return program.get_section(session, SECTION, MilestoneSettings)


def put_settings(
    session: Session, actor: Principal, value: MilestoneSettings, *, now: datetime
) -> None:
    """Save the milestones (audited by the settings' service); a coupon must name an existing
    template (404 ``coupon_template_not_found``, nothing saved)."""
    for m in value.milestones:
        if m.coupon is not None:
            coupons.get_template(session, m.coupon)
    program.put_section(session, actor, SECTION, value, now=now)


def coupon_key(m: Milestone) -> str:
    return f"milestone:{m.code}"


def issue_coupons(session: Session, ctx: Ctx) -> dict[str, int]:
    """Each milestone's coupon to the members past it who do not hold it yet (set-based, one
    INSERT … SELECT per milestone); milestone code → coupons issued now. A paused or removed
    template issues nothing (the operator sees it on the template's page)."""
    done: dict[str, int] = {}
    for m in sorted(get_settings(session).milestones, key=lambda m: m.points):
        if m.coupon is None:
            continue
        past = select(PointsAccount.member_id).where(PointsAccount.lifetime_earned >= m.points)
        done[m.code] = 0
        template = session.scalar(select(CouponTemplate).where(CouponTemplate.code == m.coupon))
        if template is None or template.status != "active":
            continue
        # most runs find nobody new: ask first, so they take no lock and write no audit record
        waiting = bulk.eligible(session, template, past, coupon_key(m)).limit(1)
        if session.scalar(select(func.count()).select_from(waiting.subquery())) == 0:
            continue
        try:
            with session.begin_nested():
                report = bulk.issue_to_audience(
                    session, ctx, m.coupon, past, reason="milestone", key=coupon_key(m)
                )
        except PatronError:  # paused or removed meanwhile
            continue
        done[m.code] = report.issued
    return done
