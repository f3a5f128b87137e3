"""Pure campaign rules: schedules in the business timezone, audiences, budgets, action caps.

A campaign's schedule and audience compile to an earning-rules window (``rules.definitions``),
so the earning engine and the campaign pages evaluate one definition of "is it on today".
Every number here is integer: points, fen, basis points.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any, Final, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    model_validator,
)

from patron.kit.timeutil import BoundedDateTime
from patron.rules.definitions import (
    BP,
    MAX_FACTOR_BP,
    AnyWindow,
    Holdout,
    TimeWindow,
    window_active,
)

SECTION: Final = "campaigns"
MAX_POINTS: Final = 1_000_000_000
MAX_FEN: Final = 100_000_000_000
CodeStr = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,39}$")]
TagName = Annotated[str, Field(min_length=1, max_length=32)]
TierCode = Annotated[str, Field(min_length=1, max_length=32)]


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CampaignSettings(_Data):
    """Operator-editable campaign settings (program section ``campaigns``), seed defaults."""

    #: a budget stops giving at this share of itself (the seeds: "预算使用上限 95%")
    budget_cap_bp: int = Field(default=9_500, ge=1, le=BP)
    #: what 100 points cost the brand, in fen (100 points = ¥1 by default), for costs and ROI
    point_cost_fen_per_100: int = Field(default=100, ge=0, le=100_000)
    #: share of the audience held out as a control group when a campaign does not say
    default_control_bp: int = Field(default=0, ge=0, le=5_000)


# ---------------------------------------------------------------- schedules


class _Recurring(_Data):
    active_from: date | None = None
    active_until: date | None = None

    @model_validator(mode="after")
    def _check_active(self) -> Self:
        if self.active_from and self.active_until and self.active_until < self.active_from:
            raise ValueError("active_until is before active_from")
        return self


class OneOff(_Data):
    """One stretch of business dates, inclusive (a double-points weekend, a launch week)."""

    kind: Literal["one_off"] = "one_off"
    start: date
    end: date

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.end < self.start:
            raise ValueError("end is before start")
        if self.end - self.start > timedelta(days=366):
            raise ValueError("a one-off campaign may span at most 366 days")
        return self


class Weekly(_Recurring):
    """A member day on weekdays (ISO: 1 = Monday … 7 = Sunday)."""

    kind: Literal["weekly"] = "weekly"
    weekdays: tuple[Annotated[int, Field(ge=1, le=7)], ...] = Field(min_length=1, max_length=7)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        if len(set(self.weekdays)) != len(self.weekdays):
            raise ValueError("weekdays repeat")
        return self


class Monthly(_Recurring):
    """A member day on dates of every month (the 8th, the 18th …)."""

    kind: Literal["monthly"] = "monthly"
    days: tuple[Annotated[int, Field(ge=1, le=31)], ...] = Field(min_length=1, max_length=31)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        if len(set(self.days)) != len(self.days):
            raise ValueError("days of the month repeat")
        return self


class LastWeekend(_Recurring):
    """Redemption day: the last weekend of every month."""

    kind: Literal["last_weekend"] = "last_weekend"


class Annual(_Recurring):
    """An annual carnival: month-day to month-day every year (may run over the new year)."""

    kind: Literal["annual"] = "annual"
    start_month: int = Field(ge=1, le=12)
    start_day: int = Field(ge=1, le=31)
    end_month: int = Field(ge=1, le=12)
    end_day: int = Field(ge=1, le=31)

    @model_validator(mode="after")
    def _check_days(self) -> Self:
        for month, day in ((self.start_month, self.start_day), (self.end_month, self.end_day)):
            try:
                date(2024, month, day)  # a leap year: 02-29 is allowed, 04-31 is not
            except ValueError as exc:
                raise ValueError(f"{month:02d}-{day:02d} is not a date") from exc
        return self


class BirthdayMonth(_Recurring):
    """Birthday-month privileges: each member's own birthday month."""

    kind: Literal["birthday_month"] = "birthday_month"


Schedule = Annotated[
    OneOff | Weekly | Monthly | LastWeekend | Annual | BirthdayMonth, Field(discriminator="kind")
]
_WINDOW: TypeAdapter[AnyWindow] = TypeAdapter(TimeWindow)
_SCHEDULE: TypeAdapter[OneOff | Weekly | Monthly | LastWeekend | Annual | BirthdayMonth] = (
    TypeAdapter(Schedule)
)


def parse_schedule(
    data: dict[str, Any],
) -> OneOff | Weekly | Monthly | LastWeekend | Annual | BirthdayMonth:
    return _SCHEDULE.validate_python(data)


class Audience(_Data):
    """Who a campaign targets. Empty lists mean everyone; a saved segment (by code) narrows it
    further. ``service.audience_filter`` is the one place that turns an audience into SQL."""

    segment: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")] | None = None
    tiers: tuple[TierCode, ...] = Field(default=(), max_length=50)
    tags: tuple[TagName, ...] = Field(default=(), max_length=50)
    joined_from: date | None = None
    joined_until: date | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.joined_from and self.joined_until and self.joined_until < self.joined_from:
            raise ValueError("joined_until is before joined_from")
        return self


def window_id(campaign_id: int) -> str:
    """The earning-rules window (and budget row) of a campaign."""
    return f"campaign-{campaign_id}"


def to_window(
    schedule: OneOff | Weekly | Monthly | LastWeekend | Annual | BirthdayMonth,
    *,
    campaign_id: int,
    name: str,
    multiplier_bp: int,
    audience: Audience,
    budget_points: int | None,
    holdout: Holdout | None,
) -> AnyWindow:
    """The window the earning engine applies for a campaign (a one-off is a date range)."""
    data = schedule.model_dump()
    if data["kind"] == "one_off":
        data["kind"] = "date_range"
    data |= {
        "id": window_id(campaign_id),
        "name": name[:100],
        "multiplier_bp": multiplier_bp,
        "budget_points": budget_points,
        "tiers": audience.tiers,
        "joined_from": audience.joined_from,
        "joined_until": audience.joined_until,
        "holdout": holdout,
        "campaign_id": campaign_id,
    }
    return _WINDOW.validate_python(data)


def is_on(
    schedule: OneOff | Weekly | Monthly | LastWeekend | Annual | BirthdayMonth, day: date
) -> bool:
    """Whether the schedule is on for the business date ``day`` (a birthday month is on every
    day: which members it applies to is the audience's business)."""
    window = to_window(
        schedule,
        campaign_id=0,
        name="",
        multiplier_bp=BP,
        audience=Audience(),
        budget_points=None,
        holdout=None,
    )
    return window_active(window, day)


def next_days(
    schedule: OneOff | Weekly | Monthly | LastWeekend | Annual | BirthdayMonth,
    today: date,
    *,
    count: int = 5,
    horizon_days: int = 400,
) -> list[date]:
    """The next ``count`` business dates (today included) the schedule is on."""
    out: list[date] = []
    for offset in range(horizon_days):
        day = today + timedelta(days=offset)
        if is_on(schedule, day):
            out.append(day)
            if len(out) == count:
                break
    return out


def period(
    schedule: OneOff | Weekly | Monthly | LastWeekend | Annual | BirthdayMonth,
) -> tuple[date | None, date | None]:
    """First and last business dates the schedule can be on (None: open)."""
    if isinstance(schedule, OneOff):
        return schedule.start, schedule.end
    return schedule.active_from, schedule.active_until


# ---------------------------------------------------------------- budgets


def points_cost_fen(points: int, fen_per_100: int) -> int:
    """What ``points`` cost in fen, rounded up (a cost is never understated)."""
    return -(-points * fen_per_100 // 100)


def points_cap(
    *, budget_points: int | None, budget_fen: int | None, cap_bp: int, fen_per_100: int
) -> int | None:
    """Most points a campaign may give: the smaller of its points budget and what its money
    budget buys, times the usage cap (95 %). None: the campaign has no budget."""
    limits: list[int] = []
    if budget_points is not None:
        limits.append(budget_points)
    if budget_fen is not None:
        limits.append(budget_fen * 100 // fen_per_100 if fen_per_100 else MAX_POINTS)
    if not limits:
        return None
    return min(limits) * cap_bp // BP


def budget_reached(used: int, cap: int | None) -> bool:
    return cap is not None and used >= cap


# ---------------------------------------------------------------- actions that earn

ActionKind = Literal["share", "review", "survey", "quiz"]


def action_points(
    points: int,
    *,
    done_today: int,
    done_total: int,
    daily_cap: int | None,
    total_cap: int | None,
    budget_left: int | None,
) -> tuple[int, str | None]:
    """Points one more action earns and, when it earns nothing, why (a stable reason code)."""
    if daily_cap is not None and done_today >= daily_cap:
        return 0, "daily_cap"
    if total_cap is not None and done_total >= total_cap:
        return 0, "total_cap"
    if budget_left is not None and budget_left < points:
        return 0, "budget"
    return points, None


def validate_multiplier(multiplier_bp: int | None) -> None:
    if multiplier_bp is not None and not BP <= multiplier_bp <= MAX_FACTOR_BP:
        raise ValueError("multiplier_bp must be between 10000 (×1) and 100000 (×10)")


# ---------------------------------------------------------------- referral (A5, X6)

REFERRAL_SECTION: Final = "referral"
MAX_REWARD_GROWTH: Final = 1_000_000
TemplateCode = Annotated[str, Field(min_length=1, max_length=64)]


class ReferralSettings(_Data):
    """Operator-editable referral settings (program section ``referral``)."""

    enabled: bool = True
    #: referees who joined before this instant are ignored (set it when switching referral on
    #: over existing members, so their old referrals are not rewarded retroactively)
    joined_after: BoundedDateTime | None = None
    referrer_points: int = Field(default=500, ge=0, le=1_000_000)
    referee_points: int = Field(default=200, ge=0, le=1_000_000)
    #: the referee's first order paying at least this much qualifies (not the sign-up)
    min_order_fen: int = Field(default=1, ge=1, le=MAX_FEN)
    #: most rewarded referrals per referrer; more are refused
    max_per_referrer: int = Field(default=20, ge=1, le=10_000)
    #: more referees than this whose phones share a prefix within the window are held for review
    burst_limit: int = Field(default=5, ge=1, le=10_000)
    burst_hours: int = Field(default=24, ge=1, le=24 * 30)
    #: digits of the E.164 number (without "+") that make the prefix: 86 + 5 digits = 138 0013
    prefix_digits: int = Field(default=7, ge=3, le=8)
    #: a coupon (a template's code) each side gets with its points; none: points only
    referrer_coupon: TemplateCode | None = None
    referee_coupon: TemplateCode | None = None
    #: growth value (成长值) the referrer gets toward the next tier
    referrer_growth: int = Field(default=0, ge=0, le=MAX_REWARD_GROWTH)
    #: the tier-up option: the referrer also gets the growth it lacks for the next tier, so
    #: the ladder itself lifts it (and its evaluation keeps it while the window holds it)
    referrer_tier_up: bool = False

    def coupon_of(self, side: str) -> str | None:
        return self.referrer_coupon if side == "referrer" else self.referee_coupon


def phone_prefix(e164: str, digits: int) -> str:
    return e164.lstrip("+")[:digits]


def referral_verdict(
    *,
    referrer_id: int,
    referee_id: int,
    mutual: bool,
    same_prefix_recent: int,
    settings: ReferralSettings,
) -> tuple[str, str | None]:
    """The status of a new referral (pending, refused or held) and why."""
    if referrer_id == referee_id or mutual:
        return "refused", "self_referral"
    if same_prefix_recent >= settings.burst_limit:
        return "held", "phone_prefix_burst"
    return "pending", None


def qualify_verdict(
    *, rewarded_so_far: int, order_net_fen: int | None, settings: ReferralSettings
) -> tuple[str | None, str | None]:
    """What a pending referral becomes now: None (still waiting for a qualifying order),
    rewarded, or refused (the referrer's cap)."""
    if order_net_fen is None or order_net_fen < settings.min_order_fen:
        return None, None
    if rewarded_so_far >= settings.max_per_referrer:
        return "refused", "referrer_cap"
    return "rewarded", None


def referrer_growth(
    settings: ReferralSettings, *, window_growth: int, next_threshold: int | None
) -> int:
    """The growth a referrer's reward gives: the set amount, raised with the tier-up option
    to what the referrer lacks for the next tier (nothing more at the top of the ladder)."""
    growth = settings.referrer_growth
    if settings.referrer_tier_up and next_threshold is not None:
        growth = max(growth, next_threshold - window_growth)
    return min(max(growth, 0), MAX_REWARD_GROWTH)
