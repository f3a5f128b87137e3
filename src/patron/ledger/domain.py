"""Pure rules of the points ledger: no I/O, integers only.

Conventions used everywhere in the ledger:

* An ``expires_at`` is the first instant at which a lot is no longer valid (half-open validity
  ``[earned_at, expires_at)``). It is the start of the business day *after* the last valid day,
  computed in the business timezone and stored as aware UTC. ``None`` means "never expires".
* Lots are consumed soonest-expiring first; ties are broken by lot id (older first) and lots that
  never expire come last, so a member never loses points that could have been spent instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Final, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from patron.errors import Conflict, Invalid

#: Upper bound for a single posting. Far above any real earning, low enough that sums of many
#: postings stay well inside a signed 64-bit column.
MAX_POINTS_PER_POSTING = 1_000_000_000
#: Upper bound for order amounts in fen (10 billion CNY).
MAX_AMOUNT_FEN = 1_000_000_000_000

#: Source types named by API callers are stored under this prefix, so a caller can never write
#: under one of Patron's own sources (``order``, ``checkin``, ``profile`` …) and block or fake
#: them. Patron's own source types never contain ``:``; the API's pattern refuses it.
API_SOURCE_PREFIX: Final = "api:"
#: An API source type fits the 32-character column with its prefix.
MAX_API_SOURCE_TYPE = 32 - len(API_SOURCE_PREFIX)
#: The source type of the postings an order makes; its points payment is returned only by the
#: order's return, never by cancelling the spend.
ORDER_SOURCE: Final = "order"


def api_source(source_type: str) -> str:
    """The stored source type of a type an API caller named."""
    return API_SOURCE_PREFIX + source_type


def is_api_source(stored: str | None) -> bool:
    return stored is not None and stored.startswith(API_SOURCE_PREFIX)


def shown_source(stored: str | None) -> str | None:
    """The source type as its API caller named it (Patron's own types unchanged)."""
    if stored is not None and stored.startswith(API_SOURCE_PREFIX):
        return stored[len(API_SOURCE_PREFIX) :]
    return stored


class InsufficientPoints(Conflict):
    def __init__(self, requested: int, available: int) -> None:
        super().__init__(
            "insufficient_points",
            f"{requested} points requested but only {available} are available",
            details={"requested": requested, "available": available},
        )


def may_decide_own(requested_at: datetime, now: datetime, delay_hours: int) -> bool:
    """Whether the requester may decide their own waiting adjustment: only after the delay has
    passed (0 = never). The wait gives other staff time to see it; the audit marks it."""
    return delay_hours > 0 and now >= requested_at + timedelta(hours=delay_hours)


def validate_points(
    value: object, *, field: str = "points", upper: int = MAX_POINTS_PER_POSTING
) -> int:
    """Accept a strictly positive integer ``<= upper``; anything else is a 422 ``invalid_amount``.

    ``bool`` is rejected although it is an ``int`` subclass, and so are floats even when integral:
    a float in a points field means the caller computed points with floats, which is the bug.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(
            "invalid_amount",
            f"{field} must be a whole number of points",
            details={"field": field},
        )
    if value <= 0:
        raise Invalid("invalid_amount", f"{field} must be positive", details={"field": field})
    if value > upper:
        raise Invalid(
            "invalid_amount", f"{field} must be at most {upper}", details={"field": field}
        )
    return value


def validate_signed_points(value: object, *, field: str = "points") -> int:
    """A non-zero integer whose magnitude is within bounds (adjustments may be negative)."""
    if isinstance(value, bool) or not isinstance(value, int) or value == 0:
        raise Invalid(
            "invalid_amount", f"{field} must be a non-zero whole number", details={"field": field}
        )
    validate_points(abs(value), field=field)
    return value


# --------------------------------------------------------------------------- allocation


@dataclass(frozen=True, slots=True)
class LotView:
    id: int
    remaining: int
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class Take:
    lot_id: int
    amount: int


def consumption_key(lot: LotView) -> tuple[bool, datetime, int]:
    # Never-expiring lots sort last; datetime.max (aware) is only a placeholder for them.
    far = datetime.max.replace(tzinfo=UTC)
    return (lot.expires_at is None, lot.expires_at or far, lot.id)


def is_live(lot: LotView, now: datetime) -> bool:
    return lot.remaining > 0 and (lot.expires_at is None or lot.expires_at > now)


def allocate(
    lots: Iterable[LotView], amount: int, *, now: datetime, prefer: Sequence[int] = ()
) -> list[Take]:
    """Choose which lots pay ``amount``: lots in ``prefer`` first (in that order), then the rest
    soonest-expiring first. Lots already past expiry at ``now`` are never used.

    Raises :class:`InsufficientPoints` when the live lots do not cover ``amount``.
    """
    if amount <= 0:
        raise ValueError("amount must be positive")
    live = [lot for lot in lots if is_live(lot, now)]
    rank = {lot_id: i for i, lot_id in enumerate(prefer)}
    ordered = sorted(
        live,
        key=lambda lot: (
            (0, rank[lot.id]) if lot.id in rank else (1, 0),
            consumption_key(lot),
        ),
    )
    takes: list[Take] = []
    left = amount
    for lot in ordered:
        if left == 0:
            break
        take = min(lot.remaining, left)
        takes.append(Take(lot.id, take))
        left -= take
    if left:
        raise InsufficientPoints(amount, amount - left)
    return takes


# --------------------------------------------------------------------------- expiry

ExpiryKind = Literal["days_after", "end_of_month", "end_of_year", "never"]


class ExpiryPolicy(BaseModel):
    """How long earned points stay valid (SPEC P5). Default: 365 days after earning."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ExpiryKind = "days_after"
    #: days for ``days_after``; months added to the month of earning for ``end_of_month``;
    #: years added to the year of earning for ``end_of_year``; ignored for ``never``.
    n: int = Field(default=365, ge=0, le=36_500)

    @field_validator("n")
    @classmethod
    def _at_most_a_century(cls, n: int, info: ValidationInfo) -> int:
        # Longer than a century is "never" in practice, and end-of-year dates would soon pass
        # the calendar's year 9999, failing every earning after the policy was saved.
        limit = MAX_EXPIRY_N.get(str(info.data.get("kind")), 36_500)
        if n > limit:
            raise PydanticCustomError(
                "less_than_equal", "Input should be less than or equal to {le}", {"le": limit}
            )
        return n


#: the largest ``n`` per kind: a hundred years of days, months or years
MAX_EXPIRY_N: Final[dict[str, int]] = {
    "days_after": 36_500,
    "end_of_month": 1_200,
    "end_of_year": 100,
    "never": 36_500,
}


def _local_midnight_utc(day: date, tz: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)


def _add_months(year: int, month: int, months: int) -> tuple[int, int]:
    total = year * 12 + (month - 1) + months
    return total // 12, total % 12 + 1


def compute_expiry(earned_at: datetime, policy: ExpiryPolicy, tz: ZoneInfo) -> datetime | None:
    """The instant (aware UTC) at which points earned at ``earned_at`` expire.

    Points are valid through the whole last business day, so the result is the local midnight
    that ends that day.
    """
    if earned_at.tzinfo is None:
        raise ValueError("earned_at must be timezone-aware")
    if policy.kind == "never":
        return None
    earned_day = earned_at.astimezone(tz).date()
    if policy.kind == "days_after":
        last_day = earned_day + timedelta(days=policy.n)
        return _local_midnight_utc(last_day + timedelta(days=1), tz)
    if policy.kind == "end_of_month":
        # last day of (month of earning + n) ends at the first day of the following month
        year, month = _add_months(earned_day.year, earned_day.month, policy.n + 1)
        return _local_midnight_utc(date(year, month, 1), tz)
    # end_of_year
    return _local_midnight_utc(date(earned_day.year + policy.n + 1, 1, 1), tz)


def last_valid_day(expires_at: datetime, tz: ZoneInfo) -> date:
    """The last business day on which points with this ``expires_at`` can be used."""
    return (expires_at.astimezone(tz) - timedelta(microseconds=1)).date()


#: the first business day :func:`earned_before` considers (forms take dates from 1900 on)
_FIRST_DAY = date(1900, 1, 1)


def earned_before(policy: ExpiryPolicy, by: datetime, tz: ZoneInfo) -> datetime | None:
    """The instant such that, under ``policy``, points earned before it (from 1900 on) expire
    by ``by`` (``expires_at <= by``) and points earned from it on expire later; None when
    nothing earned expires (``never``). The expiry only grows with the earning day, so a binary
    search over days with :func:`compute_expiry` itself finds it (about twenty steps)."""
    if policy.kind == "never":
        return None

    def expires_by(day: date) -> bool:
        earned = _local_midnight_utc(day, tz)
        try:
            expires = compute_expiry(earned, policy, tz)
        except (ValueError, OverflowError):  # past the year 9999: certainly after ``by``
            return False
        return expires is not None and expires <= by

    lo, hi = _FIRST_DAY, by.astimezone(tz).date() + timedelta(days=1)  # hi expires after ``by``
    if not expires_by(lo):
        return _local_midnight_utc(lo, tz)
    while hi - lo > timedelta(days=1):  # invariant: lo expires by ``by``, hi does not
        mid = lo + timedelta(days=(hi - lo).days // 2)
        if expires_by(mid):
            lo = mid
        else:
            hi = mid
    return _local_midnight_utc(hi, tz)


# --------------------------------------------------------------------------- clawback & debt


@dataclass(frozen=True, slots=True)
class ClawbackSplit:
    from_pending: int
    from_available: int
    to_debt: int

    @property
    def total(self) -> int:
        return self.from_pending + self.from_available + self.to_debt


def split_clawback(amount: int, *, pending_hold: int, available: int) -> ClawbackSplit:
    """Take ``amount`` back: first from the order's own still-pending hold, then from the
    spendable balance; whatever is left becomes points debt (the balance never goes negative).
    """
    if amount < 0 or pending_hold < 0 or available < 0:
        raise ValueError("amounts must not be negative")
    from_pending = min(amount, pending_hold)
    from_available = min(amount - from_pending, available)
    return ClawbackSplit(from_pending, from_available, amount - from_pending - from_available)


def debt_repayment(debt: int, credit: int) -> int:
    """How much of a new credit goes to repaying outstanding debt (all of it, up to the debt)."""
    if debt < 0 or credit < 0:
        raise ValueError("amounts must not be negative")
    return min(debt, credit)


def proportional_clawback(
    *,
    earned: int,
    order_total: int,
    returned_before: int,
    return_amount: int,
    clawed_before: int,
) -> int:
    """Points to claw back for one return of ``return_amount`` (fen) from an order of
    ``order_total`` fen that earned ``earned`` points.

    Uses the cumulative floor ``floor(earned * returned / total)``: every return is rounded down,
    the sum over all returns never exceeds ``earned``, and the return that completes the order
    takes exactly the remainder.
    """
    if order_total <= 0 or order_total > MAX_AMOUNT_FEN:
        raise Invalid("invalid_amount", "order total must be a positive amount in fen")
    if return_amount <= 0:
        raise Invalid("invalid_amount", "refund amount must be a positive amount in fen")
    if earned < 0 or returned_before < 0 or clawed_before < 0:
        raise ValueError("amounts must not be negative")
    if returned_before + return_amount > order_total:
        raise Invalid(
            "refund_exceeds_order",
            "refunds would exceed the order total",
            details={
                "order_total": order_total,
                "returned_before": returned_before,
                "return_amount": return_amount,
            },
        )
    target = earned * (returned_before + return_amount) // order_total
    return max(0, target - clawed_before)


# --------------------------------------------------------------------------- batch earning
#
# ``plan_batch_earn`` decides, for many immediate credits at once, exactly what ``service.earn``
# would write credit by credit: the member is settled on its first credit (due holds released,
# due lots expired, debt repaid), the credit is replayed when its source already has an earning,
# otherwise posted with its lot and used to repay debt. The writer (``ledger.batch``) then puts
# the plan into the database with a fixed number of set-based statements.

#: placeholder ids of the lots a plan creates (above any real id; ordered as they are created)
NEW_LOT: Final = 1 << 62


@dataclass(frozen=True, slots=True)
class BatchCredit:
    member_id: int
    points: int
    source_type: str
    source_id: str
    reason: str = ""

    @property
    def key(self) -> str:
        return f"earn:{self.source_type}:{self.source_id}"


@dataclass(frozen=True, slots=True)
class DueHold:
    id: int
    member_id: int
    amount: int
    earned_at: datetime
    source_type: str | None
    source_id: str | None


@dataclass(slots=True)
class BatchMember:
    """A member's locked account, due holds and the open lots the plan may touch (every due
    lot; every open lot when the member owes debt)."""

    available: int
    debt: int
    settled: bool = False
    holds: list[DueHold] = field(default_factory=list)
    lots: list[LotView] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PriorPosting:
    """An earning already posted under a credit's key (``ref``: its id, or for one planned
    earlier in the same batch, its index in the plan's postings plus ``NEW_LOT``)."""

    ref: int
    member_id: int
    kind: str
    available: int


@dataclass(frozen=True, slots=True)
class PlannedPosting:
    member_id: int
    kind: str
    key: str
    available: int = 0
    pending: int = 0
    debt: int = 0
    reason: str = ""
    source_type: str | None = None
    source_id: str | None = None


@dataclass(slots=True)
class PlannedLot:
    posting: int  # index in the plan's postings
    member_id: int
    amount: int
    remaining: int
    earned_at: datetime
    expires_at: datetime | None
    source_type: str | None
    source_id: str | None


@dataclass(frozen=True, slots=True)
class PlannedAllocation:
    posting: int  # index in the plan's postings
    lot_id: int  # a real id, or NEW_LOT + index in the plan's lots
    member_id: int
    amount: int


@dataclass(slots=True)
class BatchPlan:
    postings: list[PlannedPosting] = field(default_factory=list)
    lots: list[PlannedLot] = field(default_factory=list)
    allocations: list[PlannedAllocation] = field(default_factory=list)
    #: existing lot id → points taken from it
    taken: dict[int, int] = field(default_factory=dict)
    released: list[int] = field(default_factory=list)
    #: member → account column → delta
    deltas: dict[int, dict[str, int]] = field(default_factory=dict)
    #: per credit: (posting ref as in ``PriorPosting``, replayed)
    results: list[tuple[int, bool]] = field(default_factory=list)
    #: (credit index, posting index) of each new earning, for its audit record
    earned: list[tuple[int, int]] = field(default_factory=list)


def plan_batch_earn(
    credits: Sequence[BatchCredit],
    members: dict[int, BatchMember],
    prior: dict[str, PriorPosting],
    *,
    now: datetime,
    policy: ExpiryPolicy,
    tz: ZoneInfo,
    new_key: Callable[[str, int], str],
) -> BatchPlan:
    """What crediting ``credits`` one after another writes. ``new_key(kind, member)`` names an
    expiry or repayment posting. Raises ``idempotency_conflict`` when a source was already
    credited differently, as the one-by-one path does."""
    return _BatchPlanner(members, prior, now, policy, tz, new_key).run(credits)


class _BatchPlanner:
    def __init__(
        self,
        members: dict[int, BatchMember],
        prior: dict[str, PriorPosting],
        now: datetime,
        policy: ExpiryPolicy,
        tz: ZoneInfo,
        new_key: Callable[[str, int], str],
    ) -> None:
        self.members = members
        self.prior = dict(prior)
        self.now, self.policy, self.tz, self.new_key = now, policy, tz, new_key
        self.plan = BatchPlan()
        self.lots: dict[int, dict[int, LotView]] = {
            m: {lot.id: lot for lot in sorted(s.lots, key=lambda lot: lot.id)}
            for m, s in members.items()
        }

    def run(self, credits: Sequence[BatchCredit]) -> BatchPlan:
        started: set[int] = set()
        for i, c in enumerate(credits):
            if c.member_id not in started:
                started.add(c.member_id)
                if not self.members[c.member_id].settled:
                    self._settle(c.member_id)
            self._credit(i, c)
        return self.plan

    # -- steps, each as the one-by-one path takes it
    def _settle(self, mid: int) -> None:
        for hold in self.members[mid].holds:
            posting = self._post(
                PlannedPosting(
                    mid,
                    "release",
                    f"release:{hold.id}",
                    available=hold.amount,
                    pending=-hold.amount,
                    reason="pending points released",
                    source_type=hold.source_type,
                    source_id=hold.source_id,
                )
            )
            self._lot(mid, posting, hold.amount, hold.earned_at, hold.source_type, hold.source_id)
            self.plan.released.append(hold.id)
            amount = hold.amount
            self._bump(mid, available=amount, pending=-amount, lifetime_earned=amount)
        due = [
            lot
            for lot in self.lots[mid].values()
            if lot.remaining > 0 and lot.expires_at is not None and lot.expires_at <= self.now
        ]
        total = sum(lot.remaining for lot in due)
        if total:
            posting = self._post(
                PlannedPosting(
                    mid,
                    "expire",
                    self.new_key("expire", mid),
                    available=-total,
                    reason="points expired",
                )
            )
            self._take(mid, posting, [Take(lot.id, lot.remaining) for lot in due])
            self._bump(mid, available=-total, lifetime_expired=total)
        self._repay(mid)

    def _repay(self, mid: int) -> None:
        state = self.members[mid]
        if state.debt == 0 or state.available == 0:
            return
        lots = list(self.lots[mid].values())
        live = sum(lot.remaining for lot in lots if is_live(lot, self.now))
        amount = debt_repayment(state.debt, live)
        if not amount:
            return
        takes = allocate(lots, amount, now=self.now)
        posting = self._post(
            PlannedPosting(
                mid,
                "repay",
                self.new_key("repay", mid),
                available=-amount,
                debt=-amount,
                reason="points debt repaid from new points",
            )
        )
        self._take(mid, posting, takes)
        self._bump(mid, available=-amount, debt=-amount)

    def _credit(self, i: int, c: BatchCredit) -> None:
        seen = self.prior.get(c.key)
        if seen is not None:
            if (seen.member_id, seen.kind, seen.available) != (c.member_id, "earn", c.points):
                raise Conflict(
                    "idempotency_conflict",
                    f"{c.key!r} was already used for a different posting",
                    details={"posting_id": seen.ref} if seen.ref < NEW_LOT else None,
                )
            self.plan.results.append((seen.ref, True))
            return
        posting = self._post(
            PlannedPosting(
                c.member_id,
                "earn",
                c.key,
                available=c.points,
                reason=c.reason[:200],
                source_type=c.source_type,
                source_id=c.source_id,
            )
        )
        self._lot(c.member_id, posting, c.points, self.now, c.source_type, c.source_id)
        self._bump(c.member_id, available=c.points, lifetime_earned=c.points)
        self._repay(c.member_id)
        self.prior[c.key] = PriorPosting(NEW_LOT + posting, c.member_id, "earn", c.points)
        self.plan.results.append((NEW_LOT + posting, False))
        self.plan.earned.append((i, posting))

    # -- bookkeeping
    def _post(self, posting: PlannedPosting) -> int:
        self.plan.postings.append(posting)
        return len(self.plan.postings) - 1

    def _lot(
        self,
        mid: int,
        posting: int,
        amount: int,
        earned_at: datetime,
        source_type: str | None,
        source_id: str | None,
    ) -> None:
        expires = compute_expiry(earned_at, self.policy, self.tz)
        self.plan.lots.append(
            PlannedLot(posting, mid, amount, amount, earned_at, expires, source_type, source_id)
        )
        lot_id = NEW_LOT + len(self.plan.lots) - 1
        self.lots[mid][lot_id] = LotView(lot_id, amount, expires)

    def _take(self, mid: int, posting: int, takes: Sequence[Take]) -> None:
        lots = self.lots[mid]
        for t in takes:
            lot = lots[t.lot_id]
            lots[t.lot_id] = LotView(lot.id, lot.remaining - t.amount, lot.expires_at)
            if t.lot_id >= NEW_LOT:
                self.plan.lots[t.lot_id - NEW_LOT].remaining -= t.amount
            else:
                self.plan.taken[t.lot_id] = self.plan.taken.get(t.lot_id, 0) + t.amount
            self.plan.allocations.append(PlannedAllocation(posting, t.lot_id, mid, t.amount))

    def _bump(self, mid: int, **deltas: int) -> None:
        state = self.members[mid]
        state.available += deltas.get("available", 0)
        state.debt += deltas.get("debt", 0)
        acc = self.plan.deltas.setdefault(mid, {})
        for name, delta in deltas.items():
            acc[name] = acc.get(name, 0) + delta
