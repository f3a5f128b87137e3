"""Console: the daily check-in's settings — points per day, streak bonuses, a coupon for a
streak and the month plan (days checked in within a month → points and/or a coupon)."""

from __future__ import annotations

from typing import Any, Final

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from patron.auth import permissions as perm
from patron.checkin import domain
from patron.checkin import service as checkin
from patron.checkin.domain import CheckinSettings
from patron.coupons import service as coupons
from patron.program import service as program
from patron.web.console.page_kit import CampaignsReader, Configurer, console_router
from patron.web.i18n import N_
from patron.web.pages import (
    CONSOLE_PREFIX,
    Viewer,
    get_session,
    redirect,
    render,
)

router = console_router()

#: rows the form offers for each list
ROWS: Final = 4
INVALID: Final = N_(
    "Check the fields: whole numbers for points and days (streak days 1–366, month plan days "
    "1–31), and points or a coupon on each step of the month plan."
)


def _form_of(s: CheckinSettings) -> dict[str, Any]:
    def pad(rows: list[dict[str, str]], blank: dict[str, str]) -> list[dict[str, str]]:
        return rows + [dict(blank) for _ in range(max(ROWS - len(rows), 1))]

    return {
        "enabled": s.enabled,
        "points_per_day": str(s.points_per_day),
        "cycle_days": str(s.cycle_days),
        "bonuses": pad(
            [{"day": str(d), "points": str(p)} for d, p in s.streak_bonuses.items()],
            {"day": "", "points": ""},
        ),
        "coupons": pad(
            [{"day": str(d), "template": t} for d, t in s.streak_coupons.items()],
            {"day": "", "template": ""},
        ),
        "plan": pad(
            [
                {
                    "days": str(n),
                    "points": str(st.points) if st.points else "",
                    "coupon": st.coupon or "",
                }
                for n, st in s.month_plan.items()
            ],
            {"days": "", "points": "", "coupon": ""},
        ),
    }


def _page(
    request: Request,
    viewer: Viewer,
    *,
    form: dict[str, Any] | None = None,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    session = get_session(request)
    templates = coupons.list_templates(session)
    ctx = {
        "nav": "campaigns",
        "form": form or _form_of(checkin.get_settings(session)),
        "templates": [t for t in templates if t.status == "active"],
        "names": {t.code: t.name for t in templates},
        "error": error,
        "can_write": viewer.can(perm.PROGRAM_CONFIGURE),
    }
    return render(request, "console/campaigns/checkin.html", ctx, status=status)


@router.get("/checkin-plans")
def checkin_plans(request: Request, viewer: CampaignsReader) -> HTMLResponse:
    return _page(request, viewer)


def _rows(raw: Any, prefix: str, fields: tuple[str, ...]) -> list[dict[str, str]]:
    return [
        {f: str(raw.get(f"{prefix}_{f}_{i}", "")).strip()[:64] for f in fields} for i in range(ROWS)
    ]


@router.post("/checkin-plans")
async def checkin_plans_save(request: Request, viewer: Configurer) -> Response:
    raw = await request.form()
    form: dict[str, Any] = {
        "enabled": bool(raw.get("enabled")),
        "points_per_day": str(raw.get("points_per_day", "")).strip()[:10],
        "cycle_days": str(raw.get("cycle_days", "")).strip()[:10],
        "bonuses": _rows(raw, "bonus", ("day", "points")),
        "coupons": _rows(raw, "coupon", ("day", "template")),
        "plan": _rows(raw, "plan", ("days", "points", "coupon")),
    }
    try:
        value = CheckinSettings.model_validate(
            {
                "enabled": form["enabled"],
                "points_per_day": form["points_per_day"],
                "cycle_days": form["cycle_days"],
                "streak_bonuses": {r["day"]: r["points"] for r in form["bonuses"] if r["day"]},
                "streak_coupons": {
                    r["day"]: r["template"] for r in form["coupons"] if r["day"] and r["template"]
                },
                "month_plan": {
                    r["days"]: {"points": r["points"] or 0, "coupon": r["coupon"] or None}
                    for r in form["plan"]
                    if r["days"]
                },
            }
        )
    except ValidationError:
        return _page(request, viewer, form=form, error=INVALID, status=422)
    program.put_section(
        get_session(request),
        viewer.principal,
        domain.SECTION,
        value,
        now=request.app.state.clock.now(),
    )
    return redirect(
        request, f"{CONSOLE_PREFIX}/checkin-plans", flash=N_("Check-in settings saved.")
    )
