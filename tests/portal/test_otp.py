"""SMS sign-in codes: resend interval, daily cap per business day, attempts, expiry, hashing."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from patron.otp import domain
from patron.otp import service as otp
from patron.otp.channel import DemoSmsChannel
from patron.otp.domain import OtpLimits
from patron.otp.models import OtpCode
from tests.portal.helpers import CIPHER, KEY, SH

LIMITS = OtpLimits(resend_seconds=60, daily_cap=3, max_attempts=5, ttl=timedelta(minutes=5))
PHONE = "13800138000"


def _send(database, clock, channel, phone=PHONE):
    with database.unit_of_work() as s:
        otp.send_code(s, CIPHER, KEY, channel, phone, now=clock.now(), tz=SH, limits=LIMITS)
    sent = channel.recent()[0]
    return re.search(r"\d{6}", sent.text).group(0)  # type: ignore[union-attr]


def _verify(database, clock, code, phone=PHONE):
    # like the page: a refused check still commits its attempt counter
    with database.unit_of_work() as s:
        try:
            return otp.verify_code(s, CIPHER, KEY, phone, code, now=clock.now(), limits=LIMITS)
        except otp.OtpRefused as exc:
            return exc.code


def test_one_code_per_minute_and_a_daily_cap_per_business_day(database, clock):
    channel = DemoSmsChannel()
    clock.set(datetime(2026, 3, 1, 15, 50, tzinfo=UTC))  # 23:50 in Shanghai
    _send(database, clock, channel)
    with pytest.raises(otp.OtpRefused) as too_soon:
        _send(database, clock, channel)
    assert too_soon.value.code == "otp_too_soon"
    assert too_soon.value.details["seconds"] == 60
    clock.advance(timedelta(seconds=59))
    with pytest.raises(otp.OtpRefused):
        _send(database, clock, channel)
    clock.advance(timedelta(seconds=1))
    _send(database, clock, channel)
    clock.advance(timedelta(seconds=60))
    _send(database, clock, channel)  # third today
    clock.advance(timedelta(seconds=60))
    with pytest.raises(otp.OtpRefused) as capped:
        _send(database, clock, channel)
    assert capped.value.code == "otp_daily_cap"
    # 00:00 in Shanghai is a new business day (16:00 UTC), though still 1 March in UTC
    clock.set(datetime(2026, 3, 1, 16, 0, 5, tzinfo=UTC))
    _send(database, clock, channel)
    assert len(channel.recent()) == 4
    # another phone is not affected by the first one's limits
    _send(database, clock, channel, phone="13900139000")


def test_right_code_signs_in_once_and_is_hashed_at_rest(database, clock):
    channel = DemoSmsChannel()
    code = _send(database, clock, channel)
    with database.unit_of_work() as s:
        row = s.scalar(select(OtpCode))
        assert row is not None
        assert code not in (row.code_hash, row.phone_index)
        assert row.code_hash == domain.hash_code(KEY, row.phone_index, code)
    assert _verify(database, clock, code, phone="+86 138 0013 8000") == "+8613800138000"
    assert _verify(database, clock, code) == "otp_missing"  # used up


def test_five_attempts_per_code_then_locked(database, clock):
    channel = DemoSmsChannel()
    code = _send(database, clock, channel)
    wrong = "000000" if code != "000000" else "111111"
    assert [_verify(database, clock, wrong) for _ in range(5)] == ["otp_wrong"] * 4 + ["otp_locked"]
    assert _verify(database, clock, code) == "otp_locked"  # even the right code now
    with database.unit_of_work() as s:
        assert s.scalar(select(OtpCode.attempts)) == 5
    clock.advance(timedelta(seconds=60))
    fresh = _send(database, clock, channel)
    assert _verify(database, clock, fresh) == "+8613800138000"


def test_codes_expire_after_five_minutes_and_a_new_code_replaces_the_old(database, clock):
    channel = DemoSmsChannel()
    first = _send(database, clock, channel)
    clock.advance(timedelta(minutes=5))
    assert _verify(database, clock, first) == "otp_expired"
    second = _send(database, clock, channel)
    clock.advance(timedelta(seconds=61))
    third = _send(database, clock, channel)
    if second != third:
        assert _verify(database, clock, second) == "otp_wrong"
    clock.advance(timedelta(minutes=4, seconds=59))
    assert _verify(database, clock, third) == "+8613800138000"


def test_pure_limits():
    now = datetime(2026, 3, 1, tzinfo=UTC)
    assert domain.send_refusal(None, 0, now, LIMITS) is None
    assert domain.send_refusal(now - timedelta(seconds=30), 1, now, LIMITS) == "otp_too_soon"
    assert domain.send_refusal(now - timedelta(seconds=60), 3, now, LIMITS) == "otp_daily_cap"
    assert domain.seconds_until_resend(now - timedelta(seconds=30.5), now, LIMITS) == 30
    assert len(domain.new_code()) == 6
    capped = OtpLimits(source_hourly_cap=2)
    assert domain.send_refusal(None, 0, now, capped, sent_from_source_last_hour=1) is None
    assert domain.send_refusal(None, 0, now, capped, 2) == "otp_source_cap"
    assert domain.source_index(KEY, "10.0.0.1") != domain.source_index(KEY, "10.0.0.2")
    # an IPv6 client holds its whole /64: its addresses count as one
    assert domain.source_index(KEY, "2001:db8::1") == domain.source_index(KEY, "2001:db8::ff:2")
    assert domain.source_index(KEY, "2001:db8::1") != domain.source_index(KEY, "2001:db8:0:1::1")


def test_one_client_address_gets_only_so_many_codes_an_hour_over_all_phones(database, clock):
    """Spraying codes over many phones (5 guesses each) or using up strangers' daily caps from
    one address stops at the hourly cap; other addresses and the next hour are not affected,
    and the address is stored only as a keyed hash."""
    limits = OtpLimits(source_hourly_cap=3)
    channel = DemoSmsChannel()

    def send(phone: str, source: str) -> str | None:
        with database.unit_of_work() as s:
            try:
                otp.send_code(
                    s, CIPHER, KEY, channel, phone, now=clock.now(), tz=SH, limits=limits,
                    source=source,
                )  # fmt: skip
            except otp.OtpRefused as exc:
                return exc.code
        return None

    phones = [f"1380013800{i}" for i in range(5)]
    assert [send(p, "203.0.113.7") for p in phones[:3]] == [None, None, None]
    assert send(phones[3], "203.0.113.7") == "otp_source_cap"
    assert send(phones[3], "198.51.100.2") is None  # another client
    with database.unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(OtpCode)) == 4  # the refusal wrote none
        stored = {row.source_index for row in s.scalars(select(OtpCode))}
    assert not any("203.0.113.7" in (value or "") for value in stored)
    clock.advance(timedelta(minutes=59, seconds=59))
    assert send(phones[4], "203.0.113.7") == "otp_source_cap"
    clock.advance(timedelta(seconds=2))  # the first code is more than an hour old
    assert send(phones[4], "203.0.113.7") is None
