"""Pure rules of the service desk: categories, priorities, SLA targets, queues and NPS.

No I/O: the service module feeds these with what it read."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SECTION: Final = "service"

Category = Literal["missing_points", "benefit", "redemption", "account", "complaint", "other"]
CATEGORIES: Final[tuple[Category, ...]] = (
    "missing_points",
    "benefit",
    "redemption",
    "account",
    "complaint",
    "other",
)
Priority = Literal["low", "normal", "high", "urgent"]
PRIORITIES: Final[tuple[Priority, ...]] = ("low", "normal", "high", "urgent")
Status = Literal["open", "in_progress", "resolved"]
STATUSES: Final[tuple[Status, ...]] = ("open", "in_progress", "resolved")
Channel = Literal["portal", "desk", "console", "api"]
Queue = Literal["standard", "vip"]

#: the bounds of a response target the seed plans give (5 minutes to 2 hours)
MIN_MINUTES: Final = 5
MAX_MINUTES: Final = 120


class SlaTarget(BaseModel):
    """A first-response target; ``*`` matches any category or tier. The most specific wins:
    category and tier, then tier alone, then category alone, then the default."""

    model_config = ConfigDict(extra="forbid")

    category: Category | Literal["*"] = "*"
    tier: str = Field(default="*", min_length=1, max_length=32)
    minutes: int = Field(ge=MIN_MINUTES, le=MAX_MINUTES)


def _default_targets() -> list[SlaTarget]:
    return [
        SlaTarget(category="missing_points", minutes=60),
        SlaTarget(category="complaint", minutes=30),
        SlaTarget(tier="gold", minutes=30),
        SlaTarget(tier="diamond", minutes=15),
        SlaTarget(category="complaint", tier="diamond", minutes=5),
    ]


class NpsSchedule(BaseModel):
    """Scheduled NPS surveys: every ``interval_days`` a sample of members who agreed to
    messages is asked, through messaging, how likely they are to recommend us; no member is
    asked again within ``member_days``."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    interval_days: int = Field(default=30, ge=1, le=365)
    #: members asked per round, at most
    sample: int = Field(default=500, ge=1, le=100_000)
    member_days: int = Field(default=90, ge=1, le=730)
    #: a message template to send (it should carry the survey link); none: Patron's own text
    template: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,40}$")


def nps_round_due(schedule: NpsSchedule, last_round: datetime | None, now: datetime) -> bool:
    """Whether a scheduled round is due: enabled, and the last one is ``interval_days`` old."""
    if not schedule.enabled:
        return False
    return last_round is None or now - last_round >= timedelta(days=schedule.interval_days)


class ServiceSettings(BaseModel):
    """Program section ``service``: response targets and the dedicated queue of high tiers."""

    model_config = ConfigDict(extra="forbid")

    default_minutes: int = Field(default=120, ge=MIN_MINUTES, le=MAX_MINUTES)
    targets: list[SlaTarget] = Field(default_factory=_default_targets, max_length=200)
    #: tiers whose tickets go to the dedicated (VIP) queue
    vip_tiers: list[str] = Field(default_factory=lambda: ["diamond"], max_length=20)
    #: the staff user (username) who takes VIP tickets as they arrive; none: the VIP queue
    vip_advisor: str | None = Field(default=None, max_length=64)
    #: an urgent ticket's target is this share of its category's (in percent, at least 5 min)
    urgent_percent: int = Field(default=50, ge=10, le=100)
    nps_schedule: NpsSchedule = Field(default_factory=NpsSchedule)

    @model_validator(mode="after")
    def _unique(self) -> ServiceSettings:
        seen = {(t.category, t.tier) for t in self.targets}
        if len(seen) != len(self.targets):
            raise ValueError("two targets for the same category and tier")
        return self


def response_minutes(
    settings: ServiceSettings, category: str, tier: str, priority: str = "normal"
) -> int:
    """The first-response target of a ticket, in minutes (5 – 120)."""
    best: tuple[int, int] | None = None  # (specificity, minutes)
    for t in settings.targets:
        if t.category not in ("*", category) or t.tier not in ("*", tier):
            continue
        rank = (2 if t.tier != "*" else 0) + (1 if t.category != "*" else 0)
        if best is None or rank > best[0]:
            best = (rank, t.minutes)
    minutes = best[1] if best else settings.default_minutes
    if priority == "urgent":
        minutes = minutes * settings.urgent_percent // 100
    return max(MIN_MINUTES, min(MAX_MINUTES, minutes))


def response_due(
    settings: ServiceSettings, category: str, tier: str, priority: str, opened_at: datetime
) -> datetime:
    return opened_at + timedelta(minutes=response_minutes(settings, category, tier, priority))


def queue_of(settings: ServiceSettings, tier: str) -> Queue:
    return "vip" if tier in settings.vip_tiers else "standard"


def breached(due: datetime, first_response_at: datetime | None, status: str, now: datetime) -> bool:
    """Past its response target with no answer yet (a resolved ticket was answered)."""
    return first_response_at is None and status != "resolved" and now > due


# --- Net Promoter Score -------------------------------------------------------------------


def nps_band(score: int) -> Literal["promoter", "passive", "detractor"]:
    if score >= 9:
        return "promoter"
    if score >= 7:
        return "passive"
    return "detractor"


def nps(scores: Iterable[int]) -> int | None:
    """Percent promoters minus percent detractors, rounded (−100 … 100); None without answers."""
    values = list(scores)
    if not values:
        return None
    promoters = sum(1 for s in values if s >= 9)
    detractors = sum(1 for s in values if s <= 6)
    return round(100 * (promoters - detractors) / len(values))


# --- Knowledge base search ------------------------------------------------------------------


def terms(text: str) -> list[str]:
    """Search terms of a query: words of Latin text, and for Chinese (no spaces) overlapping
    pairs of characters, so "积分没到账" finds an article about "积分到账"."""
    out: list[str] = []
    word = ""
    han = ""
    for ch in text.lower():
        if "\u4e00" <= ch <= "\u9fff":
            if word:
                out.append(word)
                word = ""
            han += ch
            continue
        if han:
            out.extend(_pairs(han))
            han = ""
        if ch.isalnum():
            word += ch
        elif word:
            out.append(word)
            word = ""
    if word:
        out.append(word)
    if han:
        out.extend(_pairs(han))
    return [t for t in dict.fromkeys(out) if len(t) >= 2 or "\u4e00" <= t[0] <= "\u9fff"]


def _pairs(han: str) -> list[str]:
    if len(han) == 1:
        return [han]
    return [han[i : i + 2] for i in range(len(han) - 1)]


def relevance(query_terms: list[str], title: str, body: str, keywords: str) -> int:
    """How well an article answers: a term in the title or keywords counts three times."""
    head = f"{title} {keywords}".lower()
    text = body.lower()
    return sum(3 * (t in head) + (t in text) for t in query_terms)
