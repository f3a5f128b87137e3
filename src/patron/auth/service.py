"""Staff accounts, sign-in tokens and API keys.

Services flush; the caller's unit of work commits.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from patron.audit import service as audit
from patron.auth.models import ApiKey, StaffUser
from patron.auth.permissions import API_KEY_SCOPES, ROLE_PERMISSIONS, ROLES
from patron.auth.principal import Principal
from patron.errors import Conflict, Invalid, NotFound, Unauthorized
from patron.kit.crypto import sha256_hex

_hasher = PasswordHasher()
# A hash of a random password, verified against when the username is unknown so that the
# response time does not reveal which usernames exist.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
KEY_PREFIX = "ptn"
TOKEN_ALGORITHM = "HS256"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password_strength(password: str) -> None:
    if len(password) < 10:
        raise Invalid(
            "weak_password",
            "Use a password of at least 10 characters.",
            details={"field": "password"},
        )


# ---- staff -----------------------------------------------------------------------------------


def staff_snapshot(user: StaffUser) -> dict[str, Any]:
    return {
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role,
        "is_active": user.is_active,
    }


def create_staff(
    session: Session,
    actor: Principal,
    *,
    username: str,
    display_name: str,
    role: str,
    password: str,
    now: datetime,
) -> StaffUser:
    if role not in ROLES:
        raise Invalid("unknown_role", f"Role must be one of {', '.join(ROLES)}.")
    check_password_strength(password)
    if session.scalar(select(StaffUser.id).where(StaffUser.username == username)) is not None:
        raise Conflict("username_taken", f"A staff user named {username!r} already exists.")
    user = StaffUser(
        username=username,
        display_name=display_name,
        role=role,
        password_hash=hash_password(password),
        is_active=True,
        failed_logins=0,
        tokens_valid_after=now - timedelta(seconds=1),
        created_at=now,
        updated_at=now,
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent create won the race
        raise Conflict(
            "username_taken", f"A staff user named {username!r} already exists."
        ) from exc
    audit.record(
        session, actor, "staff.create", "staff", str(user.id), None, staff_snapshot(user), at=now
    )
    return user


def get_staff(session: Session, staff_id: int) -> StaffUser:
    user = session.get(StaffUser, staff_id)
    if user is None:
        raise NotFound("staff_not_found", f"No staff user with id {staff_id}.")
    return user


def list_staff(session: Session) -> list[StaffUser]:
    return list(session.scalars(select(StaffUser).order_by(StaffUser.id)))


def update_staff(
    session: Session,
    actor: Principal,
    staff_id: int,
    *,
    changes: dict[str, Any],
    now: datetime,
) -> StaffUser:
    user = get_staff(session, staff_id)
    before = staff_snapshot(user)
    revoke = False
    if "role" in changes and changes["role"] is not None:
        if changes["role"] not in ROLES:
            raise Invalid("unknown_role", f"Role must be one of {', '.join(ROLES)}.")
        if user.role == "admin" and changes["role"] != "admin":
            _ensure_other_admin(session, user)
        user.role = changes["role"]
    if "display_name" in changes and changes["display_name"] is not None:
        user.display_name = changes["display_name"]
    if "is_active" in changes and changes["is_active"] is not None:
        if not changes["is_active"] and user.is_active:
            if actor.kind == "staff" and actor.id == user.id:
                raise Conflict("cannot_deactivate_self", "You cannot deactivate your own account.")
            if user.role == "admin":
                _ensure_other_admin(session, user)
            revoke = True
        user.is_active = changes["is_active"]
        if user.is_active:
            user.failed_logins = 0
            user.locked_until = None
    if changes.get("password"):
        check_password_strength(changes["password"])
        user.password_hash = hash_password(changes["password"])
        revoke = True
    if revoke:
        user.tokens_valid_after = now
    user.updated_at = now
    session.flush()
    after = staff_snapshot(user)
    if changes.get("password"):
        after["password"] = "changed"
    audit.record(session, actor, "staff.update", "staff", str(user.id), before, after, at=now)
    return user


def _ensure_other_admin(session: Session, user: StaffUser) -> None:
    others = session.scalar(
        select(func.count())
        .select_from(StaffUser)
        .where(StaffUser.role == "admin", StaffUser.is_active.is_(True), StaffUser.id != user.id)
    )
    if not others:
        raise Conflict("last_admin", "Patron needs at least one active admin.")


# ---- sign-in ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_in: int
    user: StaffUser


class LoginFailed(Exception):
    """Raised after the failed attempt was recorded; the caller still commits it."""

    def __init__(self, error: Unauthorized) -> None:
        super().__init__(error.message)
        self.error = error


def login(
    session: Session,
    *,
    username: str,
    password: str,
    token_key: bytes,
    ttl_minutes: int,
    max_failures: int,
    lockout_minutes: int,
    now: datetime,
) -> IssuedToken:
    user = session.scalar(select(StaffUser).where(StaffUser.username == username))
    generic = Unauthorized("invalid_credentials", "Wrong username or password.")
    if user is None:
        _verify(_DUMMY_HASH, password)
        raise LoginFailed(generic)
    if user.locked_until is not None and user.locked_until > now:
        raise LoginFailed(
            Unauthorized("account_locked", "Too many failed sign-ins; try again later.")
        )
    if not _verify(user.password_hash, password):
        user.failed_logins += 1
        if user.failed_logins >= max_failures:
            user.locked_until = now + timedelta(minutes=lockout_minutes)
            user.failed_logins = 0
        session.flush()
        raise LoginFailed(generic)
    if not user.is_active:
        raise LoginFailed(Unauthorized("account_disabled", "This account is disabled."))
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    session.flush()
    return IssuedToken(issue_token(user, token_key, ttl_minutes, now), ttl_minutes * 60, user)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def issue_token(
    user: StaffUser, token_key: bytes, ttl_minutes: int, now: datetime, *, sid: str | None = None
) -> str:
    """``sid`` names a console session across renewals (its CSRF token is bound to it)."""
    jti = secrets.token_urlsafe(8)
    claims = {
        "sub": str(user.id),
        "typ": "staff",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=ttl_minutes)).timestamp()),
        "jti": jti,
        "sid": sid or jti,
    }
    return jwt.encode(claims, token_key, algorithm=TOKEN_ALGORITHM)


def principal_from_token(
    session: Session, token: str, token_key: bytes, now: datetime
) -> Principal:
    invalid = Unauthorized("invalid_token", "The sign-in token is invalid or has expired.")
    try:
        claims = jwt.decode(
            token,
            token_key,
            algorithms=[TOKEN_ALGORITHM],
            options={"require": ["exp", "iat", "sub"], "verify_exp": False},
        )
    except jwt.PyJWTError as exc:
        raise invalid from exc
    # Expiry is checked against the injected clock, not the wall clock.
    if claims.get("typ") != "staff" or int(claims["exp"]) <= int(now.timestamp()):
        raise invalid
    try:
        staff_id = int(claims["sub"])
    except (TypeError, ValueError) as exc:
        raise invalid from exc
    user = session.get(StaffUser, staff_id)
    if user is None or not user.is_active:
        raise invalid
    if int(claims["iat"]) < int(user.tokens_valid_after.timestamp()):
        raise invalid
    return staff_principal(user)


def staff_principal(user: StaffUser) -> Principal:
    return Principal(
        kind="staff",
        id=user.id,
        label=user.username,
        role=user.role,
        permissions=ROLE_PERMISSIONS.get(user.role, frozenset()),
    )


# ---- API keys --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreatedKey:
    key: ApiKey
    secret: str  # shown once


def create_api_key(
    session: Session, actor: Principal, *, name: str, scopes: list[str], now: datetime
) -> CreatedKey:
    unknown = sorted(set(scopes) - API_KEY_SCOPES)
    if unknown:
        raise Invalid(
            "unknown_scope",
            f"These scopes cannot be granted to an API key: {', '.join(unknown)}.",
            details={"allowed": sorted(API_KEY_SCOPES)},
        )
    if not scopes:
        raise Invalid("scopes_required", "Grant the key at least one scope.")
    prefix = secrets.token_hex(4)
    secret = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(24)}"
    key = ApiKey(
        name=name,
        prefix=prefix,
        key_hash=sha256_hex(secret),
        scopes=sorted(set(scopes)),
        created_by_staff_id=actor.id if actor.kind == "staff" else None,
        created_at=now,
    )
    session.add(key)
    session.flush()
    audit.record(
        session,
        actor,
        "apikey.create",
        "api_key",
        str(key.id),
        None,
        {"name": name, "prefix": prefix, "scopes": key.scopes},
        at=now,
    )
    return CreatedKey(key, secret)


def list_api_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def revoke_api_key(session: Session, actor: Principal, key_id: int, now: datetime) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFound("api_key_not_found", f"No API key with id {key_id}.")
    if key.revoked_at is None:
        key.revoked_at = now
        session.flush()
        audit.record(
            session,
            actor,
            "apikey.revoke",
            "api_key",
            str(key.id),
            {"revoked": False},
            {"revoked": True},
            at=now,
        )
    return key


def principal_from_api_key(session: Session, secret: str) -> Principal:
    invalid = Unauthorized("invalid_api_key", "The API key is invalid or revoked.")
    parts = secret.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(secret) > 128:
        raise invalid
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == parts[1]))
    if key is None or key.revoked_at is not None:
        raise invalid
    if not hmac.compare_digest(key.key_hash, sha256_hex(secret)):
        raise invalid
    return Principal(
        kind="apikey",
        id=key.id,
        label=f"key:{key.name}",
        role=None,
        permissions=frozenset(key.scopes) & API_KEY_SCOPES,
    )


def touch_api_key(session: Session, key_id: int, now: datetime) -> None:
    """Record use at most hourly so reads do not turn into a write per request."""
    key = session.get(ApiKey, key_id)
    if key is not None and (
        key.last_used_at is None or now - key.last_used_at > timedelta(hours=1)
    ):
        key.last_used_at = now
        session.flush()


# ---- console sessions ------------------------------------------------------------------------


def revoke_sessions(session: Session, staff_id: int, now: datetime) -> None:
    """Every token issued to this user before ``now`` stops working (sign-out)."""
    user = get_staff(session, staff_id)
    user.tokens_valid_after = now
    session.flush()


def set_locale(session: Session, staff_id: int, locale: str) -> None:
    user = get_staff(session, staff_id)
    user.locale = locale
    session.flush()
