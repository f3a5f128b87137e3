"""Staff accounts, sign-in tokens and API keys.

Services flush; the caller's unit of work commits.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from patron.audit import service as audit
from patron.auth.models import ApiKey, LoginFailure, StaffUser
from patron.auth.permissions import API_KEY_SCOPES, ROLE_PERMISSIONS, ROLES
from patron.auth.principal import Principal
from patron.catalog.models import Store
from patron.db import advisory_lock
from patron.errors import Conflict, Invalid, NotFound, Unauthorized
from patron.kit.clientaddr import throttle_scope
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
        "store_code": user.store_code,
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
        tokens_valid_after=now,
        token_generation=0,
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
    if "store_code" in changes:
        code = changes["store_code"] or None
        if code is not None and session.scalar(select(Store.id).where(Store.code == code)) is None:
            raise Invalid("unknown_store", f"There is no store with the code {code}.")
        user.store_code = code
    if changes.get("password"):
        check_password_strength(changes["password"])
        user.password_hash = hash_password(changes["password"])
        revoke = True
    if revoke:
        _revoke_tokens(user, now)
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


@dataclass(frozen=True, slots=True)
class LoginThrottle:
    """At most ``max_failures`` failed sign-ins from one client address per ``window``; past
    that the address is refused (as a wrong password would be) until older failures age out."""

    max_failures: int
    window: timedelta


def login_source_index(key: bytes, address: str) -> str:
    """A keyed hash of the client's network address (its /64 for IPv6): counted, never stored
    in the clear."""
    scope = throttle_scope(address)
    return hmac.new(key, f"login-source:{scope}".encode(), hashlib.sha256).hexdigest()


def login(
    session: Session,
    *,
    username: str,
    password: str,
    token_key: bytes,
    ttl_minutes: int,
    throttle: LoginThrottle,
    source: str | None,
    now: datetime,
) -> IssuedToken:
    """Unknown user, wrong password and a throttled address get the same answer after the same
    work (one password hash check, one failure row): nothing tells which usernames exist. The
    throttle is per client address (``source``), not per account, so nobody can keep another
    person's account locked: the right password from elsewhere still signs in."""
    generic = Unauthorized("invalid_credentials", "Wrong username or password.")
    source_idx = login_source_index(token_key, source or "unknown")
    # two attempts at once from one address must not both slip under the limit
    advisory_lock(session, f"login-source:{source_idx}")
    since = now - throttle.window
    recent = int(
        session.scalar(
            select(func.count())
            .select_from(LoginFailure)
            .where(LoginFailure.source_index == source_idx, LoginFailure.at > since)
        )
        or 0
    )
    user = session.scalar(select(StaffUser).where(StaffUser.username == username))
    throttled = recent >= throttle.max_failures
    ok = _verify(_DUMMY_HASH if user is None or throttled else user.password_hash, password)
    if user is None or throttled or not ok:
        _prune_failures(session, since)
        session.add(LoginFailure(source_index=source_idx, at=now))
        session.flush()
        raise LoginFailed(generic)
    if not user.is_active:
        raise LoginFailed(Unauthorized("account_disabled", "This account is disabled."))
    user.last_login_at = now
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    session.flush()
    return IssuedToken(issue_token(user, token_key, ttl_minutes, now), ttl_minutes * 60, user)


def _prune_failures(session: Session, since: datetime) -> None:
    """Forget a batch of failures older than the window, whichever address they came from;
    rows another sign-in is pruning right now are skipped rather than waited for."""
    stale = (
        select(LoginFailure.id)
        .where(LoginFailure.at <= since)
        .limit(100)
        .with_for_update(skip_locked=True)
    )
    session.execute(delete(LoginFailure).where(LoginFailure.id.in_(stale)))


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
        "gen": user.token_generation,
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
    # The generation, not the issue time: iat has whole seconds, so a token minted in the same
    # second as a password change or sign-out would otherwise survive it.
    gen = claims.get("gen")
    if not isinstance(gen, int) or isinstance(gen, bool) or gen != user.token_generation:
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


# Built once: every API request runs it (building a statement costs more than this lookup).
# Columns, not the entity: a request needs no ORM object of its key.
_KEY_BY_PREFIX = select(
    ApiKey.id, ApiKey.name, ApiKey.key_hash, ApiKey.scopes, ApiKey.revoked_at, ApiKey.last_used_at
).where(ApiKey.prefix == bindparam("prefix", type_=ApiKey.prefix.type))


def principal_from_api_key(session: Session, secret: str) -> tuple[Principal, datetime | None]:
    """The key's principal and when the key was last recorded as used (``touch_api_key``)."""
    invalid = Unauthorized("invalid_api_key", "The API key is invalid or revoked.")
    parts = secret.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(secret) > 128:
        raise invalid
    key = session.execute(_KEY_BY_PREFIX, {"prefix": parts[1]}).first()
    if key is None or key.revoked_at is not None:
        raise invalid
    if not hmac.compare_digest(key.key_hash, sha256_hex(secret)):
        raise invalid
    principal = Principal(
        kind="apikey",
        id=key.id,
        label=f"key:{key.name}",
        role=None,
        permissions=frozenset(key.scopes) & API_KEY_SCOPES,
    )
    return principal, key.last_used_at


def touch_api_key(
    session: Session, key_id: int, last_used_at: datetime | None, now: datetime
) -> datetime:
    """Record use at most hourly so reads do not turn into a write per request (every
    request of a busy integration would queue on the key's row). ``last_used_at`` is what
    the key's lookup read: no second read. Returns the stamp the key now holds."""
    if last_used_at is not None and now - last_used_at <= timedelta(hours=1):
        return last_used_at
    session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id)
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )
    return now


# ---- console sessions ------------------------------------------------------------------------


def revoke_sessions(session: Session, staff_id: int, now: datetime) -> None:
    """Every token issued to this user before ``now`` stops working (sign-out)."""
    user = get_staff(session, staff_id)
    _revoke_tokens(user, now)
    session.flush()


def _revoke_tokens(user: StaffUser, now: datetime) -> None:
    """Every token issued to ``user`` so far stops working; tokens issued after the flush
    carry the new generation. Incremented in SQL so that two revocations at once both count."""
    user.tokens_valid_after = now
    user.token_generation = StaffUser.token_generation + 1


def set_locale(session: Session, staff_id: int, locale: str) -> None:
    user = get_staff(session, staff_id)
    user.locale = locale
    session.flush()
