# ruff: noqa: ARG001  (principal parameters exist for their authorization dependency)
"""Rule tags (dynamic tags) and the lifecycle stage history."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query, status

from patron.auth import permissions as perm
from patron.auth.principal import Principal
from patron.kit.timeutil import business_tz
from patron.members.models import Tag
from patron.segments import lifecycle, service, tags
from patron.segments.models import TagRule
from patron.segments.schemas import (
    RecomputeOut,
    StageCountsOut,
    TagHistoryOut,
    TagRuleChangeIn,
    TagRuleIn,
    TagRuleOut,
    TransitionOut,
)
from patron.web.deps import ClockDep, SessionDep, SettingsDep, require
from patron.web.openapi import errors
from patron.web.routing import api_router

router = api_router("/api/v1", tags=["segments"])
Reader = Annotated[Principal, Depends(require(perm.SEGMENTS_READ))]
Writer = Annotated[Principal, Depends(require(perm.SEGMENTS_WRITE))]
TagName = Annotated[str, Path(min_length=1, max_length=32)]
Month = Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM")]


def _out(tag: Tag, tr: TagRule, members: int | None = None) -> TagRuleOut:
    return TagRuleOut(
        name=tag.name,
        description=tr.description,
        rule=tr.rule,
        on_order=tr.on_order,
        version=tr.version,
        created_by=tr.created_by,
        created_at=tr.created_at,
        updated_at=tr.updated_at,
        computed_at=tr.computed_at,
        added_last=tr.added_last,
        removed_last=tr.removed_last,
        members=members,
    )


@router.get("/tag-rules", summary="Tags computed by a rule, in recompute order, with members")
def list_rules(principal: Reader, session: SessionDep) -> list[TagRuleOut]:
    return [_out(t, r, n) for t, r, n in tags.list_rules(session)]


@router.post(
    "/tag-rules",
    summary="Define a tag computed by a rule tree (computed at once)",
    status_code=status.HTTP_201_CREATED,
    responses=errors(409),
)
def define(
    body: TagRuleIn, principal: Writer, session: SessionDep, clock: ClockDep, settings: SettingsDep
) -> TagRuleOut:
    tag, tr, done = tags.define(
        session,
        principal,
        name=body.name,
        description=body.description,
        rule=service.parse_checked(session, body.rule),
        on_order=body.on_order,
        now=clock.now(),
        tz=business_tz(settings.business_timezone),
    )
    return _out(tag, tr, done.added)


@router.get("/tag-rules/{name}", summary="One rule tag", responses=errors(404))
def get_one(name: TagName, principal: Reader, session: SessionDep) -> TagRuleOut:
    tag, tr = tags.get(session, name)
    members = next(n for t, _, n in tags.list_rules(session) if t.id == tag.id)
    return _out(tag, tr, members)


@router.patch(
    "/tag-rules/{name}",
    summary="Change a rule tag; a new rule is recomputed at once (version + 1)",
    responses=errors(404),
)
def change(
    name: TagName,
    body: TagRuleChangeIn,
    principal: Writer,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> TagRuleOut:
    tag, tr, _ = tags.change(
        session,
        principal,
        name,
        description=body.description,
        rule=service.parse_checked(session, body.rule) if body.rule is not None else None,
        on_order=body.on_order,
        now=clock.now(),
        tz=business_tz(settings.business_timezone),
    )
    return _out(tag, tr)


@router.post(
    "/tag-rules/{name}/recompute",
    summary="Recompute a rule tag now (by difference)",
    responses=errors(404),
)
def recompute(
    name: TagName, principal: Writer, session: SessionDep, clock: ClockDep, settings: SettingsDep
) -> RecomputeOut:
    tag, tr = tags.get(session, name, lock=True)
    done = tags.recompute(
        session,
        tag,
        tr,
        now=clock.now(),
        tz=business_tz(settings.business_timezone),
        source="manual",
    )
    return RecomputeOut(added=done.added, removed=done.removed)


@router.get(
    "/tag-rules/{name}/history",
    summary="Who got or lost a rule tag and when, newest first",
    responses=errors(404),
)
def history(
    name: TagName,
    principal: Reader,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before_id: Annotated[int | None, Query(ge=1)] = None,
) -> list[TagHistoryOut]:
    return [
        TagHistoryOut(id=h.id, member_no=no, change=h.change, source=h.source, at=h.at)
        for h, no in tags.history(session, name, limit=limit, before_id=before_id)
    ]


@router.get(
    "/lifecycle/transitions",
    summary="Members moving between lifecycle stages per month (for cohort analysis)",
)
def transitions(
    principal: Reader,
    session: SessionDep,
    since: Month = None,
    until: Month = None,
) -> list[TransitionOut]:
    return [
        TransitionOut(
            month=t.month, from_stage=t.from_stage, to_stage=t.to_stage, members=t.members
        )
        for t in lifecycle.transitions(session, since=since, until=until)
    ]


@router.get("/lifecycle/stages", summary="Members per lifecycle stage as of the last daily run")
def stages(principal: Reader, session: SessionDep) -> StageCountsOut:
    return StageCountsOut(counts=lifecycle.stage_counts(session))
