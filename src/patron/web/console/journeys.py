"""Console: journeys (a readable list of steps, edited one step a line), message templates with
a preview, the delivery report per journey and campaign, and the dead letters with retry."""

from __future__ import annotations

import re
from typing import Annotated, Any, Final

from fastapi import Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from patron.errors import PatronError
from patron.journeys import domain as jdomain
from patron.journeys import service as journeys
from patron.messaging import domain as mdomain
from patron.messaging import service as messaging
from patron.web.console.members import PAGE_SIZE, Pager
from patron.web.console.page_kit import CampaignsReader, CampaignsWriter, Code, console_router
from patron.web.i18n import N_
from patron.web.pages import (
    CONSOLE_PREFIX,
    get_session,
    redirect,
    render,
)

router = console_router()

TRIGGER_LABELS: Final = {
    "registration": N_("Registration (welcome within 24 hours)"),
    "first_order": N_("First order"),
    "birthday": N_("Birthday"),
    "points_expiring": N_("Points about to expire"),
    "dormant": N_("Dormant member (wake-up)"),
    "tier_upgrade": N_("Tier upgrade"),
    "after_service": N_("After a visit (satisfaction survey)"),
}
STATUS_LABELS: Final = {"active": N_("Running"), "paused": N_("Paused")}
ERROR_WORDS: Final = {
    "connect_error": N_("The provider could not be reached."),
    "timeout": N_("The provider did not answer in time."),
    "smtp_session": N_("The mail server ended the session."),
    "smtp_error": N_("The mail server refused the message."),
    "recipient_refused": N_("The mail server refused the address."),
    "no_provider_template": N_("The template has no code registered with this provider."),
    "wechat_token_unavailable": N_("WeChat did not give an access token."),
}
CHANNEL_WORDS: Final = {
    "sms": N_("SMS"),
    "email": N_("Email"),
    "push": N_("App push"),
    "wechat": N_("WeChat"),
}


def _step_sentences(steps: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Each step as an English message id and its values (translated in the template)."""
    out: list[tuple[str, dict[str, Any]]] = []
    for s in jdomain.parse_steps(steps):
        if s.kind == "wait":
            if s.hours % 24 == 0:
                out.append((N_("Wait %(n)s days."), {"n": f"{s.hours // 24:,}"}))
            else:
                out.append((N_("Wait %(n)s hours."), {"n": f"{s.hours:,}"}))
        elif s.kind == "condition":
            if s.otherwise is None:
                out.append(
                    (
                        N_("If in segment %(seg)s continue; otherwise leave."),
                        {"seg": s.segment},
                    )
                )
            else:
                out.append(
                    (
                        N_("If in segment %(seg)s continue; otherwise go to step %(n)s."),
                        {"seg": s.segment, "n": s.otherwise + 1},
                    )
                )
        elif s.kind == "send":
            out.append((N_("Send message %(tpl)s on the member's channel."), {"tpl": s.template}))
        elif s.kind == "coupon":
            out.append((N_("Give coupon %(tpl)s."), {"tpl": s.template}))
        elif s.kind == "points":
            out.append((N_("Give %(n)s points."), {"n": f"{s.points:,}"}))
        else:
            out.append((N_("Add tag %(tag)s."), {"tag": s.tag}))
    return out


def _list_page(
    request: Request, *, errors: dict[str, str] | None = None, form: dict[str, str] | None = None
) -> HTMLResponse:
    session = get_session(request)
    items = journeys.list_journeys(session)
    counts = journeys.counts(session)
    ctx = {
        "nav": "journeys",
        "journeys": [
            {
                "j": j,
                "steps": _step_sentences(j.steps),
                "counts": counts.get(j.id, {}),
            }
            for j in items
        ],
        "trigger_labels": TRIGGER_LABELS,
        "status_labels": STATUS_LABELS,
        "errors": errors or {},
        "form": form or {},
    }
    return render(request, "console/journeys/index.html", ctx, status=422 if errors else 200)


@router.get("/journeys")
def journey_list(request: Request, viewer: CampaignsReader) -> HTMLResponse:
    return _list_page(request)


@router.post("/journeys")
def journey_create(
    request: Request,
    viewer: CampaignsWriter,
    code: Annotated[str, Form(max_length=40)] = "",
    name: Annotated[str, Form(max_length=100)] = "",
    trigger: Annotated[str, Form(max_length=24)] = "",
    steps: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    session = get_session(request)
    form = {"code": code, "name": name, "trigger": trigger, "steps": steps}
    try:
        parsed = jdomain.parse_lines(steps)
    except jdomain.JourneyError as exc:
        return _list_page(request, errors={"steps": exc.message}, form=form)
    if not code or not name:
        return _list_page(
            request, errors={"code": N_("Give the journey a code and a name.")}, form=form
        )
    try:
        journeys.create(
            session,
            viewer.principal,
            code=code.strip(),
            name=name.strip(),
            trigger=trigger,
            params=None,
            steps=parsed,
            now=request.app.state.clock.now(),
        )
    except PatronError as exc:
        return _list_page(request, errors={"steps": exc.message}, form=form)
    return redirect(
        request, f"{CONSOLE_PREFIX}/journeys/{code.strip()}", flash=N_("Journey saved.")
    )


def _detail(
    request: Request,
    code: str,
    *,
    errors: dict[str, str] | None = None,
    steps_text: str | None = None,
) -> HTMLResponse:
    session = get_session(request)
    j = journeys.get(session, code)
    report = messaging.report(session, kind="journey", code=code)
    ctx = {
        "nav": "journeys",
        "j": j,
        "steps": _step_sentences(j.steps),
        "steps_text": steps_text if steps_text is not None else jdomain.to_lines(j.steps),
        "counts": journeys.counts(session).get(j.id, {}),
        "report": report[0] if report else None,
        "trigger_labels": TRIGGER_LABELS,
        "status_labels": STATUS_LABELS,
        "errors": errors or {},
    }
    return render(request, "console/journeys/detail.html", ctx, status=422 if errors else 200)


@router.get("/journeys/{code}")
def journey_detail(code: Code, request: Request, viewer: CampaignsReader) -> HTMLResponse:
    return _detail(request, code)


@router.post("/journeys/{code}")
def journey_change(
    code: Code,
    request: Request,
    viewer: CampaignsWriter,
    name: Annotated[str, Form(max_length=100)] = "",
    steps: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    session = get_session(request)
    try:
        parsed = jdomain.parse_lines(steps)
        journeys.change(
            session,
            viewer.principal,
            code,
            name=name.strip() or None,
            trigger=None,
            params=None,
            steps=parsed,
            now=request.app.state.clock.now(),
        )
    except jdomain.JourneyError as exc:
        return _detail(request, code, errors={"steps": exc.message}, steps_text=steps)
    except PatronError as exc:
        if exc.status == 404:
            raise
        return _detail(request, code, errors={"steps": exc.message}, steps_text=steps)
    return redirect(request, f"{CONSOLE_PREFIX}/journeys/{code}", flash=N_("Journey saved."))


@router.post("/journeys/{code}/pause")
def journey_pause(code: Code, request: Request, viewer: CampaignsWriter) -> Response:
    journeys.set_paused(
        get_session(request), viewer.principal, code, paused=True, now=request.app.state.clock.now()
    )
    return redirect(request, f"{CONSOLE_PREFIX}/journeys/{code}", flash=N_("Journey paused."))


@router.post("/journeys/{code}/resume")
def journey_resume(code: Code, request: Request, viewer: CampaignsWriter) -> Response:
    journeys.set_paused(
        get_session(request),
        viewer.principal,
        code,
        paused=False,
        now=request.app.state.clock.now(),
    )
    return redirect(request, f"{CONSOLE_PREFIX}/journeys/{code}", flash=N_("Journey resumed."))


# ---- message templates -----------------------------------------------------------------------


def _templates_page(
    request: Request,
    *,
    preview: str | None = None,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    session = get_session(request)
    items = messaging.list_templates(session)
    shown = None
    if preview:
        tpl = next((t for t in items if t.code == preview), None)
        if tpl is not None:
            shown = {
                loc: messaging.preview(tpl, loc) for loc in ("zh-CN", "en") if loc in tpl.texts
            }
    edit = form
    if edit is None and preview:
        tpl = next((t for t in items if t.code == preview), None)
        if tpl is not None:
            edit = {
                "code": tpl.code,
                "name": tpl.name,
                "zh_subject": tpl.texts.get("zh-CN", {}).get("subject", ""),
                "zh_body": tpl.texts.get("zh-CN", {}).get("body", ""),
                "en_subject": tpl.texts.get("en", {}).get("subject", ""),
                "en_body": tpl.texts.get("en", {}).get("body", ""),
                "sms_code": tpl.provider_codes.get("sms", ""),
                "wechat_code": tpl.provider_codes.get("wechat", ""),
            }
    ctx = {
        "nav": "journeys",
        "templates": items,
        "preview_code": preview,
        "preview": shown,
        "variables": list(mdomain.VARIABLES),
        "errors": errors or {},
        "form": edit or {},
    }
    return render(request, "console/journeys/templates.html", ctx, status=422 if errors else 200)


@router.get("/messages/templates")
def template_list(
    request: Request,
    viewer: CampaignsReader,
    preview: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_-]{1,40}$")] = None,
) -> HTMLResponse:
    return _templates_page(request, preview=preview)


@router.post("/messages/templates")
def template_save(
    request: Request,
    viewer: CampaignsWriter,
    code: Annotated[str, Form(max_length=40)] = "",
    name: Annotated[str, Form(max_length=100)] = "",
    zh_subject: Annotated[str, Form(max_length=200)] = "",
    zh_body: Annotated[str, Form(max_length=2000)] = "",
    en_subject: Annotated[str, Form(max_length=200)] = "",
    en_body: Annotated[str, Form(max_length=2000)] = "",
    sms_code: Annotated[str, Form(max_length=60)] = "",
    wechat_code: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    form = {
        "code": code,
        "name": name,
        "zh_subject": zh_subject,
        "zh_body": zh_body,
        "en_subject": en_subject,
        "en_body": en_body,
        "sms_code": sms_code,
        "wechat_code": wechat_code,
    }
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", code.strip()) or not name.strip():
        return _templates_page(
            request,
            errors={"code": N_("Give the template a code (letters, digits, - or _) and a name.")},
            form=form,
        )
    try:
        messaging.put_template(
            get_session(request),
            viewer.principal,
            code.strip(),
            name=name.strip(),
            texts={
                "zh-CN": {"subject": zh_subject, "body": zh_body},
                "en": {"subject": en_subject, "body": en_body},
            },
            provider_codes={"sms": sms_code, "wechat": wechat_code},
            now=request.app.state.clock.now(),
        )
    except PatronError as exc:
        return _templates_page(request, errors={"body": exc.message}, form=form)
    return redirect(
        request,
        f"{CONSOLE_PREFIX}/messages/templates?preview={code.strip()}",
        flash=N_("Template saved."),
    )


# ---- delivery report and dead letters ------------------------------------------------------


@router.get("/messages/report")
def delivery_report(request: Request, viewer: CampaignsReader) -> HTMLResponse:
    session = get_session(request)
    ctx = {
        "nav": "journeys",
        "rows": messaging.report(session),
        "window": messaging.get_settings(session).attribution_days,
    }
    return render(request, "console/journeys/report.html", ctx)


@router.get("/messages/dead")
def dead_letters(
    request: Request,
    viewer: CampaignsReader,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    session = get_session(request)
    rows, total = messaging.dead_letters(session, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    ctx = {
        "nav": "journeys",
        "rows": rows,
        "pager": Pager(page, total),
        "error_words": ERROR_WORDS,
        "channel_words": CHANNEL_WORDS,
    }
    return render(request, "console/journeys/dead.html", ctx)


@router.post("/messages/dead/{message_id}/retry")
def dead_letter_retry(
    request: Request,
    viewer: CampaignsWriter,
    message_id: Annotated[int, Path(ge=1, le=2**62)],
) -> Response:
    messaging.retry(
        get_session(request), viewer.principal, message_id, now=request.app.state.clock.now()
    )
    return redirect(
        request, f"{CONSOLE_PREFIX}/messages/dead", flash=N_("The message is queued again.")
    )
