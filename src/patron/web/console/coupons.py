"""Console: coupon templates (list, create) and issuing a template to a list of members."""

from __future__ import annotations

import re
from typing import Annotated, Any, Final

from fastapi import Form, Request
from fastapi.responses import HTMLResponse
from starlette.responses import Response

from patron.auth import permissions as perm
from patron.coupons import domain
from patron.coupons import service as coupons
from patron.errors import PatronError
from patron.kit.ids import EXTERNAL_ID_PATTERN
from patron.web.console.desk_common import make_ctx
from patron.web.console.page_kit import Configurer, CouponIssuer, CouponsReader, console_router
from patron.web.i18n import N_
from patron.web.pages import (
    Viewer,
    get_session,
    redirect,
    render,
    translate,
)

router = console_router()

KIND_LABELS: Final = {
    "amount_off": N_("Amount off"),
    "percent_off": N_("Percent off"),
    "threshold": N_("Amount off above a minimum spend"),
    "free_gift": N_("Free gift"),
    "free_shipping": N_("Free shipping"),
}
REFUSAL_LABELS: Final = {
    "over_member_limit": N_("already holds the most allowed"),
    "sold_out": N_("none left"),
    "wrong_tier": N_("other tier"),
    "member_not_active": N_("not active"),
    "member_not_found": N_("no such member"),
}
CODE: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
MEMBER_NO: Final = re.compile(r"[0-9]{10}")


def _yuan_to_fen(text: str) -> int | None:
    """``"30"`` or ``"30.5"`` yuan → fen; None when it is not an amount."""
    m = re.fullmatch(r"(\d{1,9})(?:\.(\d{1,2}))?", text.strip())
    if not m:
        return None
    return int(m.group(1)) * 100 + int((m.group(2) or "0").ljust(2, "0"))


def _page(
    request: Request,
    viewer: Viewer,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    issue: dict[str, Any] | None = None,
    status: int = 200,
) -> HTMLResponse:
    session = get_session(request)
    templates = coupons.list_templates(session)
    ctx = {
        "nav": "coupons",
        "templates": templates,
        "counts": coupons.counts_by_template(session),
        "kinds": KIND_LABELS,
        "refusals": REFUSAL_LABELS,
        "form": form or {"kind": "threshold", "valid_days": "30", "per_member_limit": "1"},
        "errors": errors or {},
        "issue": issue,
        "can_configure": viewer.can(perm.PROGRAM_CONFIGURE),
        "can_issue": viewer.can(perm.COUPONS_ISSUE),
    }
    return render(request, "console/coupons.html", ctx, status=status)


@router.get("/coupons")
def templates_page(request: Request, viewer: CouponsReader) -> HTMLResponse:
    return _page(request, viewer)


@router.post("/coupons/templates")
def create_template(
    request: Request,
    viewer: Configurer,
    code: Annotated[str, Form(max_length=64)] = "",
    name: Annotated[str, Form(max_length=120)] = "",
    kind: Annotated[str, Form(max_length=16)] = "threshold",
    amount: Annotated[str, Form(max_length=20)] = "",
    percent_off: Annotated[str, Form(max_length=5)] = "",
    cap: Annotated[str, Form(max_length=20)] = "",
    min_spend: Annotated[str, Form(max_length=20)] = "",
    valid_days: Annotated[str, Form(max_length=5)] = "",
    categories: Annotated[str, Form(max_length=500)] = "",
    total_quantity: Annotated[str, Form(max_length=10)] = "",
    per_member_limit: Annotated[str, Form(max_length=5)] = "1",
) -> Response:
    form = {k: v for k, v in locals().items() if isinstance(v, str)}
    errors: dict[str, str] = {}
    if not CODE.fullmatch(code):
        errors["code"] = translate(request, N_("Use letters, digits, - and _ only."))
    if not name.strip():
        errors["name"] = translate(request, N_("Give the coupon a name members will read."))
    money = {}
    for field, text in (("amount", amount), ("cap", cap), ("min_spend", min_spend)):
        fen = _yuan_to_fen(text or "0")
        if fen is None:
            errors[field] = translate(request, N_("Enter an amount in yuan, e.g. 30 or 12.50."))
        money[field] = fen or 0
    numbers = {}
    for field, text, lo, hi in (
        ("percent_off", percent_off or "0", 0, 99),
        ("valid_days", valid_days, 1, 3660),
        ("total_quantity", total_quantity or "0", 0, 100_000_000),
        ("per_member_limit", per_member_limit, 1, 1000),
    ):
        if not text.strip().isdecimal() or not lo <= int(text) <= hi:
            errors[field] = translate(
                request, N_("Enter a whole number from %(lo)s to %(hi)s.")
            ) % {
                "lo": lo,
                "hi": f"{hi:,}",
            }
        else:
            numbers[field] = int(text)
    rules: domain.TemplateRules | None = None
    if not errors:
        raw = {
            "kind": kind,
            "amount_fen": money["amount"] if kind in ("amount_off", "threshold") else 0,
            "percent_off_bp": numbers["percent_off"] * 100,
            "cap_fen": money["cap"],
            "min_spend_fen": money["min_spend"],
            "valid_days": numbers["valid_days"],
            "categories": [c for c in re.split(r"[\s,]+", categories) if c],
            "gift_sku": "GIFT" if kind == "free_gift" else None,
        }
        try:
            rules = coupons.parse_rules(raw)
        except PatronError:
            errors["kind"] = translate(
                request,
                N_("These values do not make a coupon of this kind (see the fields it needs)."),
            )
    if errors or rules is None:
        return _page(request, viewer, form=form, errors=errors, status=422)
    session = get_session(request)
    coupons.put_template(
        session,
        make_ctx(request, session, viewer),
        code,
        name=name.strip(),
        rules=rules,
        total_quantity=numbers["total_quantity"] or None,
        per_member_limit=numbers["per_member_limit"],
        points_price=0,
        status="active",
    )
    return redirect(request, "/console/coupons", flash=N_("Coupon template saved."))


@router.post("/coupons/issue")
def issue(
    request: Request,
    viewer: CouponIssuer,
    template: Annotated[str, Form(max_length=64)],
    member_nos: Annotated[str, Form(max_length=200_000)] = "",
    ref: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    session = get_session(request)
    nos = [n for n in re.split(r"[\s,;]+", member_nos) if n]
    errors: dict[str, str] = {}
    if not nos or any(not MEMBER_NO.fullmatch(n) for n in nos) or len(nos) > 10_000:
        errors["member_nos"] = translate(
            request, N_("Enter up to 10,000 member numbers of 10 digits, one per line.")
        )
    if not re.fullmatch(EXTERNAL_ID_PATTERN, ref):
        errors["ref"] = translate(
            request,
            N_("Name this issue with letters, digits, - and _: a repeat then issues nothing."),
        )
    ids = coupons.member_ids_by_no(session, nos) if not errors else {}
    missing = [n for n in nos if n not in ids]
    if not errors and missing:
        errors["member_nos"] = translate(request, N_("No member has the number %(no)s.")) % {
            "no": missing[0]
        }
    if errors:
        return _page(request, viewer, errors=errors, status=422)
    ctx = make_ctx(request, session, viewer)
    try:
        report = coupons.issue_many(
            session,
            ctx,
            template,
            list(ids.values()),
            reason="manual",
            key=domain.issue_key("manual", ref, at=ctx.now, tz=ctx.tz),
        )
    except PatronError:
        errors["template"] = translate(request, N_("This template is paused or does not exist."))
        return _page(request, viewer, errors=errors, status=422)
    by_id = {mid: no for no, mid in ids.items()}
    result = {
        "template": template,
        "issued": len(report.issued),
        "already": len(report.already),
        "refused": [(by_id[mid], why) for mid, why in sorted(report.refused.items())],
    }
    return _page(request, viewer, issue=result)
