"""FastAPI dependencies: the request's session, the caller, the clock and settings.

Every API route declares exactly one of ``require(permission)`` or ``public()``; a test walks
the routes to keep it that way.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from patron.auth import service as auth_service
from patron.auth.principal import Principal
from patron.config import Settings
from patron.errors import Forbidden, Unauthorized
from patron.idempotency import service as idempotency
from patron.kit.clock import Clock

_bearer = HTTPBearer(auto_error=False, description="Staff sign-in token from /api/v1/auth/token")
_api_key = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="Integration API key (ptn_...)"
)
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def get_session(request: Request) -> Session:
    uow = getattr(request.state, "uow", None)
    if uow is None:  # pragma: no cover - a router built without patron.web.routing
        raise RuntimeError("route is not wrapped in a unit of work")
    session: Session = uow.session
    return session


def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


# FastAPI runs a plain ``def`` dependency on a worker thread; these do no I/O, so async twins run
# them on the event loop instead of costing a thread hop each (while the request's transaction
# holds a connection).
async def _session(request: Request) -> Session:
    return get_session(request)


async def _clock(request: Request) -> Clock:
    return get_clock(request)


async def _settings(request: Request) -> Settings:
    return get_app_settings(request)


SessionDep = Annotated[Session, Depends(_session)]
ClockDep = Annotated[Clock, Depends(_clock)]
SettingsDep = Annotated[Settings, Depends(_settings)]


def authenticate(
    request: Request,
    session: Session,
    bearer: HTTPAuthorizationCredentials | None,
    api_key: str | None,
) -> Principal:
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    now = request.app.state.clock.now()
    if bearer is not None and bearer.credentials:
        principal = auth_service.principal_from_token(
            session, bearer.credentials, request.app.state.keys["token_key"], now
        )
    elif api_key:
        principal, used_at = auth_service.principal_from_api_key(session, api_key)
        request.state.api_key_used_at = used_at
    else:
        raise Unauthorized(
            "not_authenticated",
            "Sign in (Authorization: Bearer <token>) or send an API key (X-API-Key).",
        )
    request.state.principal = principal
    return principal


class Require:
    """Dependency: the caller must hold ``permission``. Also claims the Idempotency-Key."""

    def __init__(self, permission: str) -> None:
        self.permission = permission

    def __call__(
        self,
        request: Request,
        session: SessionDep,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        api_key: Annotated[str | None, Depends(_api_key)],
    ) -> Principal:
        principal = authenticate(request, session, bearer, api_key)
        if not principal.has(self.permission):
            raise Forbidden(
                "forbidden",
                f"Your role does not allow this action (needs {self.permission}).",
                details={"permission": self.permission},
            )
        claim_idempotency(request, session, principal)
        if principal.kind == "apikey" and principal.id is not None:
            request.state.api_key_used_at = auth_service.touch_api_key(
                session,
                principal.id,
                getattr(request.state, "api_key_used_at", None),
                request.app.state.clock.now(),
            )
        return principal


class Public:
    """Dependency marking a route that anyone may call (health, sign-in)."""

    def __call__(self) -> None:
        return None


def claim_idempotency(request: Request, session: Session, principal: Principal) -> None:
    key = request.headers.get(idempotency.HEADER)
    if key is None or request.method not in WRITE_METHODS:
        return
    if getattr(request.state, "idempotency_row", None) is not None:
        return
    req_hash: str = request.state.request_hash
    request.state.idempotency_row = idempotency.claim(
        session,
        request.app.state.cipher,
        principal.key,
        key,
        req_hash,
        request.app.state.clock.now(),
    )


def require(permission: str) -> Require:
    return Require(permission)


def public() -> Public:
    return Public()
