"""Pure rules of the tier ladder (SPEC T1–T5): no I/O, integers only.

Growth value (成长值) drives tiers. Defaults come from the seeds (002): four tiers
普通 / 银卡 / 金卡 / 钻石; discounts 95 / 90 / 85 % (the seeds also quote 90 / 85 / 80 %, hence
settings); points speed +20 % per tier with Diamond doubled; an extra 95 % birthday discount;
dedicated service and a yearly free order for Diamond. The seeds give no single growth threshold
table ("每满100成长值晋升一级", "积分达到10000分可升级为银卡", "消费满5000元即可晋升一级"), so the
default thresholds are 0 / 1,000 / 5,000 / 20,000 growth (growth defaults to 1 per CNY spent:
Silver after ~1,000 CNY, Gold after the seeds' 5,000 CNY upgrade line, Diamond ~4× that).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, Self
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: Growth values are bounded like points (they are sums of bounded postings).
MAX_GROWTH = 1_000_000_000_000
BP = 10_000  # basis points in 100 %

QualificationWindow = Literal["rolling_12_months", "calendar_year"]


class TierBenefits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: price paid in basis points of list price: 9500 = 95 % (5 % off)
    discount_bp: int = Field(default=BP, ge=1, le=BP)
    #: points earned in basis points of the base rate: 12000 = ×1.2
    points_multiplier_bp: int = Field(default=BP, ge=BP, le=10 * BP)
    #: extra discount on the member's birthday, basis points (10000 = none)
    birthday_discount_bp: int = Field(default=BP, ge=1, le=BP)
    free_shipping: bool = False
    free_returns: bool = False
    dedicated_service: bool = False
    priority_purchase: bool = False
    free_orders_per_year: int = Field(default=0, ge=0, le=366)
    badge: str | None = Field(default=None, max_length=64)


class Tier(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    name: str = Field(min_length=1, max_length=64)
    name_zh: str = Field(default="", max_length=64)
    #: growth in the qualification window needed to reach this tier
    threshold: int = Field(ge=0, le=MAX_GROWTH)
    #: growth in the window needed to *keep* the tier at evaluation; defaults to ``threshold``
    retention_threshold: int | None = Field(default=None, ge=0, le=MAX_GROWTH)
    benefits: TierBenefits = Field(default_factory=TierBenefits)

    @property
    def keep_at(self) -> int:
        return self.threshold if self.retention_threshold is None else self.retention_threshold


def _default_tiers() -> list[Tier]:
    return [
        Tier(
            code="regular",
            name="Regular",
            name_zh="普通会员",
            threshold=0,
            benefits=TierBenefits(birthday_discount_bp=9500, badge="regular"),
        ),
        Tier(
            code="silver",
            name="Silver",
            name_zh="银卡会员",
            threshold=1_000,
            retention_threshold=800,
            benefits=TierBenefits(
                discount_bp=9500,
                points_multiplier_bp=12_000,
                birthday_discount_bp=9500,
                badge="silver",
            ),
        ),
        Tier(
            code="gold",
            name="Gold",
            name_zh="金卡会员",
            threshold=5_000,
            retention_threshold=4_000,
            benefits=TierBenefits(
                discount_bp=9000,
                points_multiplier_bp=14_000,
                birthday_discount_bp=9500,
                free_shipping=True,
                free_returns=True,
                badge="gold",
            ),
        ),
        Tier(
            code="diamond",
            name="Diamond",
            name_zh="钻石会员",
            threshold=20_000,
            retention_threshold=16_000,
            benefits=TierBenefits(
                discount_bp=8500,
                points_multiplier_bp=20_000,
                birthday_discount_bp=9500,
                free_shipping=True,
                free_returns=True,
                dedicated_service=True,
                priority_purchase=True,
                free_orders_per_year=1,
                badge="diamond",
            ),
        ),
    ]


def default_ladder() -> TierLadder:
    return TierLadder()


class TierLadder(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tiers: list[Tier] = Field(default_factory=_default_tiers, min_length=3, max_length=5)
    qualification_window: QualificationWindow = "rolling_12_months"
    #: days a member below the retention threshold keeps the tier before the downgrade applies
    grace_days: int = Field(default=30, ge=0, le=366)
    #: when true a refund that takes growth below the current tier's threshold demotes at once
    demote_on_refund: bool = False

    @model_validator(mode="after")
    def _check(self) -> Self:
        codes = [t.code for t in self.tiers]
        if len(set(codes)) != len(codes):
            raise ValueError("tier codes must be unique")
        if self.tiers[0].threshold != 0:
            raise ValueError("the first tier must have threshold 0 (everyone starts there)")
        for lower, upper in zip(self.tiers, self.tiers[1:], strict=False):
            if upper.threshold <= lower.threshold:
                raise ValueError(
                    f"thresholds must strictly increase: {upper.code} ({upper.threshold}) "
                    f"is not above {lower.code} ({lower.threshold})"
                )
        for tier in self.tiers:
            if tier.keep_at > tier.threshold:
                raise ValueError(f"retention threshold of {tier.code} exceeds its threshold")
        return self

    def index(self, code: str) -> int:
        for i, tier in enumerate(self.tiers):
            if tier.code == code:
                return i
        raise KeyError(code)

    def get(self, code: str) -> Tier:
        return self.tiers[self.index(code)]

    @property
    def base(self) -> Tier:
        return self.tiers[0]


# --------------------------------------------------------------------------- qualification


def qualifying_tier(ladder: TierLadder, growth: int) -> Tier:
    """The highest tier whose threshold ``growth`` reaches."""
    best = ladder.base
    for tier in ladder.tiers:
        if growth >= tier.threshold:
            best = tier
    return best


def upgrade_target(ladder: TierLadder, current: str, growth: int) -> Tier | None:
    """Upgrades apply immediately: the qualifying tier if it is above ``current``."""
    target = qualifying_tier(ladder, growth)
    return target if ladder.index(target.code) > _safe_index(ladder, current) else None


def held_through(until: datetime | None, tz: ZoneInfo) -> date | None:
    """The last business day a hand-set tier holds: an override "until 31 Dec" is stored as the
    following midnight (it ends when that day ends), so the day shown is the one before.
    ``None`` when there is no end date (no override, or held until changed again)."""
    if until is None or until.year >= 9999:
        return None
    return (until.astimezone(tz) - timedelta(microseconds=1)).date()


def hold_end(day: date, tz: ZoneInfo) -> datetime:
    """When an override held through business ``day`` ends: the following midnight."""
    return datetime.combine(day + timedelta(days=1), time.min, tz)


def qualified_above(ladder: TierLadder, current: str, growth: int) -> Tier | None:
    """The tier above ``current`` that ``growth`` already qualifies for, if any: a member held
    below it by hand gets it only when the hold ends, so pages say that instead of "0 more"."""
    return upgrade_target(ladder, current, growth)


def refund_demotion_target(ladder: TierLadder, current: str, growth: int) -> Tier | None:
    """With ``demote_on_refund``, a refund that takes growth below the current tier's threshold
    drops the member to the tier the remaining growth qualifies for."""
    if not ladder.demote_on_refund:
        return None
    target = qualifying_tier(ladder, growth)
    return target if ladder.index(target.code) < _safe_index(ladder, current) else None


def _safe_index(ladder: TierLadder, code: str) -> int:
    # A tier removed from the ladder by an operator counts as the base tier.
    try:
        return ladder.index(code)
    except KeyError:
        return 0


@dataclass(frozen=True, slots=True)
class Evaluation:
    action: Literal["keep", "upgrade", "grace", "downgrade"]
    tier: str
    grace_until: datetime | None


def evaluate(
    ladder: TierLadder,
    current: str,
    growth: int,
    *,
    now: datetime,
    grace_until: datetime | None,
) -> Evaluation:
    """Periodic evaluation. Upgrades still apply; a member below the current tier's retention
    threshold first gets ``grace_days`` (if any) and is downgraded at the first evaluation after
    the grace ends, to the highest lower tier whose retention threshold the growth meets.
    """
    cur_index = _safe_index(ladder, current)
    cur = ladder.tiers[cur_index]
    up = upgrade_target(ladder, cur.code, growth)
    if up is not None:
        return Evaluation("upgrade", up.code, None)
    if growth >= cur.keep_at:
        return Evaluation("keep", cur.code, None)
    if ladder.grace_days > 0:
        if grace_until is None:
            return Evaluation("grace", cur.code, now + timedelta(days=ladder.grace_days))
        if now < grace_until:
            return Evaluation("grace", cur.code, grace_until)
    target = ladder.base
    for tier in ladder.tiers[:cur_index]:
        if growth >= tier.keep_at:
            target = tier
    return Evaluation("downgrade", target.code, None)


# --------------------------------------------------------------------------- windows


def window_start(window: QualificationWindow, now: datetime, tz: ZoneInfo) -> datetime:
    """Start (aware UTC) of the growth window that counts at ``now``."""
    local = now.astimezone(tz)
    if window == "calendar_year":
        return datetime(local.year, 1, 1, tzinfo=tz).astimezone(UTC)
    day = local.date()
    try:
        start = day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        start = date(day.year - 1, 2, 28)
    start += timedelta(days=1)  # the 12 months ending today, inclusive of today
    return datetime(start.year, start.month, start.day, tzinfo=tz).astimezone(UTC)


def next_evaluation(window: QualificationWindow, since: datetime, tz: ZoneInfo) -> datetime:
    """When a member whose tier changed at ``since`` is next evaluated."""
    local = since.astimezone(tz)
    if window == "calendar_year":
        return datetime(local.year + 1, 1, 1, tzinfo=tz).astimezone(UTC)
    day = local.date()
    try:
        due = day.replace(year=day.year + 1)
    except ValueError:
        due = date(day.year + 1, 3, 1)
    return datetime(due.year, due.month, due.day, tzinfo=tz).astimezone(UTC)


# --------------------------------------------------------------------------- progress


@dataclass(frozen=True, slots=True)
class Progress:
    current: str
    next: str | None
    next_threshold: int | None
    growth: int
    needed: int
    #: progress from the current tier's threshold to the next one, basis points (0–10000)
    progress_bp: int


def progress(ladder: TierLadder, current: str, growth: int) -> Progress:
    index = _safe_index(ladder, current)
    cur = ladder.tiers[index]
    if index + 1 >= len(ladder.tiers):
        return Progress(cur.code, None, None, growth, 0, BP)
    nxt = ladder.tiers[index + 1]
    span = nxt.threshold - cur.threshold
    done = min(max(growth - cur.threshold, 0), span)
    return Progress(
        cur.code, nxt.code, nxt.threshold, growth, max(nxt.threshold - growth, 0), done * BP // span
    )


def apply_multiplier(points: int, multiplier_bp: int) -> int:
    """Points after a tier multiplier, rounded down (integers only)."""
    return points * multiplier_bp // BP


# --------------------------------------------------------------------------- forecast


def growth_bounds(*ladders: TierLadder) -> tuple[int, ...]:
    """Every growth value at which an evaluation's outcome can change under ``ladders``: 0 and
    each tier's growth to reach and to keep, ascending. The rules only compare growth with these
    values, so members whose growth lies in the same band (see :func:`band_of`) and who hold the
    same tier are evaluated alike: a forecast needs one count per band, not one row per member."""
    values = {0}
    for ladder in ladders:
        for tier in ladder.tiers:
            values |= {tier.threshold, tier.keep_at}
    return tuple(sorted(values))


def band_of(bounds: Sequence[int], growth: int) -> int:
    """How many of ``bounds`` the growth reaches (band 0: negative growth)."""
    return bisect_right(bounds, growth)


def band_floor(bounds: Sequence[int], band: int) -> int:
    """A growth value in ``band``: its lowest (-1 for band 0)."""
    return bounds[band - 1] if band > 0 else -1


#: an evaluation at which any grace has run out (the forecast shows where members end up)
_GRACE_ENDED = datetime(2000, 1, 1, tzinfo=UTC)
_AFTER_GRACE = datetime(2000, 1, 2, tzinfo=UTC)


def holding(ladder: TierLadder, current: str | None) -> Tier:
    """The tier a member counts as holding: ``current`` (the code on the member's tier row;
    None without one) if the ladder has it, else the base tier — as ``tiers.service.state``."""
    return ladder.tiers[_safe_index(ladder, current) if current else 0]


def settled_tier(ladder: TierLadder, current: str | None, growth: int, *, held: bool) -> Tier:
    """The tier a member holding ``current`` is in after the next evaluation with ``growth`` in
    the window, once any grace days have passed. An override (``held``) keeps the tier."""
    tier = holding(ladder, current)
    if held:
        return tier
    ev = evaluate(ladder, tier.code, growth, now=_AFTER_GRACE, grace_until=_GRACE_ENDED)
    return ladder.get(ev.tier)


@dataclass(frozen=True, slots=True)
class MemberGroup:
    """Members a forecast treats alike: the code on their tier row (None: no row, the base
    tier), whether an override holds it, a growth value of their band in the draft's window and
    one in the saved ladder's window, and how many they are."""

    current: str | None
    held: bool
    growth: int
    saved_growth: int
    members: int


@dataclass(frozen=True, slots=True)
class LadderForecast:
    """Members per tier now and after their next evaluation, under the saved and a draft
    ladder; tiers of the saved ladder missing from the draft and where their holders go."""

    members: int
    #: saved tier code → members holding it now
    now: dict[str, int]
    #: saved tier code → members in it after their next evaluation with the saved ladder
    saved: dict[str, int]
    #: draft tier code → members in it after their next evaluation with the draft
    draft: dict[str, int]
    #: saved tier code missing from the draft → members holding it now
    removed: dict[str, int]
    #: draft tier code → holders of removed tiers who end up there
    removed_to: dict[str, int]
    #: members going down / up at their next evaluation, with the draft and the saved ladder
    down: int
    down_saved: int
    up: int
    up_saved: int


def forecast(saved: TierLadder, draft: TierLadder, groups: Iterable[MemberGroup]) -> LadderForecast:
    """Where the members of ``groups`` stand at their next evaluation under each ladder. Holders
    of a tier the draft removes are counted in ``removed`` and ``removed_to``, not as moves."""
    now: Counter[str] = Counter()
    after_saved: Counter[str] = Counter()
    after_draft: Counter[str] = Counter()
    removed: Counter[str] = Counter()
    removed_to: Counter[str] = Counter()
    moves: Counter[str] = Counter()
    draft_codes = {t.code for t in draft.tiers}
    total = 0
    for g in groups:
        n = g.members
        total += n
        held_now = holding(saved, g.current)
        now[held_now.code] += n
        kept = settled_tier(saved, g.current, g.saved_growth, held=g.held)
        after_saved[kept.code] += n
        step = saved.index(kept.code) - saved.index(held_now.code)
        moves["down_saved" if step < 0 else "up_saved" if step > 0 else "same"] += n
        lands = settled_tier(draft, g.current, g.growth, held=g.held)
        after_draft[lands.code] += n
        if held_now.code not in draft_codes:
            removed[held_now.code] += n
            removed_to[lands.code] += n
            continue
        step = draft.index(lands.code) - draft.index(held_now.code)
        moves["down" if step < 0 else "up" if step > 0 else "same"] += n
    return LadderForecast(
        members=total,
        now=dict(now),
        saved=dict(after_saved),
        draft=dict(after_draft),
        removed=dict(removed),
        removed_to=dict(removed_to),
        down=moves["down"],
        down_saved=moves["down_saved"],
        up=moves["up"],
        up_saved=moves["up_saved"],
    )
