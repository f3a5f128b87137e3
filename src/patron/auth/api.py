"""Sign-in, the current caller, staff users and API keys."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Path, Request, status
from fastapi.responses import JSONResponse

from patron.auth import permissions as perm
from patron.auth import service
from patron.auth.models import ApiKey, StaffUser
from patron.auth.principal import Principal
from patron.auth.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    MeOut,
    StaffCreate,
    StaffOut,
    StaffUpdate,
    TokenOut,
    TokenRequest,
)
from patron.observability import current_request_id
from patron.web.deps import ClockDep, SessionDep, SettingsDep, public, require
from patron.web.routing import api_router

router = api_router("/api/v1", tags=["auth"])
Admin = Annotated[Principal, Depends(require(perm.STAFF_ADMIN))]
IdPath = Annotated[int, Path(ge=1, le=2_147_483_647)]


@router.post(
    "/auth/token",
    response_model=TokenOut,
    summary="Staff sign-in: exchange username and password for a short-lived token",
    dependencies=[Depends(public())],
    responses={
        401: {
            "description": "Wrong credentials (also: unknown user, or too many failures from "
            "this address), or a disabled account"
        }
    },
)
def sign_in(
    body: TokenRequest,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> Any:
    try:
        issued = service.login(
            session,
            username=body.username,
            password=body.password,
            token_key=request.app.state.keys["token_key"],
            ttl_minutes=settings.token_ttl_minutes,
            throttle=service.LoginThrottle(
                settings.login_max_failures, timedelta(minutes=settings.login_lockout_minutes)
            ),
            source=request.client.host if request.client else None,
            now=clock.now(),
        )
    except service.LoginFailed as failed:
        # Returned, not raised: the failed attempt must be committed (it counts against the
        # client's address).
        err = failed.error
        return JSONResponse(
            {"error": {**err.to_dict(), "request_id": current_request_id()}},
            status_code=err.status,
            headers={"WWW-Authenticate": "Bearer"},
        )
    return TokenOut(access_token=issued.token, expires_in=issued.expires_in, role=issued.user.role)


@router.get("/auth/me", summary="Who am I, and what may I do")
def me(principal: Annotated[Principal, Depends(require(perm.MEMBERS_READ))]) -> MeOut:
    return MeOut(
        kind=principal.kind,
        id=principal.id,
        label=principal.label,
        role=principal.role,
        permissions=sorted(principal.permissions),
    )


def _staff_out(u: StaffUser) -> StaffOut:
    return StaffOut(
        id=u.id,
        username=u.username,
        display_name=u.display_name,
        role=u.role,
        is_active=u.is_active,
        last_login_at=u.last_login_at,
        created_at=u.created_at,
    )


@router.get("/staff", summary="List staff users", tags=["admin"])
def list_staff(principal: Admin, session: SessionDep) -> list[StaffOut]:
    return [_staff_out(u) for u in service.list_staff(session)]


@router.post(
    "/staff", status_code=status.HTTP_201_CREATED, summary="Create a staff user", tags=["admin"]
)
def create_staff(
    body: StaffCreate, principal: Admin, session: SessionDep, clock: ClockDep
) -> StaffOut:
    user = service.create_staff(
        session,
        principal,
        username=body.username,
        display_name=body.display_name,
        role=body.role,
        password=body.password,
        now=clock.now(),
    )
    return _staff_out(user)


@router.patch(
    "/staff/{staff_id}", summary="Change a staff user's role, status or password", tags=["admin"]
)
def update_staff(
    staff_id: IdPath, body: StaffUpdate, principal: Admin, session: SessionDep, clock: ClockDep
) -> StaffOut:
    user = service.update_staff(
        session, principal, staff_id, changes=body.model_dump(exclude_unset=True), now=clock.now()
    )
    return _staff_out(user)


def _key_out(k: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        id=k.id,
        name=k.name,
        prefix=k.prefix,
        scopes=list(k.scopes),
        created_at=k.created_at,
        revoked_at=k.revoked_at,
        last_used_at=k.last_used_at,
    )


@router.get("/api-keys", summary="List API keys (secrets are never shown again)", tags=["admin"])
def list_keys(principal: Admin, session: SessionDep) -> list[ApiKeyOut]:
    return [_key_out(k) for k in service.list_api_keys(session)]


@router.post(
    "/api-keys", status_code=status.HTTP_201_CREATED, summary="Create an API key", tags=["admin"]
)
def create_key(
    body: ApiKeyCreate, principal: Admin, session: SessionDep, clock: ClockDep
) -> ApiKeyCreated:
    created = service.create_api_key(
        session, principal, name=body.name, scopes=list(body.scopes), now=clock.now()
    )
    return ApiKeyCreated(**_key_out(created.key).model_dump(), key=created.secret)


@router.delete("/api-keys/{key_id}", summary="Revoke an API key", tags=["admin"])
def revoke_key(key_id: IdPath, principal: Admin, session: SessionDep, clock: ClockDep) -> ApiKeyOut:
    return _key_out(service.revoke_api_key(session, principal, key_id, clock.now()))
