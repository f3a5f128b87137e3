"""Coupon rules (SPEC C1–C3): pure, integers only, no I/O.

A **template** says what a coupon is worth and where it applies; a **coupon** is one issued
copy in a member's wallet with its own validity. At checkout :func:`choose` takes the member's
candidate coupons and the basket priced without coupons (``orders.pricing``) and returns the
combination that saves the member the most under the stacking rules, with the discount of each
coupon spread over the lines it applies to. The order of a combination (docs/rules.md):

1. member prices, line discounts, tier and birthday discounts first (``orders.pricing``); a
   coupon that does not stack with the tier discount prices its combination without it, one
   that does not stack with member prices leaves the lines sold at a member price out;
2. percent-off coupons, on the eligible lines' amounts, floored to the fen, at most the cap;
3. threshold and amount-off coupons; a threshold is met by the eligible amount *before* any
   coupon ("满 200 减 30" counts the 200 on the goods it applies to);
4. free gift and free shipping take nothing off the total; their declared value ranks them;
5. points pay last, on what is left (a coupon that does not stack with points is left out when
   the order uses points).

A coupon never takes more than what is left of its lines, so no line goes below zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import product
from typing import Final, Literal, Self, get_args
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator

from patron.kit.timeutil import business_date

SECTION: Final = "coupons"
BP: Final = 10_000
MAX_FEN: Final = 100_000_000_00  # ¥100M: far above any coupon
#: most candidate coupons a quote compares exhaustively (2^12 combinations at most)
MAX_CANDIDATES: Final = 12

Kind = Literal["amount_off", "percent_off", "threshold", "free_gift", "free_shipping"]
KINDS: Final[tuple[Kind, ...]] = (
    "amount_off",
    "percent_off",
    "threshold",
    "free_gift",
    "free_shipping",
)
Status = Literal["issued", "redeemed", "expired", "voided"]
Reason = Literal[
    "welcome",
    "first_order",
    "birthday",
    "manual",
    "exchange",
    "campaign",
    "recall",
    "checkin",
    "referral",
    "action",
    "milestone",
]
REASONS: Final[tuple[Reason, ...]] = get_args(Reason)
CodeList = list[str]
#: the latest last day of a fixed validity (far dates would overflow the day after)
LAST_DAY: Final = date(2999, 12, 31)


class CouponSettings(BaseModel):
    """Operator settings (program section ``coupons``)."""

    model_config = ConfigDict(extra="forbid")

    #: a return of every line a coupon discounted gives the coupon back while it is still valid
    restore_on_return: bool = True
    #: the wallet and the reminder job flag coupons expiring within this many days
    reminder_days: int = Field(default=3, ge=0, le=90)
    #: templates the issuing job gives automatically (by template code)
    welcome_templates: list[str] = Field(default_factory=list, max_length=20)
    first_order_templates: list[str] = Field(default_factory=list, max_length=20)
    birthday_templates: list[str] = Field(default_factory=list, max_length=20)
    #: welcome and first-order packs go to members who joined / first bought this recently
    auto_window_days: int = Field(default=7, ge=1, le=365)


class Stacking(BaseModel):
    """What a template's coupons combine with (operator-set)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: alone on the order: no other coupon with it
    exclusive: bool = False
    with_member_price: bool = True
    with_tier_discount: bool = True
    with_points: bool = True


class TemplateRules(BaseModel):
    """A template's definition; stored as JSON on the template row."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Kind
    #: amount_off and threshold: fen off
    amount_fen: int = Field(default=0, ge=0, le=MAX_FEN)
    #: percent_off: share taken off, 2000 = 20 % off (八折)
    percent_off_bp: int = Field(default=0, ge=0, le=BP - 1)
    #: percent_off: most fen one coupon takes off (0 = no cap)
    cap_fen: int = Field(default=0, ge=0, le=MAX_FEN)
    #: the eligible amount the basket must reach (threshold; optional for the others)
    min_spend_fen: int = Field(default=0, ge=0, le=MAX_FEN)
    #: free_gift: the SKU handed over; free_gift / free_shipping: its value, for ranking
    gift_sku: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$")
    value_fen: int = Field(default=0, ge=0, le=MAX_FEN)
    #: validity: fixed dates (business days, inclusive) or N days after issue
    valid_from: date | None = None
    valid_until: date | None = None
    valid_days: int | None = Field(default=None, ge=1, le=3660)
    #: where it applies (empty = everywhere) and what it never applies to
    categories: list[str] = Field(default_factory=list, max_length=200)
    skus: list[str] = Field(default_factory=list, max_length=500)
    stores: list[str] = Field(default_factory=list, max_length=500)
    channels: list[Literal["store", "online", "mini_program", "app"]] = Field(
        default_factory=list, max_length=4
    )
    exclude_categories: list[str] = Field(default_factory=list, max_length=200)
    exclude_skus: list[str] = Field(default_factory=list, max_length=500)
    #: only members of these tiers may receive and use it (empty = all)
    tiers: list[str] = Field(default_factory=list, max_length=20)
    cost_bearer: Literal["brand", "store"] = "brand"
    stacking: Stacking = Field(default_factory=Stacking)

    @model_validator(mode="after")
    def _check(self) -> Self:
        k = self.kind
        if k in ("amount_off", "threshold") and self.amount_fen <= 0:
            raise ValueError(f"a {k} coupon needs amount_fen > 0")
        if k == "threshold" and self.min_spend_fen <= self.amount_fen:
            raise ValueError("a threshold coupon needs min_spend_fen above amount_fen")
        if k == "percent_off" and self.percent_off_bp <= 0:
            raise ValueError("a percent_off coupon needs percent_off_bp between 1 and 9999")
        if k == "free_gift" and not self.gift_sku:
            raise ValueError("a free_gift coupon needs gift_sku")
        if (self.valid_days is None) == (self.valid_until is None):
            raise ValueError("give either valid_days (after issue) or valid_until (fixed dates)")
        if self.valid_from and self.valid_until and self.valid_from > self.valid_until:
            raise ValueError("valid_from is after valid_until")
        if self.valid_until and self.valid_until > LAST_DAY:
            raise ValueError(f"valid_until must be on or before {LAST_DAY.isoformat()}")
        return self

    def validity(self, issued_at: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """[start, end) in UTC: fixed business days (end of ``valid_until`` inclusive), or from
        issue to the end of the business day ``valid_days`` − 1 days later."""
        if self.valid_days is not None:
            last = business_date(issued_at, tz) + timedelta(days=self.valid_days - 1)
            return issued_at, _day_start(last + timedelta(days=1), tz)
        assert self.valid_until is not None
        start = _day_start(self.valid_from, tz) if self.valid_from else issued_at
        return start, _day_start(self.valid_until + timedelta(days=1), tz)


def _day_start(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tz).astimezone(UTC)


def issue_key(reason: Reason, ref: str, *, at: datetime, tz: ZoneInfo) -> str:
    """The natural key of an issue with the template and the member: a second issue with the
    same key replays. Birthday packs are once per business year; the others carry the caller's
    reference (manual batch, exchange request, order)."""
    if reason in ("welcome", "first_order"):
        return reason
    if reason == "birthday":
        return f"birthday:{business_date(at, tz).year}"
    return f"{reason}:{ref}"


# ---- at checkout ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BaseLine:
    """A basket line priced without coupons."""

    sku: str
    category: str
    amount_fen: int
    member_price_applied: bool


@dataclass(frozen=True, slots=True)
class Candidate:
    code: str
    template_code: str
    rules: TemplateRules
    member_id: int
    status: str
    valid_from: datetime
    valid_until: datetime


@dataclass(frozen=True, slots=True)
class Basket:
    member_id: int
    tier_code: str | None
    store_code: str | None
    channel: str
    now: datetime
    uses_points: bool
    #: the basket priced with and without the tier's percentage discounts
    lines: tuple[BaseLine, ...]
    lines_without_tier: tuple[BaseLine, ...]


#: why a coupon cannot be used; stable codes for the API
UNUSABLE: Final[dict[str, str]] = {
    "coupon_not_member": "Coupon {code} belongs to another member.",
    "coupon_used": "Coupon {code} was already used.",
    "coupon_voided": "Coupon {code} was voided.",
    "coupon_expired": "Coupon {code} has expired.",
    "coupon_not_yet_valid": "Coupon {code} is not valid yet.",
    "coupon_wrong_store": "Coupon {code} cannot be used in this store or channel.",
    "coupon_wrong_tier": "Coupon {code} is for other membership tiers.",
    "coupon_not_applicable": "Coupon {code} applies to none of the goods in the basket.",
    "coupon_below_threshold": "Coupon {code} needs {min} of eligible goods; the basket has {have}.",
}
#: why a usable coupon was left out of the chosen combination
LEFT_OUT: Final[dict[str, str]] = {
    "coupon_not_with_points": "Coupon {code} cannot be combined with a points payment.",
    "coupon_not_chosen": "Coupon {code} is not part of the best combination (stacking rules).",
}


def _yuan(fen: int) -> str:
    return f"¥{fen // 100:,}.{fen % 100:02d}"


def eligible(rules: TemplateRules, line: BaseLine) -> bool:
    restricted = rules.skus or rules.categories
    if restricted and line.sku not in rules.skus and line.category not in rules.categories:
        return False
    if line.sku in rules.exclude_skus or line.category in rules.exclude_categories:
        return False
    return not (line.member_price_applied and not rules.stacking.with_member_price)


def _lines_for(c: Candidate, basket: Basket) -> tuple[BaseLine, ...]:
    return basket.lines if c.rules.stacking.with_tier_discount else basket.lines_without_tier


def unusable(c: Candidate, basket: Basket) -> tuple[str, str] | None:
    """The first reason ``c`` cannot be used on this basket at all: (code, message)."""

    def why(code: str, **kw: str) -> tuple[str, str]:
        return code, UNUSABLE[code].format(code=c.code, **kw)

    r = c.rules
    if c.member_id != basket.member_id:
        return why("coupon_not_member")
    if c.status == "redeemed":
        return why("coupon_used")
    if c.status == "voided":
        return why("coupon_voided")
    if c.status == "expired" or basket.now >= c.valid_until:
        return why("coupon_expired")
    if basket.now < c.valid_from:
        return why("coupon_not_yet_valid")
    if (r.stores and basket.store_code not in r.stores) or (
        r.channels and basket.channel not in r.channels
    ):
        return why("coupon_wrong_store")
    if r.tiers and basket.tier_code not in r.tiers:
        return why("coupon_wrong_tier")
    base = sum(ln.amount_fen for ln in _lines_for(c, basket) if eligible(r, ln))
    if base == 0:
        return why("coupon_not_applicable")
    if base < r.min_spend_fen:
        return why("coupon_below_threshold", min=_yuan(r.min_spend_fen), have=_yuan(base))
    return None


@dataclass(frozen=True, slots=True)
class Applied:
    code: str
    template_code: str
    kind: Kind
    #: fen off per basket line (index → fen); sums to ``discount_fen``
    lines: tuple[tuple[int, int], ...]
    discount_fen: int
    #: free gift / free shipping: the declared value and the gift's SKU
    value_fen: int = 0
    gift_sku: str | None = None
    cost_bearer: str = "brand"


@dataclass(frozen=True, slots=True)
class Selection:
    applied: tuple[Applied, ...]
    #: (code, reason code, message) of each candidate left out
    left_out: tuple[tuple[str, str, str], ...]
    #: fen off per basket line from all applied coupons
    line_discounts: tuple[int, ...]
    #: the combination is priced without the tier's percentage discounts
    drop_tier: bool
    #: what the member saves against the basket without coupons (values of gifts included)
    saving_fen: int
    coupon_discount_fen: int = field(default=0)


_APPLY_ORDER: Final[dict[str, int]] = {
    "percent_off": 0,
    "threshold": 1,
    "amount_off": 2,
    "free_gift": 3,
    "free_shipping": 4,
}


def _allocate(total: int, weights: Sequence[int]) -> list[int]:
    """Largest remainder, ties to the earlier line; parts never exceed their weight."""
    wsum = sum(weights)
    if wsum == 0 or total == 0:
        return [0] * len(weights)
    parts, rems = [], []
    for i, w in enumerate(weights):
        share, rem = divmod(total * w, wsum)
        parts.append(share)
        rems.append((-rem, i))
    for _, i in sorted(rems)[: total - sum(parts)]:
        parts[i] += 1
    return parts


def coupon_discount(rules: TemplateRules, eligible_left_fen: int) -> int:
    """What one coupon takes off ``eligible_left_fen`` (never more than that)."""
    if rules.kind == "percent_off":
        off = eligible_left_fen * rules.percent_off_bp // BP
        if rules.cap_fen:
            off = min(off, rules.cap_fen)
    elif rules.kind in ("amount_off", "threshold"):
        off = rules.amount_fen
    else:
        off = 0
    return max(0, min(off, eligible_left_fen))


def evaluate(combo: Sequence[Candidate], basket: Basket) -> Selection:
    """Apply one combination (assumed valid) and measure what the member saves."""
    drop_tier = any(not c.rules.stacking.with_tier_discount for c in combo)
    lines = basket.lines_without_tier if drop_tier else basket.lines
    left = [ln.amount_fen for ln in lines]
    applied = []
    for c in sorted(combo, key=lambda c: (_APPLY_ORDER[c.rules.kind], c.code)):
        mask = [eligible(c.rules, ln) for ln in lines]
        weights = [amt if ok else 0 for amt, ok in zip(left, mask, strict=True)]
        off = coupon_discount(c.rules, sum(weights))
        parts = _allocate(off, weights)
        left = [a - p for a, p in zip(left, parts, strict=True)]
        applied.append(
            Applied(
                code=c.code,
                template_code=c.template_code,
                kind=c.rules.kind,
                lines=tuple((i, p) for i, p in enumerate(parts) if p),
                discount_fen=off,
                value_fen=c.rules.value_fen
                if c.rules.kind in ("free_gift", "free_shipping")
                else 0,
                gift_sku=c.rules.gift_sku if c.rules.kind == "free_gift" else None,
                cost_bearer=c.rules.cost_bearer,
            )
        )
    line_discounts = tuple(ln.amount_fen - a for ln, a in zip(lines, left, strict=True))
    base_total = sum(ln.amount_fen for ln in basket.lines)
    saving = base_total - sum(left) + sum(a.value_fen for a in applied)
    return Selection(
        applied=tuple(applied),
        left_out=(),
        line_discounts=line_discounts,
        drop_tier=drop_tier,
        saving_fen=saving,
        coupon_discount_fen=sum(a.discount_fen for a in applied),
    )


def compatible(combo: Sequence[Candidate]) -> bool:
    """Stacking rules between coupons: an exclusive one stands alone; one per type."""
    if len(combo) > 1 and any(c.rules.stacking.exclusive for c in combo):
        return False
    kinds = [c.rules.kind for c in combo]
    return len(kinds) == len(set(kinds))


def _rank(sel: Selection) -> tuple[int, int, tuple[str, ...]]:
    # most saved; then fewer coupons (the member keeps the others); then by code (stable)
    return (-sel.saving_fen, len(sel.applied), tuple(sorted(a.code for a in sel.applied)))


def choose(candidates: Sequence[Candidate], basket: Basket) -> Selection:
    """The best combination of the usable candidates. Unusable ones must be filtered first
    (:func:`unusable`); a coupon that does not stack with points is left out on a points order."""
    usable: list[Candidate] = []
    left_out: list[tuple[str, str, str]] = []
    for c in candidates:
        if basket.uses_points and not c.rules.stacking.with_points:
            left_out.append(
                (
                    c.code,
                    "coupon_not_with_points",
                    LEFT_OUT["coupon_not_with_points"].format(code=c.code),
                )
            )
        else:
            usable.append(c)
    if len(usable) > MAX_CANDIDATES:
        # keep the ones that save most on their own; the rest are compared no further
        usable.sort(key=lambda c: _rank(evaluate([c], basket)))
        usable = usable[:MAX_CANDIDATES]
    best = evaluate([], basket)
    # one coupon per kind at most: walk the product of each kind's choices (or none), so only
    # combinations the rules allow are built
    by_kind: dict[str, list[Candidate | None]] = {}
    for c in usable:
        by_kind.setdefault(c.rules.kind, [None]).append(c)
    for pick in product(*by_kind.values()):
        combo = [c for c in pick if c is not None]
        if not combo or not compatible(combo):
            continue
        sel = evaluate(combo, basket)
        if _rank(sel) < _rank(best):
            best = sel
    chosen = {a.code for a in best.applied}
    left_out.extend(
        (c.code, "coupon_not_chosen", LEFT_OUT["coupon_not_chosen"].format(code=c.code))
        for c in candidates
        if c.code not in chosen and c.code not in {x[0] for x in left_out}
    )
    return Selection(
        applied=best.applied,
        left_out=tuple(left_out),
        line_discounts=best.line_discounts,
        drop_tier=best.drop_tier,
        saving_fen=best.saving_fen,
        coupon_discount_fen=best.coupon_discount_fen,
    )


def expiring_soon(valid_until: datetime, now: datetime, days: int) -> bool:
    return now < valid_until <= now + timedelta(days=days)
