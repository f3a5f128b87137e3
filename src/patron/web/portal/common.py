"""What every portal module needs: the signed-in member (only ever from the session), the
ledger context, keys, the business timezone and the SMS channel."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from fastapi import Request
from sqlalchemy.orm import Session

from patron.auth.principal import Principal
from patron.config import Settings
from patron.errors import Conflict
from patron.kit.crypto import FieldCipher
from patron.kit.timeutil import business_tz
from patron.ledger.service import Ctx
from patron.members.models import Member
from patron.otp.channel import DemoSmsChannel, SmsChannel
from patron.otp.domain import OtpLimits
from patron.web.context import request_ctx
from patron.web.pages import Viewer, get_session

# Where codes go to the demo channel (the log) when no SMS provider is set.
DEMO_ENVS = frozenset({"demo", "test", "development"})
# Where the demo inbox page shows them: only an explicit demo (or the tests), never a deployment
# that merely forgot to set PATRON_ENV (the default, development).
DEMO_PAGE_ENVS = frozenset({"demo", "test"})


def settings(request: Request) -> Settings:
    value: Settings = request.app.state.settings
    return value


def now(request: Request) -> datetime:
    value: datetime = request.app.state.clock.now()
    return value


def tz(request: Request) -> ZoneInfo:
    return business_tz(settings(request).business_timezone)


def cipher(request: Request) -> FieldCipher:
    value: FieldCipher = request.app.state.cipher
    return value


def token_key(request: Request) -> bytes:
    value: bytes = request.app.state.keys["token_key"]
    return value


def member(request: Request, viewer: Viewer) -> Member:
    """The signed-in member. Portal pages take no member id from the URL or the form: this is
    the only way to a member, so one member's session can never reach another's data."""
    assert viewer.principal.kind == "member"
    assert viewer.principal.id is not None
    found = viewer.extra.get("member")  # MemberPage loaded it in this transaction
    if not isinstance(found, Member) or found.id != viewer.principal.id:
        found = get_session(request).get(Member, viewer.principal.id)
    assert found is not None
    return found


def actor(member: Member) -> Principal:
    return Principal(kind="member", id=member.id, label=f"member:{member.member_no}")


def ctx(request: Request, member: Member) -> Ctx:
    return request_ctx(request, get_session(request), actor(member))


def session(request: Request) -> Session:
    return get_session(request)


def otp_limits(request: Request) -> OtpLimits:
    from datetime import timedelta

    s = settings(request)
    return OtpLimits(
        resend_seconds=s.otp_resend_seconds,
        daily_cap=s.otp_daily_cap,
        max_attempts=s.otp_max_attempts,
        ttl=timedelta(minutes=s.otp_ttl_minutes),
        source_hourly_cap=s.otp_source_hourly_cap,
    )


def sms_channel(request: Request) -> SmsChannel:
    """The app's SMS channel. A deployment sets ``app.state.sms_channel`` to its provider;
    outside production the demo channel is used; production without a provider refuses."""
    state = request.app.state
    channel: SmsChannel | None = getattr(state, "sms_channel", None)
    if channel is not None:
        return channel
    if settings(request).env not in DEMO_ENVS:
        raise Conflict("sms_not_configured", "Sign-in by SMS is not available yet.")
    demo = DemoSmsChannel()
    state.sms_channel = demo
    return demo


def demo_channel(request: Request) -> DemoSmsChannel | None:
    if settings(request).env not in DEMO_PAGE_ENVS:
        return None
    channel = sms_channel(request)
    return channel if isinstance(channel, DemoSmsChannel) else None
