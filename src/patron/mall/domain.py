"""Pure rules of the points mall (no I/O): settings, value bands, sale windows and limits,
warehouse choice, redemption codes, state moves and lottery draws."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final, Literal, Protocol, Self
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator

from patron.errors import Conflict, Forbidden, Invalid

SECTION: Final = "mall"
#: probabilities are integers in parts per million, so a pool's odds sum to exactly one
PPM: Final = 1_000_000
#: redemption codes avoid characters a clerk could misread (0/O, 1/I/L)
CODE_ALPHABET: Final = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH: Final = 10
QR_PREFIX: Final = "PATRON-GIFT:"
MAX_QUANTITY: Final = 20

Window = Literal["day", "month", "sale"]
Delivery = Literal["pickup", "ship"]
Status = Literal["reserved", "fulfilled", "shipped", "received", "cancelled", "returned"]
#: redemptions whose units are no longer redeemed: the points and the unit came back, so they
#: count neither toward a member's limit, a flash sale's granted units, the forecast nor the
#: "hot" tag
UNDONE: Final = ("cancelled", "returned")


class Warehouse(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^[a-z0-9_-]{1,16}$")
    name: str = Field(min_length=1, max_length=64)


def _default_warehouses() -> list[Warehouse]:
    return [
        Warehouse(code="north", name="North China"),
        Warehouse(code="east", name="East China"),
        Warehouse(code="south", name="South China"),
    ]


def _default_regions() -> dict[str, list[str]]:
    # nearest first, then by distance (the seed plan's three regional warehouses)
    return {
        "North China": ["north", "east", "south"],
        "East China": ["east", "north", "south"],
        "South China": ["south", "east", "north"],
    }


class MallSettings(BaseModel):
    """Operator-editable mall settings (program section ``mall``), seed defaults."""

    model_config = ConfigDict(extra="forbid")

    warehouses: list[Warehouse] = Field(
        default_factory=_default_warehouses, min_length=1, max_length=20
    )
    #: store/member region → warehouses, nearest first (the fallback order by distance)
    region_warehouses: dict[str, list[str]] = Field(default_factory=_default_regions)
    #: a store mapped explicitly wins over its region
    store_warehouses: dict[str, list[str]] = Field(default_factory=dict)
    #: when neither the store nor the region is mapped
    default_order: list[str] = Field(default_factory=lambda: ["east", "north", "south"])
    categories: list[str] = Field(
        default_factory=lambda: ["home", "digital", "mother_baby", "beauty"], max_length=50
    )
    #: value bands in points: below the first bound, between, above the last (<100, 100–500, >500)
    band_bounds: list[int] = Field(default_factory=lambda: [100, 500], min_length=1, max_length=5)
    #: days a redemption code stays valid for pickup
    code_valid_days: int = Field(default=30, ge=1, le=365)
    #: the top this many gifts by units redeemed in ``hot_days`` carry the "hot" tag
    hot_top: int = Field(default=5, ge=0, le=50)
    hot_days: int = Field(default=30, ge=1, le=365)
    #: alert (and raise a purchase request) when available stock is below this percentage of
    #: the forecast of a month's redemptions (the seed's 20%)
    safety_stock_percent: int = Field(default=20, ge=0, le=1000)
    #: the forecast is the average of the last this many 30-day months of redemptions
    forecast_months: int = Field(default=3, ge=1, le=24)
    #: a gift with no redemption for this many days is a slow mover
    slow_mover_days: int = Field(default=90, ge=1, le=3650)
    #: the monthly supplier comparison of a gift is complete with quotes from this many suppliers
    min_quotes: int = Field(default=3, ge=1, le=20)
    #: dynamic price of slow movers (a job): lower the price by ``markdown_step_percent`` % of
    #: the operator's price at most every ``markdown_every_days``, never below
    #: ``markdown_floor_percent`` % of it; off until an operator switches it on
    markdown_enabled: bool = False
    markdown_step_percent: int = Field(default=10, ge=1, le=90)
    markdown_floor_percent: int = Field(default=70, ge=10, le=100)
    markdown_every_days: int = Field(default=30, ge=1, le=365)

    @model_validator(mode="after")
    def _check(self) -> Self:
        codes = [w.code for w in self.warehouses]
        if len(set(codes)) != len(codes):
            raise ValueError("warehouse codes must be unique")
        known = set(codes)
        orders = [self.default_order, *self.region_warehouses.values()]
        orders += list(self.store_warehouses.values())
        for order in orders:
            unknown = [c for c in order if c not in known]
            if unknown:
                raise ValueError(f"unknown warehouse(s) {unknown}; known: {sorted(known)}")
        if self.band_bounds != sorted(set(self.band_bounds)):
            raise ValueError("band bounds must strictly increase")
        return self

    def warehouse_codes(self) -> list[str]:
        return [w.code for w in self.warehouses]


# --------------------------------------------------------------------------- catalogue


def value_band(points: int, bounds: Sequence[int]) -> int:
    """Index of the band a price falls in, as the seed writes them (<100, 100–500, >500):
    0 below the first bound, i up to and including bound i, len(bounds) above the last."""
    if points < bounds[0]:
        return 0
    for i, bound in enumerate(bounds[1:], start=1):
        if points <= bound:
            return i
    return len(bounds)


def band_label(band: int, bounds: Sequence[int]) -> str:
    if band == 0:
        return f"<{bounds[0]}"
    if band >= len(bounds):
        return f">{bounds[-1]}" if band == len(bounds) else "?"
    return f"{bounds[band - 1]}–{bounds[band]}"


@dataclass(frozen=True, slots=True)
class GiftRules:
    """What the rules of a redemption need to know about a gift."""

    code: str
    points: int
    is_active: bool
    min_tier: str | None
    sale_starts_at: datetime | None
    sale_ends_at: datetime | None
    limit_per_member: int | None
    limit_window: str


def check_window(gift: GiftRules, now: datetime) -> None:
    if not gift.is_active:
        raise Conflict("gift_unavailable", f"Gift {gift.code} is not offered any more.")
    if gift.sale_starts_at is not None and now < gift.sale_starts_at:
        raise Conflict(
            "outside_sale_window",
            f"Gift {gift.code} can be redeemed from {gift.sale_starts_at.isoformat()}.",
            details={"starts_at": gift.sale_starts_at.isoformat()},
        )
    if gift.sale_ends_at is not None and now >= gift.sale_ends_at:
        raise Conflict(
            "outside_sale_window",
            f"The redemption window of gift {gift.code} closed at {gift.sale_ends_at.isoformat()}.",
            details={"ends_at": gift.sale_ends_at.isoformat()},
        )


def check_tier(gift: GiftRules, member_rank: int, tier_ranks: dict[str, int]) -> None:
    """A tier-exclusive gift needs the member's tier at or above ``min_tier``."""
    if gift.min_tier is None:
        return
    needed = tier_ranks.get(gift.min_tier)
    if needed is None or member_rank < needed:
        raise Forbidden(
            "tier_required",
            f"Gift {gift.code} is reserved for members of tier {gift.min_tier} and above.",
            details={"min_tier": gift.min_tier},
        )


def limit_window_start(gift: GiftRules, now: datetime, tz: ZoneInfo) -> datetime:
    """Start of the window the per-member limit counts in (business days and months)."""
    local = now.astimezone(tz)
    if gift.limit_window == "day":
        return datetime.combine(local.date(), time(), tz).astimezone(UTC)
    if gift.limit_window == "month":
        return datetime.combine(date(local.year, local.month, 1), time(), tz).astimezone(UTC)
    return gift.sale_starts_at or datetime(2000, 1, 1, tzinfo=UTC)


def check_limit(limit: int | None, already: int, quantity: int, what: str) -> None:
    if limit is not None and already + quantity > limit:
        raise Conflict(
            "over_member_limit",
            f"{what} allows {limit} per member in this period; you have {already} already.",
            details={"limit": limit, "already": already},
        )


def check_quantity(quantity: object) -> int:
    if not isinstance(quantity, int) or isinstance(quantity, bool):
        raise Invalid("invalid_quantity", "quantity must be a whole number")
    if quantity < 1 or quantity > MAX_QUANTITY:
        raise Invalid(
            "invalid_quantity",
            f"quantity must be between 1 and {MAX_QUANTITY}",
            details={"field": "quantity"},
        )
    return quantity


# --------------------------------------------------------------------------- warehouses


def warehouse_order(
    settings: MallSettings, *, store_code: str | None, region: str | None
) -> list[str]:
    """Warehouses to reserve from, nearest first: the store's own mapping, else its (or the
    member's) region, else the default order. Warehouses not named come last, so a gift in
    stock anywhere can still be redeemed."""
    if store_code and store_code in settings.store_warehouses:
        first = settings.store_warehouses[store_code]
    elif region and region in settings.region_warehouses:
        first = settings.region_warehouses[region]
    else:
        first = settings.default_order
    rest = [c for c in settings.warehouse_codes() if c not in first]
    return [*first, *rest]


# --------------------------------------------------------------------------- codes & states


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(raw: str) -> str:
    """What a clerk typed or scanned → the stored code (QR prefix, spaces, dashes and case
    dropped)."""
    text = raw.strip()
    if text.upper().startswith(QR_PREFIX):
        text = text[len(QR_PREFIX) :]
    return "".join(ch for ch in text.upper() if ch not in " -")


def qr_payload(code: str) -> str:
    return QR_PREFIX + code


#: status → the statuses it may move to
MOVES: Final[dict[str, frozenset[str]]] = {
    "reserved": frozenset({"fulfilled", "shipped", "cancelled"}),
    # goods on their way are no longer in a warehouse: a shipped order is not cancelled here,
    # it is returned once the goods are back (points and the unit back, once)
    "shipped": frozenset({"received", "returned"}),
    "fulfilled": frozenset(),
    "received": frozenset({"returned"}),
    "cancelled": frozenset(),
    "returned": frozenset(),
}


def can_move(status: str, to: str) -> bool:
    return to in MOVES.get(status, frozenset())


def code_expiry(now: datetime, settings: MallSettings) -> datetime:
    return now + timedelta(days=settings.code_valid_days)


# --------------------------------------------------------------------------- lottery


class Rng(Protocol):
    def randbelow(self, n: int, /) -> int: ...


class SystemRng:
    """The cryptographic RNG draws use (``secrets``); tests pass a seeded one instead."""

    def randbelow(self, n: int, /) -> int:
        return secrets.randbelow(n)


@dataclass(frozen=True, slots=True)
class PrizeOdds:
    id: int
    ppm: int
    stock: int | None
    is_fallback: bool


def validate_pool(prizes: Sequence[tuple[int, int | None, bool]]) -> None:
    """(ppm, stock, is_fallback) per prize: probabilities sum to 1 (1,000,000 ppm) and exactly
    one fallback prize, with unlimited stock, catches draws of prizes out of stock."""
    if not prizes:
        raise Invalid("lottery_pool_empty", "A lottery pool needs at least one prize.")
    total = sum(p for p, _, _ in prizes)
    if total != PPM:
        raise Invalid(
            "lottery_odds_not_one",
            f"The prizes' probabilities sum to {total / PPM:.6f}, not 1: adjust them so they "
            f"sum to exactly {PPM} parts per million.",
            details={"sum_ppm": total},
        )
    fallbacks = [(p, s) for p, s, f in prizes if f]
    if len(fallbacks) != 1 or fallbacks[0][1] is not None:
        raise Invalid(
            "lottery_fallback_required",
            "Mark exactly one prize as the fallback, with unlimited stock: a draw of a prize "
            "that is out of stock gives the fallback prize instead.",
        )


def pick(prizes: Sequence[PrizeOdds], roll: int) -> PrizeOdds:
    """The prize a roll in [0, PPM) lands on: prizes in order cover consecutive ranges of
    their ppm width, so each is chosen with exactly its published probability."""
    if not 0 <= roll < PPM:
        raise ValueError("roll out of range")
    edge = 0
    for prize in prizes:
        edge += prize.ppm
        if roll < edge:
            return prize
    raise ValueError("probabilities do not sum to one")  # validate_pool prevents it


def fallback_of(prizes: Sequence[PrizeOdds]) -> PrizeOdds:
    return next(p for p in prizes if p.is_fallback)


# --------------------------------------------------------------------------- replenishment


def monthly_forecast(units: int, months: int) -> int:
    """Units expected per month: the average of the last ``months`` months, rounded up."""
    return -(-units // months) if units > 0 else 0


def below_safety(available: int, forecast: int, percent: int) -> bool:
    """Stock below ``percent`` % of a month's forecast (integers: no rounding surprises)."""
    return forecast > 0 and available * 100 < forecast * percent


def restock_quantity(available: int, forecast: int) -> int:
    """Enough to cover a month's forecast again."""
    return max(forecast - available, 1)


# --------------------------------------------------------------------------- suppliers


def in_force(valid_from: date, valid_to: date, day: date) -> bool:
    """An agreement is in force on every day from its first to its last, both included."""
    return valid_from <= day <= valid_to


def pick_supplier(
    preferred: int | None, backup: int | None, in_force_ids: set[int]
) -> tuple[int | None, str | None]:
    """Where a purchase request goes: the preferred supplier while its agreement is in force,
    else the backup while its own is; neither (None) leaves the request without a supplier."""
    if preferred is not None and preferred in in_force_ids:
        return preferred, "preferred"
    if backup is not None and backup in in_force_ids:
        return backup, "backup"
    return None, None


def month_bounds(month: str) -> tuple[date, date]:
    """``YYYY-MM`` → its first and last day."""
    try:
        first = date.fromisoformat(f"{month}-01")
    except ValueError:
        raise Invalid("invalid_month", f"{month!r} is not a month (YYYY-MM).") from None
    nxt = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    return first, nxt - timedelta(days=1)


# --------------------------------------------------------------------------- dynamic price


def marked_down(base: int, current: int, step_percent: int, floor_percent: int) -> int:
    """The next price of a slow mover: one step (a percentage of the operator's price, at least
    one point) lower, never below the floor (a percentage of it, rounded up) nor above now."""
    floor = max(-(-base * floor_percent // 100), 1)
    step = max(base * step_percent // 100, 1)
    return max(min(current, current - step), floor) if current > floor else current


def turnover_permille(issued: int, opening: int, closing: int) -> int | None:
    """Units issued over the average stock on hand, in thousandths (None with no stock)."""
    total = opening + closing
    if total <= 0:
        return None
    return issued * 2000 // total
