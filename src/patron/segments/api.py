"""Segments: preview a rule tree (count + sample), saved segments with versions."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request, status

from patron.auth import permissions as perm
from patron.auth.principal import Principal
from patron.kit.crypto import FieldCipher
from patron.kit.timeutil import business_tz
from patron.program import service as program
from patron.segments import lists, service
from patron.segments.domain import LIFECYCLE_SECTION, LifecycleSettings
from patron.segments.models import Segment
from patron.segments.personas import PERSONAS
from patron.segments.schemas import (
    PersonaOut,
    SegmentChangeIn,
    SegmentIn,
    SegmentOut,
    SegmentPreviewIn,
    SegmentPreviewOut,
    SegmentVersionOut,
    StaticListIn,
    StaticListOut,
)
from patron.web.deps import ClockDep, SessionDep, SettingsDep, require
from patron.web.openapi import errors
from patron.web.routing import api_router

router = api_router("/api/v1", tags=["segments"])
Reader = Annotated[Principal, Depends(require(perm.SEGMENTS_READ))]
Writer = Annotated[Principal, Depends(require(perm.SEGMENTS_WRITE))]
Configurer = Annotated[Principal, Depends(require(perm.PROGRAM_CONFIGURE))]
SegmentCode = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,40}$")]


def _out(seg: Segment, count: int | None = None) -> SegmentOut:
    return SegmentOut(
        code=seg.code,
        name=seg.name,
        rule=seg.rule,
        version=seg.version,
        created_by=seg.created_by,
        created_at=seg.created_at,
        updated_at=seg.updated_at,
        count=count,
    )


@router.post(
    "/segments/preview",
    summary="Count the members a rule tree selects, with a sample of 20 member numbers",
)
def preview(
    body: SegmentPreviewIn,
    principal: Reader,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> SegmentPreviewOut:
    rule = service.parse_checked(session, body.rule)
    p = service.preview(session, rule, now=clock.now(), tz=business_tz(settings.business_timezone))
    return SegmentPreviewOut(count=p.count, sample=p.sample)


@router.get("/segments", summary="Saved segments")
def list_segments(principal: Reader, session: SessionDep) -> list[SegmentOut]:
    return [_out(s) for s in service.list_segments(session)]


@router.post(
    "/segments",
    summary="Save a segment (version 1)",
    status_code=status.HTTP_201_CREATED,
    responses=errors(409),
)
def create(body: SegmentIn, principal: Writer, session: SessionDep, clock: ClockDep) -> SegmentOut:
    rule = service.parse_checked(session, body.rule)
    seg = service.create(
        session, code=body.code, name=body.name, rule=rule, actor=principal.key, now=clock.now()
    )
    return _out(seg)


@router.get("/segments/personas", summary="The built-in personas with their rule trees")
def personas(principal: Reader) -> list[PersonaOut]:
    return [
        PersonaOut(code=p.code, name=p.name, description=p.description, rule=p.rule)
        for p in PERSONAS.values()
    ]


@router.get(
    "/segments/{code}/versions",
    summary="Every saved version of a segment, newest first",
    responses=errors(404),
)
def versions(code: SegmentCode, principal: Reader, session: SessionDep) -> list[SegmentVersionOut]:
    return [
        SegmentVersionOut(
            version=v.version,
            name=v.name,
            rule=v.rule,
            created_by=v.created_by,
            created_at=v.created_at,
        )
        for v in service.versions(session, code)
    ]


@router.get("/static-lists", summary="Static lists with their member counts")
def static_lists(principal: Reader, session: SessionDep) -> list[StaticListOut]:
    return [
        StaticListOut(code=lst.code, name=lst.name, members=n, updated_at=lst.updated_at)
        for lst, n in lists.list_lists(session)
    ]


@router.put(
    "/static-lists/{code}",
    summary="Import a static list from CSV text (member numbers or phones); replaces its members",
)
def import_static_list(
    code: SegmentCode,
    body: StaticListIn,
    request: Request,
    principal: Writer,
    session: SessionDep,
    clock: ClockDep,
) -> StaticListOut:
    cipher: FieldCipher = request.app.state.cipher
    done = lists.import_list(
        session,
        cipher,
        principal,
        code=code,
        name=body.name,
        entries=lists.parse_entries(body.csv),
        now=clock.now(),
    )
    return StaticListOut(
        code=done.code,
        name=done.name,
        members=done.members,
        unknown=done.unknown,
        unknown_count=done.unknown_count,
        updated_at=clock.now(),
    )


@router.get("/segments/{code}", summary="A saved segment with its count now", responses=errors(404))
def get_one(
    code: SegmentCode,
    principal: Reader,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> SegmentOut:
    seg = service.get(session, code)
    p = service.preview(
        session,
        service.parse(seg.rule),
        now=clock.now(),
        tz=business_tz(settings.business_timezone),
    )
    return _out(seg, p.count)


@router.patch(
    "/segments/{code}",
    summary="Change a segment's name or rule (version + 1 when anything changed)",
    responses=errors(404),
)
def change(
    code: SegmentCode,
    body: SegmentChangeIn,
    principal: Writer,
    session: SessionDep,
    clock: ClockDep,
) -> SegmentOut:
    rule = service.parse_checked(session, body.rule) if body.rule is not None else None
    seg = service.change(
        session, code, name=body.name, rule=rule, now=clock.now(), actor=principal.key
    )
    return _out(seg)


@router.get("/lifecycle/settings", summary="Lifecycle stage thresholds")
def get_lifecycle(principal: Reader, session: SessionDep) -> LifecycleSettings:
    return service.lifecycle_settings(session)


@router.put("/lifecycle/settings", summary="Change the lifecycle stage thresholds")
def put_lifecycle(
    body: LifecycleSettings, principal: Configurer, session: SessionDep, clock: ClockDep
) -> LifecycleSettings:
    program.put_section(session, principal, LIFECYCLE_SECTION, body, now=clock.now())
    return body
