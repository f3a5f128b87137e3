"""Console: the schedule of NPS surveys (settings section ``service``, key ``nps_schedule``),
which the job ``nps-surveys`` follows and whose answers the portal takes at ``/portal/survey``.

The form validates with the same model as ``PUT /api/v1/service/settings`` and saves through the
same service call (which writes the ``settings.update`` audit record); the other service
settings (response targets, the VIP queue) are kept as they are. Like the program settings, a
save made after the page was opened is refused rather than overwritten."""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from patron.messaging import service as messaging
from patron.service import domain, surveys, tickets
from patron.web.console.config import (
    changed_since_opened,
    draft,
    page_context,
    with_version,
)
from patron.web.console.config_forms import DraftForm
from patron.web.console.page_kit import Configurer, Posted, console_router
from patron.web.i18n import N_
from patron.web.pages import get_session, redirect, render

router = console_router()
PATH: Final = "/console/service/nps/schedule"
#: the value of the template picker that means "Patron's own text with the survey link"
OWN_TEXT: Final = ""


def schedule_values(s: domain.NpsSchedule) -> dict[str, str]:
    return {
        "enabled": "on" if s.enabled else "",
        "interval_days": str(s.interval_days),
        "sample": str(s.sample),
        "member_days": str(s.member_days),
        "template": s.template or OWN_TEXT,
    }


def parse_schedule(form: DraftForm, templates: tuple[str, ...]) -> domain.NpsSchedule | None:
    form.flag("enabled", ("enabled",))
    form.integer("interval_days", ("interval_days",))
    form.integer("sample", ("sample",))
    form.integer("member_days", ("member_days",))
    if form.choice("template", ("template",), (OWN_TEXT, *templates)) == OWN_TEXT:
        form.put(("template",), None)
    return form.validate(domain.NpsSchedule)


def _templates(request: Request) -> list[tuple[str, str]]:
    return [(t.code, t.name) for t in messaging.list_templates(get_session(request))]


def _page(
    request: Request,
    values: dict[str, str],
    errors: dict[str, str],
    templates: list[tuple[str, str]],
    status: int = 200,
) -> HTMLResponse:
    session = get_session(request)
    current = tickets.settings(session).nps_schedule
    last = surveys.last_round(session)
    next_round = None
    if current.enabled:
        now = request.app.state.clock.now()
        next_round = now if last is None else max(now, last + timedelta(days=current.interval_days))
    ctx = page_context(
        request,
        domain.SECTION,
        nav="service",
        values=values,
        errors=errors,
        templates=templates,
        last_round=last,
        next_round=next_round,
    )
    return render(request, "console/service/nps_schedule.html", ctx, status=status)


@router.get("/service/nps/schedule")
def schedule_form(request: Request, viewer: Configurer) -> HTMLResponse:
    current = tickets.settings(get_session(request)).nps_schedule
    values = with_version(request, domain.SECTION, schedule_values(current))
    return _page(request, values, {}, _templates(request))


@router.post("/service/nps/schedule")
def schedule_save(request: Request, viewer: Configurer, raw: Posted) -> Response:
    session = get_session(request)
    templates = _templates(request)
    form = draft(request, raw)
    value = parse_schedule(form, tuple(code for code, _ in templates))
    if value is None:
        return _page(request, dict(raw), form.errors, templates, 422)
    if changed_since_opened(request, form, domain.SECTION):
        return _page(request, dict(raw), form.errors, templates, 409)
    whole = tickets.settings(session).model_copy(update={"nps_schedule": value})
    tickets.save_settings(session, viewer.principal, whole, now=request.app.state.clock.now())
    return redirect(request, PATH, flash=N_("Survey schedule saved."))
