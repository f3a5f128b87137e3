"""Send and check one-time codes. Services flush; the page's unit of work commits (a failed
check commits too, so the attempt counter sticks)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from patron.db import advisory_lock
from patron.errors import PatronError
from patron.kit.crypto import FieldCipher
from patron.kit.phone import normalize_phone
from patron.kit.timeutil import business_date
from patron.members.service import PHONE_CTX
from patron.otp import domain
from patron.otp.channel import SmsChannel
from patron.otp.domain import OtpLimits
from patron.otp.models import OtpCode, UsedProof

PURPOSE_LOGIN = "login"


class OtpRefused(PatronError):
    """A code was not sent or not accepted; ``code`` says why (for the form's message)."""

    status = 422


def _refuse(code: str, message: str, **details: object) -> OtpRefused:
    return OtpRefused(code, message, details=dict(details))


@dataclass(frozen=True, slots=True)
class Sent:
    phone: str
    expires_at: datetime
    resend_after: int


def phone_index(cipher: FieldCipher, phone_e164: str) -> str:
    return cipher.blind_index(phone_e164, PHONE_CTX)


def _latest(session: Session, index: str, purpose: str) -> OtpCode | None:
    return session.scalar(
        select(OtpCode)
        .where(OtpCode.phone_index == index, OtpCode.purpose == purpose)
        .order_by(OtpCode.created_at.desc(), OtpCode.id.desc())
        .limit(1)
    )


def send_code(
    session: Session,
    cipher: FieldCipher,
    key: bytes,
    channel: SmsChannel,
    phone: str,
    *,
    now: datetime,
    tz: ZoneInfo,
    limits: OtpLimits,
    purpose: str = PURPOSE_LOGIN,
    message: str = "Your Patron code is {code}. It expires in {minutes} minutes.",
    source: str | None = None,
) -> Sent:
    """Send a new code to ``phone``; ``source`` is the client's network address, counted
    against ``limits.source_hourly_cap`` across all phones."""
    e164 = normalize_phone(phone)
    index = phone_index(cipher, e164)
    source_idx = domain.source_index(key, source) if source else None
    # two taps on "send" at once must not both pass the resend and daily limits
    if source_idx is not None:
        advisory_lock(session, f"otp-source:{source_idx}")
    advisory_lock(session, f"otp:{index}")
    last = _latest(session, index, purpose)
    day_start = datetime.combine(business_date(now, tz), datetime.min.time(), tzinfo=tz).astimezone(
        UTC
    )
    sent_today = int(
        session.scalar(
            select(func.count())
            .select_from(OtpCode)
            .where(
                OtpCode.phone_index == index,
                OtpCode.purpose == purpose,
                OtpCode.created_at >= day_start,
            )
        )
        or 0
    )
    from_source = 0
    if source_idx is not None:
        from_source = int(
            session.scalar(
                select(func.count())
                .select_from(OtpCode)
                .where(
                    OtpCode.source_index == source_idx,
                    OtpCode.created_at > now - timedelta(hours=1),
                )
            )
            or 0
        )
    refusal = domain.send_refusal(
        last.created_at if last else None, sent_today, now, limits, from_source
    )
    if refusal == "otp_source_cap":
        raise _refuse(
            "otp_source_cap", "Too many codes were asked for from this network; try later."
        )
    if refusal == "otp_too_soon":
        wait = domain.seconds_until_resend(last.created_at if last else None, now, limits)
        raise _refuse("otp_too_soon", "Wait a minute before asking for another code.", seconds=wait)
    if refusal == "otp_daily_cap":
        raise _refuse("otp_daily_cap", "Too many codes for this phone today; try again tomorrow.")
    code = domain.new_code()
    row = OtpCode(
        phone_index=index,
        purpose=purpose,
        code_hash=domain.hash_code(key, index, code),
        attempts=0,
        created_at=now,
        expires_at=now + limits.ttl,
        source_index=source_idx,
    )
    session.add(row)
    # An older unused code stops working once a new one is sent.
    if last is not None and last.consumed_at is None:
        last.consumed_at = now
    session.flush()
    minutes = int(limits.ttl.total_seconds() // 60)
    channel.send(e164, message.format(code=code, minutes=minutes), now=now)
    return Sent(e164, row.expires_at, limits.resend_seconds)


def verify_code(
    session: Session,
    cipher: FieldCipher,
    key: bytes,
    phone: str,
    code: str,
    *,
    now: datetime,
    limits: OtpLimits,
    purpose: str = PURPOSE_LOGIN,
) -> str:
    """The phone (E.164) when ``code`` is the live code sent to it; else ``OtpRefused``."""
    e164 = normalize_phone(phone)
    index = phone_index(cipher, e164)
    row = session.scalar(
        select(OtpCode)
        .where(OtpCode.phone_index == index, OtpCode.purpose == purpose)
        .order_by(OtpCode.created_at.desc(), OtpCode.id.desc())
        .limit(1)
        .with_for_update()
    )
    if row is None or row.consumed_at is not None:
        raise _refuse("otp_missing", "Ask for a code first.")
    if now >= row.expires_at:
        raise _refuse("otp_expired", "This code has expired; ask for a new one.")
    if row.attempts >= limits.max_attempts:
        raise _refuse("otp_locked", "Too many wrong codes; ask for a new one.")
    row.attempts += 1
    text = code.strip()
    if not (text.isdigit() and len(text) == domain.CODE_DIGITS) or not hmac.compare_digest(
        row.code_hash, domain.hash_code(key, index, text)
    ):
        session.flush()
        left = limits.max_attempts - row.attempts
        if left <= 0:
            raise _refuse("otp_locked", "Too many wrong codes; ask for a new one.")
        raise _refuse("otp_wrong", "This code is not right.", attempts_left=left)
    row.consumed_at = now
    session.flush()
    return e164


def spend_proof(session: Session, proof_id: str, expires_at: datetime, *, now: datetime) -> None:
    """Record that the registration proof ``proof_id`` was used; ``OtpRefused("proof_used")``
    if it already was. Of two requests spending one proof at once, the second waits for the
    first and is refused once it commits (the primary key decides)."""
    stale = (
        select(UsedProof.proof_id)
        .where(UsedProof.expires_at <= now)
        .limit(100)
        .with_for_update(skip_locked=True)
    )
    session.execute(delete(UsedProof).where(UsedProof.proof_id.in_(stale)))
    try:
        with session.begin_nested():
            session.add(UsedProof(proof_id=proof_id, expires_at=expires_at))
            session.flush()
    except IntegrityError as exc:
        raise _refuse(
            "proof_used", "This code check was already used; sign in with a new code."
        ) from exc
