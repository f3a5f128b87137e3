"""Console: the earning rules (base rate, category coefficients, double-points windows, bonuses,
growth, budgets and the daily cap) with a preview computed by the rules engine.

The preview evaluates the DRAFT in the form — what the operator typed, not yet saved — with
``patron.rules.domain.preview_earning``; it never writes. With htmx it swaps only the preview
box; without JavaScript the same button posts the whole page back with the preview filled in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from patron.catalog import service as catalog
from patron.kit.timeutil import business_tz
from patron.orders import service as orders
from patron.program import service as program
from patron.rules.definitions import (
    DateRangeWindow,
    EarningRules,
    MonthlyWindow,
    WeeklyWindow,
    window_active,
)
from patron.rules.domain import EarningPreview, format_factor, preview_earning
from patron.tiers import service as tiers
from patron.tiers.domain import Tier, TierLadder
from patron.web.console.config import (
    BASE,
    SAVED,
    changed_since_opened,
    draft,
    page_context,
    with_version,
)
from patron.web.console.config_forms import (
    DraftForm,
    Loc,
    factor_text,
    percent_text,
    rows,
    yuan_text,
)
from patron.web.console.config_previews import tier_label
from patron.web.console.page_kit import Configurer, Posted, console_router
from patron.web.i18n import N_
from patron.web.pages import get_session, redirect, render

router = console_router()
ROUNDINGS = ("floor", "half_up", "ceil")
COMBINES = ("highest", "multiply")
WINDOW_KINDS = ("monthly", "weekly", "date_range")
BLANK_CATEGORIES = 3
BLANK_WINDOWS = 1
#: the pattern of ``rules.definitions.CategoryCode`` (ASCII only: ``str.isalnum`` is not)
CATEGORY_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
PREVIEW_DEFAULTS = {"tier": "gold", "amount": "300.00", "category": "beauty"}


# ---- rules ↔ form values ---------------------------------------------------------------------


def _budget(value: int | None) -> str:
    return "" if value is None else str(value)


def rules_values(rules: EarningRules) -> dict[str, str]:
    values = {
        "base_points": str(rules.base.points),
        "base_per": yuan_text(rules.base.per_fen),
        "rounding": rules.rounding.value,
        "combine": rules.combine.value,
        "daily_cap": "" if rules.daily_cap_points is None else str(rules.daily_cap_points),
        "fp_enabled": "on" if rules.first_purchase.enabled else "",
        "fp_bonus": percent_text(rules.first_purchase.bonus_bp),
        "fp_min": yuan_text(rules.first_purchase.min_paid_fen),
        "fp_budget": _budget(rules.first_purchase.budget_points),
        "wel_enabled": "on" if rules.welcome.enabled else "",
        "wel_points": str(rules.welcome.points),
        "wel_months": str(rules.welcome.within_months),
        "wel_min": yuan_text(rules.welcome.min_paid_fen),
        "wel_budget": _budget(rules.welcome.budget_points),
        "pc_enabled": "on" if rules.profile_completion.enabled else "",
        "pc_points": str(rules.profile_completion.points),
        "pc_budget": _budget(rules.profile_completion.budget_points),
        "growth_growth": str(rules.growth.growth),
        "growth_per": yuan_text(rules.growth.per_fen),
        "growth_rounding": rules.growth.rounding.value,
    }
    coefficients = sorted(rules.category_coefficients.items())
    for i, (code, factor) in enumerate(coefficients):
        values |= {f"cat-{i}-code": code, f"cat-{i}-factor": factor_text(factor)}
    for i in range(len(coefficients), len(coefficients) + BLANK_CATEGORIES):
        values[f"cat-{i}-code"] = ""
    for i, w in enumerate(rules.windows):
        p = f"win-{i}-"
        values |= {
            p + "kind": w.kind,
            p + "id": w.id,
            p + "name": w.name,
            p + "multiplier": factor_text(w.multiplier_bp),
            p + "budget": _budget(w.budget_points),
        }
        if isinstance(w, DateRangeWindow):
            values |= {p + "start": w.start.isoformat(), p + "end": w.end.isoformat()}
        else:
            # the campaigns' kinds (last weekend, annual, birthday month) have no day list
            days: tuple[int, ...] = (
                w.days
                if isinstance(w, MonthlyWindow)
                else w.weekdays
                if isinstance(w, WeeklyWindow)
                else ()
            )
            values |= {
                p + "days": ", ".join(str(d) for d in days),
                p + "from": w.active_from.isoformat() if w.active_from else "",
                p + "until": w.active_until.isoformat() if w.active_until else "",
            }
    for i in range(len(rules.windows), len(rules.windows) + BLANK_WINDOWS):
        values |= {f"win-{i}-id": "", f"win-{i}-kind": "monthly", f"win-{i}-multiplier": "2"}
    return values


def parse_rules(form: DraftForm, saved: EarningRules) -> EarningRules | None:
    # Rule ids of the base rate and the bonuses, and growth's own category coefficients, are not
    # on this page: they keep their saved values.
    form.put(("base", "id"), saved.base.id)
    form.integer("base_points", ("base", "points"))
    form.scaled("base_per", ("base", "per_fen"), "money")
    form.choice("rounding", ("rounding",), ROUNDINGS)
    form.choice("combine", ("combine",), COMBINES)
    form.integer("daily_cap", ("daily_cap_points",), optional=True)

    form.put(("category_coefficients",), {})
    codes: dict[str, int] = {}
    for row in rows(form.raw, "cat"):
        code, factor = form.get(f"cat-{row}-code"), form.get(f"cat-{row}-factor")
        if not code and not factor:
            continue
        if not code:
            form.error(f"cat-{row}-code", N_("Enter a category code."))
            continue
        if code in codes:
            form.error(f"cat-{row}-code", N_("This category is listed twice."))
            continue
        codes[code] = row
        form.bind(f"cat-{row}-code", ("category_coefficients", code, "[key]"), "text")
        form.scaled(f"cat-{row}-factor", ("category_coefficients", code), "factor")

    kept: list[int] = []
    form.put(("windows",), {})
    for row in rows(form.raw, "win"):
        p = f"win-{row}-"
        if form.get(p + "remove") or not (form.get(p + "id") or form.get(p + "name")):
            continue
        loc: Loc = ("windows", len(kept))
        kept.append(row)
        kind = form.choice(p + "kind", (*loc, "kind"), WINDOW_KINDS)
        form.bind(p + "kind", loc, "choice")
        form.text(p + "id", (*loc, "id"))
        form.text(p + "name", (*loc, "name"))
        form.scaled(p + "multiplier", (*loc, "multiplier_bp"), "factor")
        form.integer(p + "budget", (*loc, "budget_points"), optional=True)
        if kind == "date_range":
            form.day(p + "start", (*loc, "start"))
            form.day(p + "end", (*loc, "end"))
        elif kind is not None:
            form.numbers(p + "days", (*loc, "days" if kind == "monthly" else "weekdays"))
            form.day(p + "from", (*loc, "active_from"), optional=True)
            form.day(p + "until", (*loc, "active_until"), optional=True)

    fp: Loc = ("first_purchase",)
    form.put((*fp, "id"), saved.first_purchase.id)
    form.flag("fp_enabled", (*fp, "enabled"))
    form.scaled("fp_bonus", (*fp, "bonus_bp"), "percent")
    form.scaled("fp_min", (*fp, "min_paid_fen"), "money")
    form.integer("fp_budget", (*fp, "budget_points"), optional=True)
    wel: Loc = ("welcome",)
    form.put((*wel, "id"), saved.welcome.id)
    form.flag("wel_enabled", (*wel, "enabled"))
    form.integer("wel_points", (*wel, "points"))
    form.integer("wel_months", (*wel, "within_months"))
    form.scaled("wel_min", (*wel, "min_paid_fen"), "money")
    form.integer("wel_budget", (*wel, "budget_points"), optional=True)
    pc: Loc = ("profile_completion",)
    form.put((*pc, "id"), saved.profile_completion.id)
    form.flag("pc_enabled", (*pc, "enabled"))
    form.integer("pc_points", (*pc, "points"))
    form.integer("pc_budget", (*pc, "budget_points"), optional=True)
    gr: Loc = ("growth",)
    form.put((*gr, "id"), saved.growth.id)
    form.put((*gr, "category_coefficients"), dict(saved.growth.category_coefficients))
    form.integer("growth_growth", (*gr, "growth"))
    form.scaled("growth_per", (*gr, "per_fen"), "money")
    form.choice("growth_rounding", (*gr, "rounding"), ROUNDINGS)

    def locate(form: DraftForm, loc: Loc) -> str | None:
        return _locate_rules(form, loc, kept)

    return form.validate(EarningRules, locate)


def _locate_rules(form: DraftForm, loc: Loc, kept: list[int]) -> str | None:
    """Place the rule set's cross-field rules next to the window row that breaks them (the
    checks of ``EarningRules`` and its window models)."""
    windows = [form.data["windows"][i] for i in range(len(kept))]
    if len(loc) == 2 and loc[0] == "windows" and isinstance(loc[1], int):
        w, p = windows[loc[1]], f"win-{kept[loc[1]]}-"
        start, end = w.get("start"), w.get("end")
        if isinstance(start, date) and isinstance(end, date):
            if end < start:
                form.error(p + "end", N_("The end date is before the start date."))
            else:
                form.error(p + "end", N_("A date range may span at most 366 days."))
            return p + "end"
        since, until = w.get("active_from"), w.get("active_until")
        if isinstance(since, date) and isinstance(until, date) and until < since:
            form.error(p + "until", N_("The end date is before the start date."))
            return p + "until"
        form.error(p + "days", N_("A day is listed twice."))
        return p + "days"
    if loc != ():
        return None
    reserved = {"base", "first_purchase", "welcome", "profile_completion", "growth"}
    seen: set[str] = {str(form.data[k]["id"]) for k in reserved}
    for row, w in zip(kept, windows, strict=True):
        if w.get("id") in seen:
            form.error(f"win-{row}-id", N_("Another rule already uses this id."))
            return f"win-{row}-id"
        seen.add(str(w.get("id")))
    previous: date | None = None
    for row, w in zip(kept, windows, strict=True):
        if w.get("kind") != "date_range":
            continue
        if previous is not None and isinstance(w.get("start"), date) and w["start"] <= previous:
            form.error(
                f"win-{row}-start",
                N_("Overlaps the date range listed before it; list date ranges by start date."),
            )
            return f"win-{row}-start"
        previous = w.get("end") if isinstance(w.get("end"), date) else previous
    return None


# ---- the preview -----------------------------------------------------------------------------


@dataclass
class Preview:
    """What the preview box shows: the inputs, and the engine's result (None with errors)."""

    values: dict[str, str]
    errors: dict[str, str]
    result: EarningPreview | None
    tier: Tier | None
    at: datetime | None
    tier_label: str = ""
    amount_fen: int = 0
    category: str = ""
    window_names: dict[str, str] = field(default_factory=dict)

    def parts(self) -> list[PreviewPart]:
        """The engine's trace as lines the template words in the viewer's language."""
        if self.result is None:
            return []
        out: list[PreviewPart] = []
        for c in self.result.result.points_trace:
            if c.kind == "base":
                label = ""
            elif c.kind == "category":
                label = c.rule_id.removeprefix("category:")
            elif c.kind == "tier":
                label = self.tier_label
            else:
                label = self.window_names.get(c.rule_id, c.rule_id)
            superseded = c.requested == 0 and "superseded" in c.note
            factor = format_factor(c.factor_bp) if c.factor_bp is not None else ""
            out.append(PreviewPart(c.kind, label, factor, c.points, superseded))
        return out


@dataclass(frozen=True)
class PreviewPart:
    kind: str
    label: str
    factor: str
    points: int
    superseded: bool


def next_member_day(rules: EarningRules, today: date) -> date | None:
    """The next business date (today included) on which a monthly window — a member day — or,
    failing that, a weekly window is active."""
    for kind in (MonthlyWindow, WeeklyWindow):
        recurring = [w for w in rules.windows if isinstance(w, kind)]
        for offset in range(62):
            day = today + timedelta(days=offset)
            if any(window_active(w, day) for w in recurring):
                return day
    return None


def default_preview_values(request: Request, rules: EarningRules) -> dict[str, str]:
    tz = business_tz(request.app.state.settings.business_timezone)
    now: datetime = request.app.state.clock.now()
    day = next_member_day(rules, now.astimezone(tz).date())
    at = datetime.combine(day, time(12, 0), tz) if day else now.astimezone(tz)
    return {f"preview_{k}": v for k, v in PREVIEW_DEFAULTS.items()} | {
        "preview_at": at.strftime("%Y-%m-%dT%H:%M")
    }


def compute_preview(
    request: Request, form: DraftForm, rules: EarningRules | None, ladder: TierLadder
) -> Preview:
    """Run the engine over the draft ``rules`` for the preview inputs in ``form``."""
    tz = business_tz(request.app.state.settings.business_timezone)
    inputs = DraftForm(raw=form.raw, tr=form.tr)
    codes = tuple(t.code for t in ladder.tiers)
    tier_code = inputs.choice("preview_tier", ("tier",), codes)
    amount = inputs.scaled("preview_amount", ("amount",), "money")
    category = inputs.get("preview_category")
    if amount is not None and not 0 <= amount <= 10_000_000_000:
        inputs.error("preview_amount", N_("Enter an amount between ¥0 and ¥100,000,000."))
    if not CATEGORY_CODE.match(category):
        inputs.error("preview_category", N_("Enter a category code such as beauty."))
    at: datetime | None = None
    try:
        at = datetime.fromisoformat(inputs.get("preview_at")).replace(tzinfo=tz)
        if not 1900 <= at.year <= 2999:
            raise ValueError("date out of range")
    except ValueError:
        inputs.error("preview_at", N_("Enter a date and time."))
    values = {k: v for k, v in form.raw.items() if k.startswith("preview_")}
    tier = ladder.get(tier_code) if tier_code else None
    if rules is None or inputs.errors or amount is None or at is None or tier is None:
        return Preview(values, inputs.errors, None, tier, at)
    result = preview_earning(
        rules,
        amount_fen=amount,
        category=category,
        at=at,
        tz=tz,
        tier_code=tier.code,
        tier_name=tier.name,
        tier_multiplier_bp=tier.benefits.points_multiplier_bp,
    )
    label = tier_label(request, tier)
    names = {w.id: w.name or w.id for w in rules.windows}
    return Preview(values, {}, result, tier, at, label, amount, category, names)


# ---- pages -----------------------------------------------------------------------------------


def ended_windows(values: dict[str, str], errors: dict[str, str], today: date) -> set[int]:
    """Rows of double-points windows that ended before ``today`` (a date range past its end
    date, a recurring window past its "until" date): the page folds them away. A row with an
    error stays in view."""
    ended: set[int] = set()
    for i in range(max(rows(values, "win"), default=-1) + 1):
        p = f"win-{i}-"
        if not values.get(p + "id") or any(k.startswith(p) for k in errors):
            continue
        last = values.get(p + ("end" if values.get(p + "kind") == "date_range" else "until"))
        try:
            if last and date.fromisoformat(last.strip()) < today:
                ended.add(i)
        except ValueError:
            continue
    return ended


def _page(
    request: Request,
    values: dict[str, str],
    errors: dict[str, str],
    preview: Preview,
    ladder: TierLadder,
    *,
    status: int = 200,
) -> HTMLResponse:
    categories = {c.code: c.name for c in catalog.list_categories(get_session(request))}
    tz = business_tz(request.app.state.settings.business_timezone)
    today = request.app.state.clock.now().astimezone(tz).date()
    ctx = page_context(
        request,
        orders.EARNING_SECTION,
        values=values,
        errors=errors,
        category_rows=range(max(rows(values, "cat"), default=-1) + 1),
        window_rows=range(max(rows(values, "win"), default=-1) + 1),
        preview=preview,
        tier_options=[(t.code, tier_label(request, t)) for t in ladder.tiers],
        categories=categories,
        past_rows=ended_windows(values, errors, today),
    )
    return render(request, "console/config/earning.html", ctx, status=status)


@router.get("/config/earning")
def earning_form(request: Request, viewer: Configurer) -> HTMLResponse:
    session = get_session(request)
    rules, ladder = orders.earning_rules(session), tiers.get_ladder(session)
    values = rules_values(rules) | default_preview_values(request, rules)
    values = with_version(request, orders.EARNING_SECTION, values)
    preview = compute_preview(request, draft(request, values), rules, ladder)
    return _page(request, values, {}, preview, ladder)


@router.post("/config/earning")
def earning_save(request: Request, viewer: Configurer, raw: Posted) -> Response:
    """Save (``action=save``), or without JavaScript, preview the draft (``action=preview``)."""
    session = get_session(request)
    ladder = tiers.get_ladder(session)
    form = draft(request, raw)
    rules = parse_rules(form, orders.earning_rules(session))
    if raw.get("action") == "preview" or rules is None:
        preview = compute_preview(request, form, rules, ladder)
        status = 422 if form.errors or preview.errors else 200
        return _page(request, raw, form.errors, preview, ladder, status=status)
    if changed_since_opened(request, form, orders.EARNING_SECTION):
        preview = compute_preview(request, form, rules, ladder)
        return _page(request, raw, form.errors, preview, ladder, status=409)
    now = request.app.state.clock.now()
    program.put_section(session, viewer.principal, orders.EARNING_SECTION, rules, now=now)
    return redirect(request, BASE + "/earning", flash=SAVED)


@router.post("/config/earning/preview")
def earning_preview(request: Request, viewer: Configurer, raw: Posted) -> HTMLResponse:
    """The preview box alone, for htmx: computed over the draft in the form; writes nothing."""
    session = get_session(request)
    ladder = tiers.get_ladder(session)
    form = draft(request, raw)
    rules = parse_rules(form, orders.earning_rules(session))
    preview = compute_preview(request, form, rules, ladder)
    ctx = {"preview": preview, "errors": form.errors}
    status = 422 if form.errors or preview.errors else 200
    return render(request, "console/config/_preview.html", ctx, status=status)
