"""Pure rules of messaging: the settings section, templates and their variables, the choice of
channel, quiet hours, frequency caps and retry backoff. No I/O."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated, Final, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, StrictInt, WithJsonSchema, field_validator

SECTION: Final = "messaging"
CHANNELS: Final = ("sms", "email", "push", "wechat")
LOCALES: Final = ("zh-CN", "en")
Channel = Literal["sms", "email", "push", "wechat"]

#: Variables a template may use; each is filled per member when the message is queued
#: (``unsubscribeUrl`` when it is sent, as it names the message). camelCase, as providers'
#: own templates (Aliyun ``${name}``, WeChat data keys) name them.
VARIABLES: Final[dict[str, str]] = {
    "name": "the member's name (or a greeting word when unknown)",
    "memberNo": "the member number",
    "points": "the available points balance",
    "tier": "the tier name",
    "expiringPoints": "points that expire within the reminder window",
    "expiryDate": "the date those points expire",
    "coupon": "the name of the coupon a journey issued",
    "recommendedProducts": "the names of the member's top recommended products (scores job)",
    "unsubscribeUrl": "the link that withdraws consent for this channel",
}
SEND_TIME_VARIABLES: Final = frozenset({"unsubscribeUrl"})
_VAR = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_URL = re.compile(r"https?://[^\s<>\"'{}]+")


DEFAULT_FALLBACK: Final[tuple[Channel, ...]] = ("wechat", "push", "sms", "email")
DEFAULT_RATES: Final[dict[Channel, int]] = {"sms": 300, "email": 1200, "push": 3000, "wechat": 1000}


#: A wall-clock time of day in the business timezone ("21:00" or "21:00:00"). JSON Schema's
#: "time" format demands a UTC offset, which a local time of day has not: a pattern says it.
LocalTime = Annotated[
    time,
    WithJsonSchema({"type": "string", "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"}),
]


class MessagingSettings(BaseModel):
    """Operator settings (program section ``messaging``)."""

    model_config = ConfigDict(extra="forbid")
    #: No marketing message leaves between these local times (business timezone); a message
    #: due inside them waits for the end. Equal times: no quiet hours.
    quiet_start: LocalTime = time(21, 0)
    quiet_end: LocalTime = time(8, 0)
    #: At most this many messages per member per business day and per week (Monday to
    #: Sunday), counted across journeys and campaigns; 0 = no cap.
    daily_cap: StrictInt = Field(default=2, ge=0, le=100)
    weekly_cap: StrictInt = Field(default=5, ge=0, le=500)
    #: What happens to a message over a cap: wait for the next day/week, or drop it.
    over_cap: Literal["defer", "drop"] = "defer"
    #: Channels tried after the member's preferred one, in this order.
    fallback: list[Channel] = Field(default_factory=lambda: list(DEFAULT_FALLBACK))
    #: Sends per minute each provider accepts (the queue holds the rest back).
    rate_per_minute: dict[Channel, StrictInt] = Field(default_factory=lambda: dict(DEFAULT_RATES))
    #: Attempts before a message becomes a dead letter.
    max_attempts: StrictInt = Field(default=5, ge=1, le=20)
    #: Emails go out with an HTML part holding a 1×1 image; its loading marks the message
    #: opened. Off: plain text only, and an email counts as opened only when a link is clicked.
    track_opens: bool = True
    #: A purchase within this many days of a click counts as a conversion of the message.
    attribution_days: StrictInt = Field(default=7, ge=1, le=90)

    @field_validator("fallback")
    @classmethod
    def _unique(cls, value: list[Channel]) -> list[Channel]:
        return list(dict.fromkeys(value))


# ---- templates -------------------------------------------------------------------------------


class TemplateError(ValueError):
    def __init__(self, message: str, unknown: list[str] | None = None) -> None:
        super().__init__(message)
        self.unknown = unknown or []


def variables_in(text: str) -> list[str]:
    return [m.group(1) for m in _VAR.finditer(text)]


def check_template(texts: dict[str, str]) -> list[str]:
    """The variables used by these texts; raises if one is unknown or a brace is unbalanced."""
    used: list[str] = []
    for text in texts.values():
        found = variables_in(text)
        stripped = _VAR.sub("", text)
        if "{{" in stripped or "}}" in stripped:
            raise TemplateError("a {{ or }} is not closed")
        used.extend(found)
    unknown = sorted({v for v in used if v not in VARIABLES})
    if unknown:
        raise TemplateError("unknown variables: " + ", ".join(unknown), unknown)
    return sorted(set(used))


def render(text: str, values: dict[str, str]) -> str:
    """Fill the variables; a send-time variable not given yet is kept for the sender."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in values:
            return values[name]
        return match.group(0) if name in SEND_TIME_VARIABLES else ""

    return _VAR.sub(fill, text)


def links_in(text: str) -> list[str]:
    return list(dict.fromkeys(_URL.findall(text)))


def replace_links(text: str, short: dict[str, str]) -> str:
    return _URL.sub(lambda m: short.get(m.group(0), m.group(0)), text)


def email_html(body: str, open_url: str) -> str:
    """The HTML part of an email: the text escaped, its links clickable, its blank lines
    paragraphs, and the 1×1 opening image last (mail clients that block images show nothing)."""

    def paragraph(text: str) -> str:
        out, last = [], 0
        for m in _URL.finditer(text):
            out.append(html.escape(text[last : m.start()]))
            url = html.escape(m.group(0))
            out.append(f'<a href="{url}">{url}</a>')
            last = m.end()
        out.append(html.escape(text[last:]))
        return "<p>" + "".join(out).replace("\n", "<br>\n") + "</p>"

    paragraphs = [p for p in re.split(r"\n\s*\n", body.strip()) if p.strip()]
    pixel = (
        f'<img src="{html.escape(open_url)}" width="1" height="1" alt="" '
        'style="display:block;border:0">'
    )
    return (
        '<!doctype html>\n<html><body style="font-family:sans-serif;line-height:1.5">\n'
        + "\n".join(paragraph(p) for p in paragraphs)
        + f"\n{pixel}\n</body></html>\n"
    )


def pick_locale(wanted: str | None, available: list[str]) -> str:
    if wanted in available:
        return wanted
    return "zh-CN" if "zh-CN" in available else available[0]


# ---- channel choice --------------------------------------------------------------------------


def channel_order(preferred: str | None, fallback: list[Channel]) -> list[str]:
    order = [preferred] if preferred in CHANNELS else []
    return list(dict.fromkeys([*order, *fallback]))


def choose_channel(
    order: list[str], consented: set[str], reachable: set[str], available: set[str]
) -> str | None:
    """The first channel in order the member consented to, can be reached on, and Patron can
    send on; None if there is none (the message is not sent)."""
    for ch in order:
        if ch in consented and ch in reachable and ch in available:
            return ch
    return None


# ---- quiet hours and caps ---------------------------------------------------------------------


def quiet_until(now: datetime, tz: ZoneInfo, start: time, end: time) -> datetime | None:
    """When the quiet hours around ``now`` end, or None if ``now`` is outside them."""
    if start == end:
        return None
    local = now.astimezone(tz)
    t = local.time()
    inside = (start <= t or t < end) if start > end else (start <= t < end)
    if not inside:
        return None
    day = local.date() if t < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tz)


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


@dataclass(frozen=True, slots=True)
class CapVerdict:
    ok: bool
    retry_at: datetime | None = None  # when the cap that refused opens again


def cap_verdict(
    now: datetime,
    tz: ZoneInfo,
    *,
    today: int,
    this_week: int,
    daily_cap: int,
    weekly_cap: int,
    quiet_end: time,
) -> CapVerdict:
    local_day = now.astimezone(tz).date()
    if weekly_cap and this_week >= weekly_cap:
        nxt = week_start(local_day) + timedelta(days=7)
        return CapVerdict(False, datetime.combine(nxt, quiet_end, tz))
    if daily_cap and today >= daily_cap:
        return CapVerdict(False, datetime.combine(local_day + timedelta(days=1), quiet_end, tz))
    return CapVerdict(True)


def day_bounds(now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Start of the business day and of its week, as aware datetimes."""
    day = now.astimezone(tz).date()
    return datetime.combine(day, time(), tz), datetime.combine(week_start(day), time(), tz)


BACKOFF: Final = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=6),
)


def backoff(attempts: int) -> timedelta:
    """Delay before the next attempt after ``attempts`` failures."""
    return BACKOFF[min(max(attempts, 1), len(BACKOFF)) - 1]
