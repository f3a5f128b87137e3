"""Pure rules of one-time codes: limits, generation and hashing."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from patron.kit.clientaddr import throttle_scope

CODE_DIGITS: Final = 6


@dataclass(frozen=True, slots=True)
class OtpLimits:
    resend_seconds: int = 60
    daily_cap: int = 10
    max_attempts: int = 5
    ttl: timedelta = timedelta(minutes=5)
    # codes one network address may ask for in an hour, whatever the phones: without it one
    # client could spray codes over many phones (guessing 5 times each) or use up a victim's
    # daily cap
    source_hourly_cap: int = 20


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def hash_code(key: bytes, phone_index: str, code: str) -> str:
    # Keyed and bound to the phone: a leaked table does not give codes away by brute force
    # without the server key, and a hash cannot be replayed for another phone.
    return hmac.new(key, f"otp:{phone_index}:{code}".encode(), hashlib.sha256).hexdigest()


def source_index(key: bytes, address: str) -> str:
    """A keyed hash of the client's network address (its /64 for IPv6): counted, never stored
    in the clear."""
    scope = throttle_scope(address)
    return hmac.new(key, f"otp-source:{scope}".encode(), hashlib.sha256).hexdigest()


def send_refusal(
    last_sent_at: datetime | None,
    sent_today: int,
    now: datetime,
    limits: OtpLimits,
    sent_from_source_last_hour: int = 0,
) -> str | None:
    """Why a new code may not be sent now (an error code), or None."""
    if sent_from_source_last_hour >= limits.source_hourly_cap:
        return "otp_source_cap"
    if last_sent_at is not None and now < last_sent_at + timedelta(seconds=limits.resend_seconds):
        return "otp_too_soon"
    if sent_today >= limits.daily_cap:
        return "otp_daily_cap"
    return None


def seconds_until_resend(last_sent_at: datetime | None, now: datetime, limits: OtpLimits) -> int:
    if last_sent_at is None:
        return 0
    left = (last_sent_at + timedelta(seconds=limits.resend_seconds) - now).total_seconds()
    return max(0, int(left + 0.999))
