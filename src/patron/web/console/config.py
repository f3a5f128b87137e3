"""Console: program configuration — the overview, the tier ladder with its benefits, points value
and the points-payment share, and the expiry policy. Earning rules and their preview are in
``config_earning``; the form plumbing shared by both is in ``config_forms``; what the previews
of this module's pages compute is in ``config_previews``.

Each page validates with the same settings model as the REST API and saves through the same
service call, which writes the audit record (``settings.update``) when something changed. Each
page's preview (``POST …/preview`` for htmx; ``action=preview`` posts the whole page without
JavaScript) is computed from the unsaved draft and writes nothing.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from patron.ledger import service as ledger
from patron.ledger.domain import ExpiryPolicy
from patron.orders import service as orders
from patron.orders.pricing import PricingSettings
from patron.program import service as program
from patron.tiers import service as tiers
from patron.tiers.domain import TierLadder
from patron.web.console import config_previews as previews
from patron.web.console.config_forms import (
    DraftForm,
    Loc,
    factor_text,
    percent_text,
    rows,
    yuan_text,
)
from patron.web.console.page_kit import Configurer, Posted, console_router
from patron.web.i18n import N_
from patron.web.pages import (
    CONSOLE_PREFIX,
    get_session,
    redirect,
    render,
    translate,
)

router = console_router()
BASE = CONSOLE_PREFIX + "/config"
SAVED = N_("Settings saved.")
MAX_TIERS = 5
SECTIONS = (tiers.SECTION, orders.EARNING_SECTION, orders.PRICING_SECTION, ledger.SECTION)


def draft(request: Request, raw: dict[str, str]) -> DraftForm:
    return DraftForm(raw=raw, tr=lambda message: translate(request, message))


def _now(request: Request) -> Any:
    return request.app.state.clock.now()


# ---- who saved last, and refusing to overwrite a save made after the page was opened ----------

STALE = N_(
    "{who} saved these settings at {when}, after you opened this page. Nothing was saved: "
    "reload the page to see their changes."
)


def with_version(request: Request, key: str, values: dict[str, str]) -> dict[str, str]:
    """``values`` plus the section's version, sent back with the form."""
    info = program.section_info(get_session(request), key)
    return values | {"version": str(info.version) if info else "0"}


def page_context(request: Request, key: str, **ctx: Any) -> dict[str, Any]:
    return {"nav": "config", "info": program.section_info(get_session(request), key), **ctx}


def changed_since_opened(request: Request, form: DraftForm, key: str) -> bool:
    """True (with a form error) when someone saved ``key`` after this form was opened. A post
    without a version (a script) is not checked."""
    sent = form.raw.get("version")
    info = program.section_info(get_session(request), key, lock=True)
    if sent is None or info is None or sent == str(info.version):
        return False
    when = request.app.state.renderer.datetime_text(info.updated_at)
    form.error("form", STALE, who=info.updated_by, when=when)
    return True


# ---- overview --------------------------------------------------------------------------------


@router.get("/config")
def overview(request: Request, viewer: Configurer) -> HTMLResponse:
    session = get_session(request)
    ctx = {
        "nav": "config",
        "ladder": tiers.get_ladder(session),
        "rules": orders.earning_rules(session),
        "pricing": orders.pricing_settings(session),
        "points": ledger.get_points_settings(session),
        "info": {key: program.section_info(session, key) for key in SECTIONS},
        "factor_text": factor_text,
        "percent_text": percent_text,
    }
    return render(request, "console/config/overview.html", ctx)


# ---- tier ladder and benefits ----------------------------------------------------------------

_TIER_FLAGS = ("free_shipping", "free_returns", "dedicated_service", "priority_purchase")


def ladder_values(ladder: TierLadder) -> dict[str, str]:
    """The ladder as the form's input values, plus blank rows up to five tiers."""
    values = {
        "window": ladder.qualification_window,
        "grace": str(ladder.grace_days),
        "demote": "on" if ladder.demote_on_refund else "",
    }
    for i, t in enumerate(ladder.tiers):
        b = t.benefits
        p = f"tier-{i}-"
        values |= {
            p + "code": t.code,
            p + "name": t.name,
            p + "name_zh": t.name_zh,
            p + "threshold": str(t.threshold),
            p + "retention": "" if t.retention_threshold is None else str(t.retention_threshold),
            p + "discount": percent_text(b.discount_bp),
            p + "multiplier": factor_text(b.points_multiplier_bp),
            p + "birthday": percent_text(b.birthday_discount_bp),
            p + "free_orders": str(b.free_orders_per_year),
            p + "badge": b.badge or "",
        }
        values |= {p + f: "on" if getattr(b, f) else "" for f in _TIER_FLAGS}
    for i in range(len(ladder.tiers), MAX_TIERS):
        values[f"tier-{i}-code"] = ""
    return values


def parse_ladder(form: DraftForm) -> TierLadder | None:
    form.choice("window", ("qualification_window",), ("rolling_12_months", "calendar_year"))
    form.integer("grace", ("grace_days",))
    form.flag("demote", ("demote_on_refund",))
    kept: list[int] = []  # ladder position → form row
    for row in rows(form.raw, "tier"):
        p = f"tier-{row}-"
        if form.get(p + "remove") or not any(
            form.get(p + f) for f in ("code", "name", "threshold")
        ):
            continue  # removed, or an unused blank row
        loc: Loc = ("tiers", len(kept))
        kept.append(row)
        form.text(p + "code", (*loc, "code"))
        form.text(p + "name", (*loc, "name"))
        form.text(p + "name_zh", (*loc, "name_zh"))
        form.integer(p + "threshold", (*loc, "threshold"))
        form.integer(p + "retention", (*loc, "retention_threshold"), optional=True)
        ben: Loc = (*loc, "benefits")
        form.scaled(p + "discount", (*ben, "discount_bp"), "percent")
        form.scaled(p + "multiplier", (*ben, "points_multiplier_bp"), "factor")
        form.scaled(p + "birthday", (*ben, "birthday_discount_bp"), "percent")
        form.integer(p + "free_orders", (*ben, "free_orders_per_year"))
        form.text(p + "badge", (*ben, "badge"))
        if not form.get(p + "badge"):
            form.put((*ben, "badge"), None)
        for f in _TIER_FLAGS:
            form.flag(p + f, (*ben, f))
    form.data.setdefault("tiers", {})

    def locate(form: DraftForm, loc: Loc) -> str | None:
        return _locate_ladder(form, loc, kept)

    return form.validate(TierLadder, locate)


def _locate_ladder(form: DraftForm, loc: Loc, kept: list[int]) -> str | None:
    """Place the ladder's cross-tier rules next to the tier row that breaks them (the same
    checks, in the same order, as ``TierLadder._check``)."""
    if loc not in ((), ("tiers",)):
        return None
    listed = [form.data["tiers"][i] for i in range(len(kept))]
    if not 3 <= len(listed) <= MAX_TIERS:
        form.error("form", N_("A ladder has 3 to 5 tiers."))
        return "form"
    seen: set[str] = set()
    for row, tier in zip(kept, listed, strict=True):
        if tier.get("code") in seen:
            form.error(f"tier-{row}-code", N_("Another tier already uses this code."))
            return f"tier-{row}-code"
        seen.add(tier.get("code", ""))
    if listed[0].get("threshold") != 0:
        form.error(f"tier-{kept[0]}-threshold", N_("The first tier starts at 0."))
        return f"tier-{kept[0]}-threshold"
    for i in range(1, len(listed)):
        before, here = listed[i - 1].get("threshold"), listed[i].get("threshold")
        if isinstance(before, int) and isinstance(here, int) and here <= before:
            name = f"tier-{kept[i]}-threshold"
            form.error(
                name,
                N_("Thresholds must increase: enter more than {limit} (the tier before)."),
                limit=f"{before:,}",
            )
            return name
    for row, tier in zip(kept, listed, strict=True):
        keep, reach = tier.get("retention_threshold"), tier.get("threshold")
        if isinstance(keep, int) and isinstance(reach, int) and keep > reach:
            name = f"tier-{row}-retention"
            form.error(name, N_("Cannot be more than the tier's threshold."))
            return name
    return None


def _tiers_page(
    request: Request,
    values: dict[str, str],
    errors: dict[str, str],
    preview: previews.LadderPreview,
    status: int = 200,
) -> HTMLResponse:
    count = max(MAX_TIERS, max(rows(values, "tier"), default=-1) + 1)
    ctx = page_context(
        request,
        tiers.SECTION,
        values=values,
        errors=errors,
        tier_rows=range(count),
        preview=preview,
    )
    return render(request, "console/config/tiers.html", ctx, status=status)


@router.get("/config/tiers")
def tiers_form(request: Request, viewer: Configurer) -> HTMLResponse:
    ladder = tiers.get_ladder(get_session(request))
    values = with_version(request, tiers.SECTION, ladder_values(ladder))
    return _tiers_page(request, values, {}, previews.ladder_preview(request, ladder))


@router.post("/config/tiers")
def tiers_save(request: Request, viewer: Configurer, raw: Posted) -> Response:
    """Save (``action=save``), or without JavaScript, preview the draft (``action=preview``)."""
    form = draft(request, raw)
    ladder = parse_ladder(form)
    if raw.get("action") == "preview" or ladder is None:
        preview = previews.ladder_preview(request, ladder)
        return _tiers_page(request, raw, form.errors, preview, 422 if ladder is None else 200)
    if changed_since_opened(request, form, tiers.SECTION):
        preview = previews.ladder_preview(request, ladder)
        return _tiers_page(request, raw, form.errors, preview, status=409)
    tiers.put_ladder(get_session(request), viewer.principal, ladder, _now(request))
    return redirect(request, BASE + "/tiers", flash=SAVED)


def _fragment(request: Request, template: str, form: DraftForm, preview: Any) -> HTMLResponse:
    """A preview fragment for htmx: 422 while the draft, or the preview's own inputs, has
    problems (listed in the fragment as links to their fields)."""
    status = 422 if form.errors or preview.errors else 200
    return render(request, template, {"preview": preview, "errors": form.errors}, status=status)


@router.post("/config/tiers/preview")
def tiers_preview(request: Request, viewer: Configurer, raw: Posted) -> HTMLResponse:
    """The tier forecast alone, for htmx: computed over the draft ladder; writes nothing."""
    form = draft(request, raw)
    preview = previews.ladder_preview(request, parse_ladder(form))
    return _fragment(request, "console/config/_tiers_preview.html", form, preview)


# ---- points value and the points-payment share -----------------------------------------------


def pricing_values(p: PricingSettings) -> dict[str, str]:
    return {
        "points_per_unit": str(p.points_per_unit),
        "unit_value": yuan_text(p.unit_fen),
        "share": percent_text(p.max_points_share_bp),
        "step": str(p.points_step),
        "member_price_discount": "on" if p.tier_discount_on_member_price else "",
    }


def parse_pricing(form: DraftForm) -> PricingSettings | None:
    form.integer("points_per_unit", ("points_per_unit",))
    form.scaled("unit_value", ("unit_fen",), "money")
    form.scaled("share", ("max_points_share_bp",), "percent")
    form.integer("step", ("points_step",))
    form.flag("member_price_discount", ("tier_discount_on_member_price",))
    return form.validate(PricingSettings)


def _pricing_page(
    request: Request,
    values: dict[str, str],
    errors: dict[str, str],
    preview: previews.PointsPreview,
    status: int = 200,
) -> HTMLResponse:
    ctx = page_context(
        request, orders.PRICING_SECTION, values=values, errors=errors, preview=preview
    )
    return render(request, "console/config/points.html", ctx, status=status)


@router.get("/config/points")
def pricing_form(request: Request, viewer: Configurer) -> HTMLResponse:
    pricing = orders.pricing_settings(get_session(request))
    values = pricing_values(pricing) | previews.default_points_values()
    values = with_version(request, orders.PRICING_SECTION, values)
    preview = previews.points_preview(request, draft(request, values), pricing)
    return _pricing_page(request, values, {}, preview)


@router.post("/config/points")
def pricing_save(request: Request, viewer: Configurer, raw: Posted) -> Response:
    """Save (``action=save``), or without JavaScript, preview the draft (``action=preview``)."""
    form = draft(request, raw)
    value = parse_pricing(form)
    if raw.get("action") == "preview" or value is None:
        preview = previews.points_preview(request, form, value)
        status = 422 if form.errors or preview.errors else 200
        return _pricing_page(request, raw, form.errors, preview, status)
    if changed_since_opened(request, form, orders.PRICING_SECTION):
        preview = previews.points_preview(request, form, value)
        return _pricing_page(request, raw, form.errors, preview, status=409)
    program.put_section(
        get_session(request), viewer.principal, orders.PRICING_SECTION, value, now=_now(request)
    )
    return redirect(request, BASE + "/points", flash=SAVED)


@router.post("/config/points/preview")
def pricing_preview(request: Request, viewer: Configurer, raw: Posted) -> HTMLResponse:
    """The worked examples alone, for htmx: computed over the draft; writes nothing."""
    form = draft(request, raw)
    preview = previews.points_preview(request, form, parse_pricing(form))
    return _fragment(request, "console/config/_points_preview.html", form, preview)


# ---- expiry policy and the other points-ledger settings --------------------------------------

EXPIRY_KINDS = ("days_after", "end_of_month", "end_of_year", "never")


def expiry_values(s: ledger.PointsSettings) -> dict[str, str]:
    return {
        "kind": s.expiry.kind,
        "n": str(s.expiry.n),
        "reminder_days": str(s.reminder_days),
        "approval_limit": str(s.adjustment_approval_limit),
        "daily_limit": str(s.adjustment_daily_limit),
        "self_approval_hours": str(s.self_approval_delay_hours),
        "direct_earn_limit": str(s.direct_earn_limit),
        "pending_days": str(s.default_pending_days),
    }


def parse_expiry(form: DraftForm) -> ledger.PointsSettings | None:
    form.choice("kind", ("expiry", "kind"), EXPIRY_KINDS)
    if form.get("kind") == "never" and not form.get("n"):
        form.put(("expiry", "n"), ExpiryPolicy().n)  # the number means nothing for "never"
        form.bind("n", ("expiry", "n"), "int")
    else:
        form.integer("n", ("expiry", "n"))
    form.integer("reminder_days", ("reminder_days",))
    form.integer("approval_limit", ("adjustment_approval_limit",))
    form.integer("daily_limit", ("adjustment_daily_limit",))
    form.integer("self_approval_hours", ("self_approval_delay_hours",))
    form.integer("direct_earn_limit", ("direct_earn_limit",))
    form.integer("pending_days", ("default_pending_days",))
    return form.validate(ledger.PointsSettings)


def _expiry_page(
    request: Request,
    values: dict[str, str],
    errors: dict[str, str],
    preview: previews.ExpiryPreview,
    status: int = 200,
) -> HTMLResponse:
    ctx = page_context(request, ledger.SECTION, values=values, errors=errors, preview=preview)
    return render(request, "console/config/expiry.html", ctx, status=status)


@router.get("/config/expiry")
def expiry_form(request: Request, viewer: Configurer) -> HTMLResponse:
    points = ledger.get_points_settings(get_session(request))
    values = with_version(request, ledger.SECTION, expiry_values(points))
    preview = previews.expiry_preview(request, draft(request, values), points)
    return _expiry_page(request, values, {}, preview)


@router.post("/config/expiry")
def expiry_save(request: Request, viewer: Configurer, raw: Posted) -> Response:
    """Save (``action=save``), or without JavaScript, preview the draft (``action=preview``)."""
    form = draft(request, raw)
    value = parse_expiry(form)
    if raw.get("action") == "preview" or value is None:
        preview = previews.expiry_preview(request, form, value)
        status = 422 if form.errors or preview.errors else 200
        return _expiry_page(request, raw, form.errors, preview, status)
    if changed_since_opened(request, form, ledger.SECTION):
        preview = previews.expiry_preview(request, form, value)
        return _expiry_page(request, raw, form.errors, preview, status=409)
    program.put_section(
        get_session(request), viewer.principal, ledger.SECTION, value, now=_now(request)
    )
    return redirect(request, BASE + "/expiry", flash=SAVED)


@router.post("/config/expiry/preview")
def expiry_preview(request: Request, viewer: Configurer, raw: Posted) -> HTMLResponse:
    """The expiry dates and counts alone, for htmx: computed over the draft; writes nothing."""
    form = draft(request, raw)
    preview = previews.expiry_preview(request, form, parse_expiry(form))
    return _fragment(request, "console/config/_expiry_preview.html", form, preview)
