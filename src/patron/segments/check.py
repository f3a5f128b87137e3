"""``patron check`` for segments: every rule tag's holders are exactly the members whose last
change in the tag's history is ``added``, and every member's stored lifecycle stage is the
stage of their last transition."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from patron.members.models import Member, MemberTag, Tag
from patron.segments.models import MemberStage, StageTransition, TagHistory

#: violations named per kind (the count is always given)
SHOWN: Final = 20


def _latest_history(member_id: int | None) -> Any:
    last = select(func.max(TagHistory.id).label("id")).group_by(
        TagHistory.tag_id, TagHistory.member_id
    )
    if member_id is not None:
        last = last.where(TagHistory.member_id == member_id)
    sub = last.subquery()
    return (
        select(TagHistory.tag_id, TagHistory.member_id, TagHistory.change)
        .join(sub, sub.c.id == TagHistory.id)
        .subquery()
    )


def run_check(
    session: Session, *, now: datetime | None = None, member_id: int | None = None
) -> list[str]:
    del now  # the invariants hold at every instant
    out: list[str] = []
    h = _latest_history(member_id)
    held = (
        select(Tag.name, Member.member_no)
        .select_from(MemberTag)
        .join(Tag, and_(Tag.id == MemberTag.tag_id, Tag.kind == "rule"))
        .join(Member, Member.id == MemberTag.member_id)
        .outerjoin(h, and_(h.c.tag_id == MemberTag.tag_id, h.c.member_id == MemberTag.member_id))
        .where(or_(h.c.change.is_(None), h.c.change != "added"))
    )
    lost = (
        select(Tag.name, Member.member_no)
        .select_from(h)
        .join(Tag, Tag.id == h.c.tag_id)
        .join(Member, Member.id == h.c.member_id)
        .outerjoin(
            MemberTag, and_(MemberTag.tag_id == h.c.tag_id, MemberTag.member_id == h.c.member_id)
        )
        .where(h.c.change == "added", MemberTag.member_id.is_(None))
    )
    if member_id is not None:
        held = held.where(MemberTag.member_id == member_id)
    for tag, no in session.execute(held.order_by(Tag.name, Member.member_no).limit(SHOWN)):
        out.append(f"Member {no} holds rule tag {tag!r} but its history does not say it was added.")
    for tag, no in session.execute(lost.order_by(Tag.name, Member.member_no).limit(SHOWN)):
        out.append(f"Member {no} lacks rule tag {tag!r} though its history says it was added.")

    last = select(func.max(StageTransition.id).label("id")).group_by(StageTransition.member_id)
    if member_id is not None:
        last = last.where(StageTransition.member_id == member_id)
    lt = last.subquery()
    latest = (
        select(StageTransition.member_id, StageTransition.to_stage)
        .join(lt, lt.c.id == StageTransition.id)
        .subquery()
    )
    wrong = (
        select(Member.member_no, MemberStage.stage, latest.c.to_stage)
        .select_from(MemberStage)
        .join(Member, Member.id == MemberStage.member_id)
        .outerjoin(latest, latest.c.member_id == MemberStage.member_id)
        .where(or_(latest.c.to_stage.is_(None), latest.c.to_stage != MemberStage.stage))
    )
    if member_id is not None:
        wrong = wrong.where(MemberStage.member_id == member_id)
    for no, stage, last_stage in session.execute(wrong.order_by(Member.member_no).limit(SHOWN)):
        out.append(
            f"Member {no} is stored in stage {stage!r} but its last transition is to "
            f"{last_stage!r}."
        )
    return out
