"""Console: the previews of the tier ladder, the points value and the expiry policy.

Like the earning preview, each is computed from the DRAFT in the form (typed, not saved) by the
domain rules and read-only service queries, and never writes. ``config`` owns the routes; this
module turns a parsed draft (None when the form has errors) into what the preview box shows.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from fastapi import Request

from patron.kit.timeutil import business_tz
from patron.ledger import domain as ledger_domain
from patron.ledger import queries as ledger_queries
from patron.ledger import service as ledger
from patron.orders import service as orders
from patron.orders.pricing import PricingSettings, max_points_for
from patron.tiers import service as tiers
from patron.tiers.domain import LadderForecast, Tier, TierLadder
from patron.web.console.config_forms import DraftForm
from patron.web.i18n import N_
from patron.web.pages import get_session

#: the expiry preview counts points due within this many days (today included)
EXPIRY_HORIZON_DAYS = 30
POINTS_PREVIEW_DEFAULTS = {"preview_points": "1000", "preview_order": "300.00"}
#: "at most" on the points-payment share, whatever a member's balance
_ANY_BALANCE = 10**18
_MAX_ORDER_FEN = 10_000_000_000  # ¥100,000,000, as the earning preview


def tier_label(request: Request, tier: Tier) -> str:
    viewer = getattr(request.state, "viewer", None)
    zh = viewer is not None and viewer.locale == "zh_CN"
    return tier.name_zh if zh and tier.name_zh else tier.name


def _now(request: Request) -> datetime:
    now: datetime = request.app.state.clock.now()
    return now


def _tz(request: Request) -> ZoneInfo:
    return business_tz(request.app.state.settings.business_timezone)


# ---- tier ladder -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TierRow:
    """One tier in the forecast table; None where the tier is not on that ladder."""

    code: str
    label: str
    now: int | None
    saved: int | None
    draft: int | None
    status: str = ""  # "new" (only in the draft), "removed" (only in the saved ladder), ""


@dataclass(frozen=True)
class Share:
    code: str
    label: str
    members: int


@dataclass
class LadderPreview:
    forecast: LadderForecast | None
    rows: list[TierRow] = field(default_factory=list)
    removed: list[Share] = field(default_factory=list)
    removed_to: list[Share] = field(default_factory=list)
    base_label: str = ""
    window: str = ""
    grace_days: int = 0
    errors: dict[str, str] = field(default_factory=dict)


def ladder_preview(request: Request, draft: TierLadder | None) -> LadderPreview:
    """Members per tier now and after their next evaluation, under the saved ladder and the
    draft; the tiers the draft removes and where their holders go."""
    if draft is None:
        return LadderPreview(None)
    session = get_session(request)
    saved = tiers.get_ladder(session)
    f = tiers.forecast(session, draft, _now(request), _tz(request))
    saved_codes = {t.code for t in saved.tiers}
    rows = [
        TierRow(
            t.code,
            tier_label(request, t),
            f.now.get(t.code, 0) if t.code in saved_codes else None,
            f.saved.get(t.code, 0) if t.code in saved_codes else None,
            f.draft.get(t.code, 0),
            "" if t.code in saved_codes else "new",
        )
        for t in draft.tiers
    ]
    labels = {t.code: tier_label(request, t) for t in draft.tiers}
    gone = [t for t in saved.tiers if t.code not in labels]
    rows += [
        TierRow(
            t.code,
            tier_label(request, t),
            f.now.get(t.code, 0),
            f.saved.get(t.code, 0),
            None,
            "removed",
        )
        for t in gone
    ]
    return LadderPreview(
        forecast=f,
        rows=rows,
        removed=[
            Share(t.code, tier_label(request, t), f.removed[t.code])
            for t in gone
            if f.removed.get(t.code)
        ],
        removed_to=[
            Share(t.code, labels[t.code], f.removed_to[t.code])
            for t in draft.tiers
            if f.removed_to.get(t.code)
        ],
        base_label=labels[draft.base.code],
        window=draft.qualification_window,
        grace_days=draft.grace_days,
    )


# ---- points value and the points-payment share -----------------------------------------------


@dataclass
class PointsPreview:
    values: dict[str, str]
    errors: dict[str, str]
    draft: PricingSettings | None
    saved: PricingSettings
    points: int = 0
    order_fen: int = 0
    outstanding: ledger_queries.Outstanding | None = None

    def worth(self, settings: PricingSettings) -> int:
        """What the example points pay, in fen."""
        return settings.points_value_fen(self.points)

    def most_points(self, settings: PricingSettings) -> int:
        """The most points that may pay the example order (whatever the member's balance)."""
        return max_points_for(self.order_fen, _ANY_BALANCE, settings)

    def most_fen(self, settings: PricingSettings) -> int:
        return settings.points_value_fen(self.most_points(settings))

    def liability(self, settings: PricingSettings) -> int:
        """The outstanding points in fen at the value of ``settings``."""
        total = self.outstanding.total if self.outstanding else 0
        return settings.points_value_fen(total)


def default_points_values() -> dict[str, str]:
    return dict(POINTS_PREVIEW_DEFAULTS)


def points_preview(
    request: Request, form: DraftForm, draft: PricingSettings | None
) -> PointsPreview:
    """Worked examples from the draft value and share: what the example points pay, the most
    points an order of the example amount may take, and the outstanding points' worth now."""
    session = get_session(request)
    saved = orders.pricing_settings(session)
    # A form posted without the example inputs (a script) gets the defaults.
    inputs = DraftForm(raw=POINTS_PREVIEW_DEFAULTS | dict(form.raw), tr=form.tr)
    points = inputs.integer("preview_points", ("points",))
    order = inputs.scaled("preview_order", ("order",), "money")
    if points is not None and not 0 <= points <= ledger_domain.MAX_POINTS_PER_POSTING:
        inputs.error("preview_points", N_("Enter a number of points between 0 and 1,000,000,000."))
    if order is not None and not 0 <= order <= _MAX_ORDER_FEN:
        inputs.error("preview_order", N_("Enter an amount between ¥0 and ¥100,000,000."))
    values = {k: v for k, v in inputs.raw.items() if k.startswith("preview_")}
    if draft is None or inputs.errors or points is None or order is None:
        return PointsPreview(values, inputs.errors, None, saved)
    held = ledger_queries.outstanding(session, _now(request))
    return PointsPreview(values, {}, draft, saved, points, order, held)


# ---- expiry policy ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ExpiryExample:
    which: str  # "today", "month_end", "next_year"
    earned: date
    until: date | None  # the last day the points can be used; None: they never expire


@dataclass
class ExpiryPreview:
    errors: dict[str, str]
    policy: ledger_domain.ExpiryPolicy | None
    examples: list[ExpiryExample] = field(default_factory=list)
    horizon_day: date | None = None
    lots_due: int = 0
    pending: int = 0
    pending_due: int = 0
    pending_due_saved: int = 0
    days: int = EXPIRY_HORIZON_DAYS


def example_days(today: date) -> list[tuple[str, date]]:
    """Earning days the expiry preview shows: today, the last day of this month, the first day
    of next year."""
    last = calendar.monthrange(today.year, today.month)[1]
    return [
        ("today", today),
        ("month_end", today.replace(day=last)),
        ("next_year", date(today.year + 1, 1, 1)),
    ]


def _last_day(
    policy: ledger_domain.ExpiryPolicy, day: date, tz: ZoneInfo
) -> tuple[bool, date | None]:
    """(computable, the last valid day of points earned at noon on ``day``)."""
    earned = datetime.combine(day, time(12), tz).astimezone(UTC)
    try:
        expires = ledger_domain.compute_expiry(earned, policy, tz)
    except (ValueError, OverflowError):  # the date would pass the year 9999
        return False, None
    return True, None if expires is None else ledger_domain.last_valid_day(expires, tz)


def expiry_preview(
    request: Request, form: DraftForm, draft: ledger.PointsSettings | None
) -> ExpiryPreview:
    """When points earned on a few example days expire under the draft, and what is due to
    expire in the next days. Lots keep the date they were given when created, so the draft
    changes nothing for them; pending points are dated when released, under the policy in
    force then — the only points the draft can move."""
    if draft is None:
        return ExpiryPreview({}, None)
    tz, now = _tz(request), _now(request)
    policy = draft.expiry
    today = now.astimezone(tz).date()
    examples: list[ExpiryExample] = []
    for which, day in example_days(today):
        ok, until = _last_day(policy, day, tz)
        if not ok:
            inputs = DraftForm(raw=form.raw, tr=form.tr)
            inputs.error("n", N_("With this N the expiry date would pass the year 9999."))
            return ExpiryPreview(inputs.errors, None)
        examples.append(ExpiryExample(which, day, until))
    horizon_day = today + timedelta(days=EXPIRY_HORIZON_DAYS)
    by = datetime.combine(horizon_day + timedelta(days=1), time(0), tz).astimezone(UTC)
    session = get_session(request)
    saved = ledger.get_points_settings(session).expiry
    cutoffs = [
        ledger_domain.earned_before(policy, by, tz),
        ledger_domain.earned_before(saved, by, tz),
    ]
    pending = ledger_queries.pending_expiring(session, by, cutoffs)
    return ExpiryPreview(
        errors={},
        policy=policy,
        examples=examples,
        horizon_day=horizon_day,
        lots_due=ledger_queries.lots_expiring(session, now, by),
        pending=pending.pending,
        pending_due=pending.expiring[0],
        pending_due_saved=pending.expiring[1],
    )
