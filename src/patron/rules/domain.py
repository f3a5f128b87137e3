"""The earning engine (SPEC P2, P3, P6): pure functions over :mod:`patron.rules.definitions`.

How an order's points are computed (docs/rules.md has the worked example):

1. Every line's paid amount is multiplied, exactly (integer numerator over a common
   denominator), by the base rate, then by its category coefficient, then by the multiplier(s):
   with ``combine="highest"`` only the largest of {tier multiplier, active windows} applies, with
   ``"multiply"`` all of them do. Nothing is rounded between lines or factors.
2. The trace attributes points to rules by rounding the *cumulative* product after each stage
   (base, then each category, then each multiplier) and taking differences. The differences
   telescope, so the sum of the trace is exactly the rounded full product — rounding is applied
   once to the order total; the stages only explain it. A coefficient below ×1 shows as a
   negative line in the trace.
3. Bonuses are added: first purchase (a share of the exact base points, rounded), welcome (flat).
4. Per-rule budgets then cut each rule's positive contribution to what its budget still has.
5. The member's daily cap cuts the remainder, taking positive contributions back from the end of
   the trace first (bonuses, windows, tier, categories, base last).

Growth is computed the same way from its own rule (base + categories, no multipliers or caps).
Business dates (member day, welcome window) are in the business timezone passed in as ``tz``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from patron.kit.timeutil import business_date
from patron.rules.definitions import (
    BP,
    MAX_FACTOR_BP,
    MAX_FEN,
    MAX_POINTS,
    AnyWindow,
    CategoryCode,
    Combine,
    EarningRules,
    Rounding,
    applies_to,
    window_active,
)

ContributionKind = Literal["base", "category", "tier", "window", "bonus"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# ---------------------------------------------------------------- inputs


class EarnLine(_Frozen):
    """One order line as the engine sees it: the amount actually paid for it (cash, after every
    discount and after the points payment)."""

    category: CategoryCode
    paid_fen: int = Field(ge=0, le=MAX_FEN)
    sku: str | None = Field(default=None, max_length=64)


class EarnContext(_Frozen):
    """Everything about the order and the member the rules need; the service gathers it."""

    occurred_at: AwareDatetime
    lines: tuple[EarnLine, ...] = Field(max_length=10_000)
    tier_code: str | None = Field(default=None, max_length=32)
    #: from the member's tier benefits: 12000 = ×1.2
    tier_multiplier_bp: int = Field(default=BP, ge=0, le=MAX_FACTOR_BP)
    #: when the member joined (for the welcome bonus); None = no welcome bonus
    member_since: AwareDatetime | None = None
    is_first_purchase: bool = False
    welcome_bonus_awarded: bool = False
    #: points this member already earned on the order's business day (for the daily cap)
    points_earned_today: int = Field(default=0, ge=0, le=MAX_POINTS)
    #: rule id → points the rule already gave (for per-rule budgets); unknown ids are ignored
    budget_used: Mapping[str, Annotated[int, Field(ge=0, le=MAX_POINTS)]] = Field(
        default_factory=dict
    )
    #: for campaign windows: the control group (by member id) and birthday-month privileges
    member_id: int | None = None
    birthday: date | None = None


# ---------------------------------------------------------------- outputs


class Contribution(_Frozen):
    """One line of the explanation trace."""

    rule_id: str
    kind: ContributionKind
    #: the coefficient or multiplier this rule applied (None for flat bonuses and the base)
    factor_bp: int | None = None
    #: points the rule produced before budgets and the daily cap
    requested: int
    #: points actually awarded (what a posting records against this rule)
    points: int
    note: str = ""


class EarningResult(_Frozen):
    points: int
    growth: int
    #: the order's base points (paid × base rate, rounded) — what "+10 %" bonuses refer to
    base_points: int
    business_date: date
    points_trace: tuple[Contribution, ...]
    growth_trace: tuple[Contribution, ...]
    #: budgeted rule id → points it may still give after this award
    budget_remaining: dict[str, int]
    #: points the member may still earn today after this award; None = no cap
    daily_cap_remaining: int | None

    def rule_ids(self) -> list[str]:
        """The rules that produced (or reduced) this award, for the posting's record."""
        return [c.rule_id for c in self.points_trace if c.points != 0]


# ---------------------------------------------------------------- arithmetic


def div_round(numerator: int, denominator: int, rounding: Rounding) -> int:
    """``numerator / denominator`` rounded by ``rounding``; both non-negative integers."""
    if numerator < 0 or denominator <= 0:
        raise ValueError("div_round needs numerator >= 0 and denominator > 0")
    quotient, remainder = divmod(numerator, denominator)
    if remainder == 0 or rounding is Rounding.FLOOR:
        return quotient
    if rounding is Rounding.CEIL:
        return quotient + 1
    return quotient + 1 if 2 * remainder >= denominator else quotient


def add_months(day: date, months: int) -> date:
    """``day`` plus calendar months, clamped to the month's last day (31 Jan + 1 → 28/29 Feb)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    for last in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable: every month has a 28th")


def remaining_budgets(rules: EarningRules, used: Mapping[str, int]) -> dict[str, int]:
    """Rule id → how much each budgeted rule may still give."""
    return {
        rule_id: max(0, budget - used.get(rule_id, 0))
        for rule_id, budget in rules.budgeted_rules().items()
    }


def format_factor(factor_bp: int) -> str:
    """12000 → "×1.2", 20000 → "×2"."""
    whole, frac = divmod(factor_bp, BP)
    return f"×{whole}" + (f".{frac:04d}".rstrip("0") if frac else "")


def format_fen(fen: int) -> str:
    """30000 → "¥300", 12345 → "¥123.45"."""
    cny, rest = divmod(fen, 100)
    return f"¥{cny}" + (f".{rest:02d}" if rest else "")


# ---------------------------------------------------------------- the engine


class _Staged:
    """Accumulates the exact product stage by stage and records each stage's rounded share."""

    def __init__(self, numerator: int, denominator: int, rounding: Rounding) -> None:
        self.numerator = numerator
        self.denominator = denominator
        self.rounding = rounding
        self.rounded = div_round(numerator, denominator, rounding)

    def advance(self, numerator: int, denominator: int) -> int:
        """Move to a new cumulative value; return the stage's (possibly negative) share."""
        self.numerator, self.denominator = numerator, denominator
        before, self.rounded = self.rounded, div_round(numerator, denominator, self.rounding)
        return self.rounded - before


def _category_stages(
    lines: Sequence[EarnLine],
    line_numerators: Sequence[int],
    coefficients: Mapping[str, int],
    staged: _Staged,
    rule_prefix: str,
) -> list[Contribution]:
    """Apply category coefficients one category at a time (sorted by code, so the trace is
    stable); every line's numerator is scaled by BP first so that ×1 categories stay exact."""
    numerators = [n * BP for n in line_numerators]
    denominator = staged.denominator * BP
    out: list[Contribution] = []
    present = sorted({line.category for line in lines if coefficients.get(line.category, BP) != BP})
    if not present:
        staged.numerator, staged.denominator = sum(numerators), denominator
        return out
    for code in present:
        factor = coefficients[code]
        for i, line in enumerate(lines):
            if line.category == code:
                numerators[i] = line_numerators[i] * factor
        share = staged.advance(sum(numerators), denominator)
        out.append(
            Contribution(
                rule_id=f"{rule_prefix}{code}",
                kind="category",
                factor_bp=factor,
                requested=share,
                points=share,
            )
        )
    return out


Window = AnyWindow


def _multiplier_stages(
    rules: EarningRules, ctx: EarnContext, day: date, tz: ZoneInfo, staged: _Staged
) -> list[Contribution]:
    candidates: list[tuple[str, ContributionKind, int, str]] = []
    if ctx.tier_multiplier_bp != BP:
        candidates.append((f"tier:{ctx.tier_code or 'none'}", "tier", ctx.tier_multiplier_bp, ""))
    joined = business_date(ctx.member_since, tz) if ctx.member_since is not None else None
    candidates.extend(
        (w.id, "window", w.multiplier_bp, w.name)
        for w in rules.windows
        if window_active(w, day)
        and applies_to(
            w,
            day,
            member_id=ctx.member_id,
            tier_code=ctx.tier_code,
            joined=joined,
            birthday=ctx.birthday,
        )
    )
    if not candidates:
        return []
    out: list[Contribution] = []
    winner = -1
    if rules.combine is Combine.HIGHEST:
        # ties go to the earliest candidate: the tier, then windows in the order listed
        winner = max(range(len(candidates)), key=lambda i: (candidates[i][2], -i))
    for i, (rule_id, kind, factor, name) in enumerate(candidates):
        if rules.combine is Combine.HIGHEST and i != winner:
            out.append(
                Contribution(
                    rule_id=rule_id,
                    kind=kind,
                    factor_bp=factor,
                    requested=0,
                    points=0,
                    note=_join(name, "superseded: the highest multiplier wins"),
                )
            )
            continue
        share = staged.advance(staged.numerator * factor, staged.denominator * BP)
        out.append(
            Contribution(
                rule_id=rule_id,
                kind=kind,
                factor_bp=factor,
                requested=share,
                points=share,
                note=name,
            )
        )
    return out


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def _bonus_stages(
    rules: EarningRules, ctx: EarnContext, day: date, tz: ZoneInfo, base: _Staged, paid: int
) -> list[Contribution]:
    out: list[Contribution] = []
    first = rules.first_purchase
    if first.enabled and ctx.is_first_purchase and paid >= first.min_paid_fen:
        # a share of the *exact* base points, rounded once by the rule set's policy
        bonus = div_round(base.numerator * first.bonus_bp, base.denominator * BP, rules.rounding)
        out.append(
            Contribution(
                rule_id=first.id,
                kind="bonus",
                factor_bp=first.bonus_bp,
                requested=bonus,
                points=bonus,
                note="first purchase",
            )
        )
    welcome = rules.welcome
    if (
        welcome.enabled
        and not ctx.welcome_bonus_awarded
        and ctx.member_since is not None
        and paid >= welcome.min_paid_fen
    ):
        joined = business_date(ctx.member_since, tz)
        if joined <= day < add_months(joined, welcome.within_months):
            out.append(
                Contribution(
                    rule_id=welcome.id,
                    kind="bonus",
                    requested=welcome.points,
                    points=welcome.points,
                    note=f"within {welcome.within_months} months of joining",
                )
            )
    return out


def _apply_budgets(trace: list[Contribution], budgets: Mapping[str, int]) -> list[Contribution]:
    """Cut positive contributions of budgeted rules to the budget they have left."""
    out: list[Contribution] = []
    for c in trace:
        left = budgets.get(c.rule_id)
        if left is not None and c.points > left:
            c = c.model_copy(update={"points": left, "note": _join(c.note, "budget")})
        out.append(c)
    return out


def _apply_cap(trace: list[Contribution], allowed: int) -> list[Contribution]:
    """Take back positive points from the end of the trace until the total fits ``allowed``."""
    excess = sum(c.points for c in trace) - allowed
    out = list(trace)
    for i in range(len(out) - 1, -1, -1):
        if excess <= 0:
            break
        c = out[i]
        if c.points > 0:
            cut = min(c.points, excess)
            excess -= cut
            out[i] = c.model_copy(
                update={"points": c.points - cut, "note": _join(c.note, "daily cap")}
            )
    return out


def _growth(rules: EarningRules, lines: Sequence[EarnLine]) -> tuple[int, list[Contribution]]:
    rule = rules.growth
    numerators = [line.paid_fen * rule.growth for line in lines]
    staged = _Staged(sum(numerators), rule.per_fen, rule.rounding)
    trace = [
        Contribution(rule_id=rule.id, kind="base", requested=staged.rounded, points=staged.rounded)
    ]
    trace += _category_stages(
        lines, numerators, rule.category_coefficients, staged, "growth_category:"
    )
    return staged.rounded, trace


def evaluate_order(rules: EarningRules, ctx: EarnContext, *, tz: ZoneInfo) -> EarningResult:
    """Points and growth an order earns, with the trace of which rules produced them.

    ``ctx.lines`` carry the cash actually paid per line (see ``patron.orders.pricing``);
    ``tz`` is the business timezone (``business_tz(settings.business_timezone)``).
    """
    day = business_date(ctx.occurred_at, tz)
    paid = sum(line.paid_fen for line in ctx.lines)

    numerators = [line.paid_fen * rules.base.points for line in ctx.lines]
    staged = _Staged(sum(numerators), rules.base.per_fen, rules.rounding)
    base_exact = _Staged(staged.numerator, staged.denominator, rules.rounding)
    base_points = staged.rounded
    trace = [
        Contribution(
            rule_id=rules.base.id,
            kind="base",
            requested=base_points,
            points=base_points,
            note=f"{rules.base.points} per {format_fen(rules.base.per_fen)}",
        )
    ]
    trace += _category_stages(
        ctx.lines, numerators, rules.category_coefficients, staged, "category:"
    )
    trace += _multiplier_stages(rules, ctx, day, tz, staged)
    trace += _bonus_stages(rules, ctx, day, tz, base_exact, paid)

    budgets = remaining_budgets(rules, ctx.budget_used)
    trace = _apply_budgets(trace, budgets)
    cap_left: int | None = None
    if rules.daily_cap_points is not None:
        allowed = max(0, rules.daily_cap_points - ctx.points_earned_today)
        trace = _apply_cap(trace, allowed)
    points = sum(c.points for c in trace)
    # budgets are charged with what was finally awarded, after the daily cap took its share
    for c in trace:
        if c.rule_id in budgets and c.points > 0:
            budgets[c.rule_id] -= c.points
    if rules.daily_cap_points is not None:
        cap_left = max(0, rules.daily_cap_points - ctx.points_earned_today - points)

    growth, growth_trace = _growth(rules, ctx.lines)
    return EarningResult(
        points=points,
        growth=growth,
        base_points=base_points,
        business_date=day,
        points_trace=tuple(trace),
        growth_trace=tuple(growth_trace),
        budget_remaining=budgets,
        daily_cap_remaining=cap_left,
    )


def evaluate_profile_completion(
    rules: EarningRules,
    *,
    profile_complete: bool,
    already_awarded: bool,
    budget_used: Mapping[str, int] | None = None,
    points_earned_today: int = 0,
) -> Contribution | None:
    """The one-off profile-completion bonus, or None when nothing is due.

    The bonus is subject to its budget and to the daily cap like any other earning; the caller
    records it as awarded only when the returned contribution has ``points > 0``.
    """
    rule = rules.profile_completion
    if not (rule.enabled and profile_complete and not already_awarded) or rule.points == 0:
        return None
    granted = rule.points
    note = "profile completed"
    budget_left = remaining_budgets(rules, budget_used or {}).get(rule.id)
    if budget_left is not None and budget_left < granted:
        granted, note = budget_left, _join(note, "budget")
    if rules.daily_cap_points is not None:
        allowed = max(0, rules.daily_cap_points - points_earned_today)
        if allowed < granted:
            granted, note = allowed, _join(note, "daily cap")
    return Contribution(
        rule_id=rule.id, kind="bonus", requested=rule.points, points=granted, note=note
    )


# ---------------------------------------------------------------- returns (P6)


def proportional_clawback(
    *, earned: int, order_paid_fen: int, returned_before_fen: int, returned_now_fen: int
) -> int:
    """Points (or growth) to take back for a return of ``returned_now_fen`` paid.

    Works on cumulative shares: after all returns so far the order has given back
    ``floor(earned × returned_total / order_paid)``; this return takes the difference from the
    previous returns. So partial returns never sum past ``earned``, and the return that brings the
    total to the full paid amount takes exactly the remainder. The same helper apportions a points
    *payment* to refund (``earned`` = points paid with).
    """
    if min(earned, order_paid_fen, returned_before_fen, returned_now_fen) < 0:
        raise ValueError("clawback inputs must not be negative")
    returned_after = returned_before_fen + returned_now_fen
    if returned_after > order_paid_fen:
        raise ValueError(
            f"returns total {returned_after} fen, more than the order's paid {order_paid_fen} fen"
        )
    if order_paid_fen == 0:
        if earned:
            raise ValueError("an order that paid nothing cannot have earned points to claw back")
        return 0
    taken_after = earned * returned_after // order_paid_fen
    taken_before = earned * returned_before_fen // order_paid_fen
    return taken_after - taken_before


# ---------------------------------------------------------------- console preview


class EarningPreview(_Frozen):
    points: int
    growth: int
    result: EarningResult
    text: str


def preview_earning(
    rules: EarningRules,
    *,
    amount_fen: int,
    category: str,
    at: AwareDatetime,
    tz: ZoneInfo,
    tier_code: str | None = None,
    tier_name: str | None = None,
    tier_multiplier_bp: int = BP,
) -> EarningPreview:
    """One sentence for the rules console, e.g. "A Gold member spending ¥300 on beauty on
    2026-03-08 earns 720 points (…)": a single line, no member history (no bonuses or caps)."""
    ctx = EarnContext(
        occurred_at=at,
        lines=(EarnLine(category=category, paid_fen=amount_fen),),
        tier_code=tier_code,
        tier_multiplier_bp=tier_multiplier_bp,
    )
    result = evaluate_order(rules, ctx, tz=tz)
    names = {w.id: w.name or w.id for w in rules.windows}
    parts: list[str] = []
    for c in result.points_trace:
        if c.kind == "base":
            parts.append(f"base {c.points}")
        elif c.kind == "category":
            parts.append(f"category {category} {format_factor(c.factor_bp or 0)} ({c.points:+d})")
        else:
            label = (tier_name or tier_code or "tier") if c.kind == "tier" else names[c.rule_id]
            if c.requested == 0 and "superseded" in c.note:
                parts.append(f"{label} {format_factor(c.factor_bp or 0)} superseded")
            else:
                parts.append(f"{label} {format_factor(c.factor_bp or 0)} ({c.points:+d})")
    who = f"A {tier_name or tier_code} member" if (tier_name or tier_code) else "A member"
    text = (
        f"{who} spending {format_fen(amount_fen)} on {category} on {result.business_date} "
        f"earns {result.points} points ({', '.join(parts)}) and {result.growth} growth"
    )
    return EarningPreview(points=result.points, growth=result.growth, result=result, text=text)
