"""Member routes: thin; the service does the work."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query, Request, status

from patron.auth import permissions as perm
from patron.auth.principal import Principal
from patron.kit.crypto import FieldCipher
from patron.kit.timeutil import business_tz
from patron.members import service
from patron.members.schemas import (
    Consents,
    MemberCreate,
    MemberOut,
    MemberPage,
    MemberUpdate,
    TagIn,
)
from patron.web.deps import ClockDep, SessionDep, SettingsDep, require
from patron.web.routing import api_router

router = api_router("/api/v1/members", tags=["members"])
MemberNoPath = Annotated[str, Path(pattern=r"^[0-9]{10}$", description="10-digit member number")]
Reader = Annotated[Principal, Depends(require(perm.MEMBERS_READ))]
Writer = Annotated[Principal, Depends(require(perm.MEMBERS_WRITE))]


def _cipher(request: Request) -> FieldCipher:
    cipher: FieldCipher = request.app.state.cipher
    return cipher


CipherDep = Annotated[FieldCipher, Depends(_cipher)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Register a member by mobile number",
    responses={409: {"description": "The phone number already belongs to a member"}},
)
def register_member(
    body: MemberCreate,
    principal: Writer,
    session: SessionDep,
    cipher: CipherDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> MemberOut:
    member = service.register(
        session,
        principal,
        cipher,
        body,
        now=clock.now(),
        tz=business_tz(settings.business_timezone),
    )
    return service.to_out(session, member, cipher, full_pii=principal.has(perm.MEMBERS_PII))


@router.get("", summary="Search and list members")
def list_members(
    principal: Reader,
    session: SessionDep,
    cipher: CipherDep,
    q: Annotated[
        str | None, Query(max_length=64, description="phone, member number or name")
    ] = None,
    phone: Annotated[str | None, Query(max_length=32)] = None,
    member_no: Annotated[str | None, Query(max_length=16)] = None,
    name: Annotated[str | None, Query(max_length=100)] = None,
    tag: Annotated[str | None, Query(max_length=32)] = None,
    member_type: Annotated[str | None, Query(max_length=16)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> MemberPage:
    rows, total = service.search(
        session,
        cipher,
        q=q,
        phone=phone,
        member_no=member_no,
        name=name,
        tag=tag,
        member_type=member_type,
        limit=limit,
        offset=offset,
    )
    full = principal.has(perm.MEMBERS_PII)
    return MemberPage(
        items=service.summaries(session, list(rows), cipher, full_pii=full),
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/{member_no}", summary="A member's profile")
def get_member(
    member_no: MemberNoPath, principal: Reader, session: SessionDep, cipher: CipherDep
) -> MemberOut:
    member = service.get_member(session, member_no)
    return service.to_out(session, member, cipher, full_pii=principal.has(perm.MEMBERS_PII))


@router.patch("/{member_no}", summary="Edit a member's profile")
def update_member(
    member_no: MemberNoPath,
    body: MemberUpdate,
    principal: Writer,
    session: SessionDep,
    cipher: CipherDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> MemberOut:
    member = service.update_profile(
        session,
        principal,
        cipher,
        member_no,
        body,
        now=clock.now(),
        tz=business_tz(settings.business_timezone),
    )
    return service.to_out(session, member, cipher, full_pii=principal.has(perm.MEMBERS_PII))


@router.put("/{member_no}/consents", summary="Record marketing consent per channel")
def set_consents(
    member_no: MemberNoPath,
    body: Consents,
    principal: Writer,
    session: SessionDep,
    cipher: CipherDep,
    clock: ClockDep,
) -> MemberOut:
    member = service.set_consents(
        session,
        principal,
        member_no,
        body,
        now=clock.now(),
        source=f"{principal.kind}:{principal.label}"[:32],
    )
    return service.to_out(session, member, cipher, full_pii=principal.has(perm.MEMBERS_PII))


@router.post("/{member_no}/tags", summary="Add a manual tag")
def add_tag(
    member_no: MemberNoPath,
    body: TagIn,
    principal: Writer,
    session: SessionDep,
    cipher: CipherDep,
    clock: ClockDep,
) -> MemberOut:
    member = service.add_tag(session, principal, member_no, body.tag, now=clock.now())
    return service.to_out(session, member, cipher, full_pii=principal.has(perm.MEMBERS_PII))


@router.delete("/{member_no}/tags/{tag}", summary="Remove a manual tag")
def remove_tag(
    member_no: MemberNoPath,
    tag: Annotated[str, Path(min_length=1, max_length=32)],
    principal: Writer,
    session: SessionDep,
    cipher: CipherDep,
    clock: ClockDep,
) -> MemberOut:
    member = service.remove_tag(session, principal, member_no, tag, now=clock.now())
    return service.to_out(session, member, cipher, full_pii=principal.has(perm.MEMBERS_PII))


tags_router = api_router("/api/v1/tags", tags=["members"])


@tags_router.get("", summary="All tags with member counts")
def list_tags(
    principal: Annotated[Principal, Depends(require(perm.MEMBERS_READ))], session: SessionDep
) -> list[dict[str, str | int]]:
    return [{"name": n, "kind": k, "members": c} for n, k, c in service.list_tags(session)]
