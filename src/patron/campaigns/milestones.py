"""Points milestones unlocking benefits (SPEC A7): 10,000 points earned → a dedicated service,
30,000 → early access (the seeds' numbers, settings in the program section ``milestones``).

A milestone counts the points a member has *earned* over their life (``lifetime_earned`` of
the points account), so spending never locks a benefit again. Unlocking is derived from the
ledger, not stored: nothing can disagree with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from patron.ledger.models import PointsAccount
from patron.program import service as program

SECTION: Final = "milestones"


class Milestone(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
    name: str = Field(min_length=1, max_length=100)
    points: int = Field(ge=1, le=1_000_000_000)
    benefit: str = Field(default="", max_length=200)


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
