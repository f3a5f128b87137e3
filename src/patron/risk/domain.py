"""Pure rules of risk review: which signals fire on a redemption's facts, the score they make
with the anomaly model's, and what the score asks for. No I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SECTION: Final = "risk"

Rule = Literal[
    "member_velocity",
    "store_velocity",
    "new_member_redeems",
    "shared_phone_prefix",
    "refunds_after_redemption",
    "unusual_adjustments",
    "device_velocity",
]
#: what each rule adds to the score (0–100) when it fires
WEIGHTS: Final[dict[str, int]] = {
    "member_velocity": 40,
    "store_velocity": 20,
    "new_member_redeems": 35,
    "shared_phone_prefix": 35,
    "refunds_after_redemption": 30,
    "unusual_adjustments": 30,
    "device_velocity": 40,
}
Decision = Literal["allow", "step_up", "review"]


class RiskSettings(BaseModel):
    """Program section ``risk``: the rules' limits and the thresholds of the score."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    #: at or above: an SMS code to the member (step-up verification)
    step_up_threshold: int = Field(default=50, ge=1, le=100)
    #: at or above: an operator decides (manual review queue)
    review_threshold: int = Field(default=80, ge=1, le=100)
    member_per_hour: int = Field(default=3, ge=1, le=1000)  # redemptions of one member
    store_per_hour: int = Field(default=30, ge=1, le=100_000)  # pickups at one store
    #: redemptions from one device (any members) in an hour; a request naming no device
    #: is not counted
    device_per_hour: int = Field(default=3, ge=1, le=10_000)
    new_member_hours: int = Field(default=24, ge=1, le=24 * 90)
    new_member_points: int = Field(default=2_000, ge=0, le=10**9)
    prefix_digits: int = Field(default=7, ge=3, le=10)  # 139 1234 ····
    prefix_members: int = Field(default=5, ge=2, le=10_000)  # new members on one prefix
    prefix_days: int = Field(default=7, ge=1, le=90)
    refund_days: int = Field(default=30, ge=1, le=365)
    refunds_after_redemption: int = Field(default=2, ge=1, le=1000)
    adjust_days: int = Field(default=7, ge=1, le=90)
    #: points one staff member credited by hand to members in ``adjust_days``
    unusual_adjust_points: int = Field(default=20_000, ge=1, le=10**9)
    #: the anomaly model's most points (its score 0–1 times this)
    model_weight: int = Field(default=30, ge=0, le=100)
    model_min_samples: int = Field(default=200, ge=20, le=1_000_000)
    model_refresh_minutes: int = Field(default=60, ge=1, le=24 * 60)
    #: how long a verified or approved review lets the member redeem that gift
    pass_minutes: int = Field(default=60, ge=1, le=7 * 24 * 60)
    # earning, looked at after the fact by the hourly pass (``risk.earning``)
    #: at or above: an earning review (an order or a manual credit) goes to the queue
    earning_review_threshold: int = Field(default=40, ge=1, le=100)
    #: how far back the pass reads orders (hours)
    earn_scan_hours: int = Field(default=48, ge=1, le=24 * 30)
    earn_member_per_hour: int = Field(default=5, ge=1, le=1000)  # orders of one member
    #: more than this many members ordering at one store within ``earn_store_minutes``
    earn_store_members: int = Field(default=20, ge=2, le=100_000)
    earn_store_minutes: int = Field(default=2, ge=1, le=60)
    earn_new_member_hours: int = Field(default=24, ge=1, le=24 * 90)
    earn_new_member_points: int = Field(default=5_000, ge=1, le=10**9)
    #: points that returns within ``earn_return_days`` took back (earn-and-return cycling)
    earn_return_points: int = Field(default=3_000, ge=1, le=10**9)
    earn_return_days: int = Field(default=30, ge=1, le=365)

    @model_validator(mode="after")
    def _ordered(self) -> RiskSettings:
        if self.review_threshold < self.step_up_threshold:
            raise ValueError("review_threshold must not be below step_up_threshold")
        return self


@dataclass(frozen=True, slots=True)
class Facts:
    """What the assessment read about the redemption (one statement per kind)."""

    points: int
    member_last_hour: int
    store_last_hour: int
    member_age_hours: float
    #: new members sharing this member's phone prefix (the prefix job's flag; 0 when none)
    prefix_new_members: int
    refunds_after_redemption: int
    #: the adjustment volume of the busiest staff member who credited this member by hand
    staff_adjust_points: int
    #: redemptions from the request's device in the last hour (0 when it names none)
    device_last_hour: int = 0


def fired(s: RiskSettings, f: Facts) -> list[str]:
    """The rules the facts break (a redemption being made counts as one more)."""
    out: list[str] = []
    if f.member_last_hour + 1 > s.member_per_hour:
        out.append("member_velocity")
    if f.store_last_hour + 1 > s.store_per_hour:
        out.append("store_velocity")
    if f.member_age_hours < s.new_member_hours and f.points >= s.new_member_points:
        out.append("new_member_redeems")
    if f.prefix_new_members >= s.prefix_members:
        out.append("shared_phone_prefix")
    if f.refunds_after_redemption >= s.refunds_after_redemption:
        out.append("refunds_after_redemption")
    if f.staff_adjust_points >= s.unusual_adjust_points:
        out.append("unusual_adjustments")
    if f.device_last_hour + 1 > s.device_per_hour:
        out.append("device_velocity")
    return out


def score(s: RiskSettings, rules: list[str], anomaly: float | None) -> int:
    """0–100: the weights of the rules that fired plus the model's share."""
    total = sum(WEIGHTS[r] for r in rules)
    if anomaly is not None:
        total += round(max(0.0, min(1.0, anomaly)) * s.model_weight)
    return min(100, total)


def decide(s: RiskSettings, value: int) -> Decision:
    if value >= s.review_threshold:
        return "review"
    if value >= s.step_up_threshold:
        return "step_up"
    return "allow"


def features(f: Facts) -> list[float]:
    """The model's view of a redemption (the same numbers the rules read)."""
    return [
        float(f.points),
        float(f.member_last_hour),
        float(f.store_last_hour),
        min(f.member_age_hours, 24 * 365.0),
        float(f.refunds_after_redemption),
        float(f.staff_adjust_points),
    ]


EarningRule = Literal[
    "earning_velocity",
    "store_burst",
    "new_member_earns",
    "earn_and_return",
    "unusual_adjustments",
    "shared_phone_prefix",
]
#: what each earning rule adds to an order's (or manual credit's) score
EARNING_WEIGHTS: Final[dict[str, int]] = {
    "earning_velocity": 40,
    "store_burst": 25,
    "new_member_earns": 40,
    "earn_and_return": 40,
    "unusual_adjustments": 40,
    "shared_phone_prefix": 20,  # alone it opens nothing: many families share a prefix
}


def earning_score(rules: set[str] | list[str]) -> int:
    return min(100, sum(EARNING_WEIGHTS[r] for r in rules))


@dataclass(frozen=True, slots=True)
class Stamp:
    """One order in time: what the sliding windows of the earning rules read."""

    order_id: int
    key: int | str  # the member or the store
    member_id: int
    at_seconds: float


def over_in_window(
    stamps: list[Stamp], window_seconds: float, limit: int, *, distinct: bool
) -> set[int]:
    """The orders that, counted with those of the same key in the ``window`` before them, make
    more than ``limit`` (orders, or distinct members when ``distinct``). ``stamps`` sorted by
    key then time; one pass with a moving start."""
    out: set[int] = set()
    start = 0
    for i, cur in enumerate(stamps):
        if i and stamps[i - 1].key != cur.key:
            start = i
        while stamps[start].at_seconds <= cur.at_seconds - window_seconds:
            start += 1
        span = stamps[start : i + 1]
        n = len({x.member_id for x in span}) if distinct else len(span)
        if n > limit and distinct:  # a burst of many members: each of its orders
            out.update(x.order_id for x in span)
        elif n > limit:  # one member's: the orders beyond the limit
            out.add(cur.order_id)
    return out


def precision(flagged: set[int], fraud: set[int]) -> float | None:
    """Of the members the rules flagged, the share that were fraud (None: none flagged)."""
    if not flagged:
        return None
    return len(flagged & fraud) / len(flagged)
