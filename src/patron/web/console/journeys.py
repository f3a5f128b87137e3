"""Console: journeys (a readable list of steps, edited one step a line), message templates with
a preview, the delivery report per journey and campaign, and the dead letters with retry."""

from __future__ import annotations

import re
from typing import Annotated, Any, Final

from fastapi import Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from patron.coupons import service as coupons
from patron.errors import PatronError
from patron.journeys import domain as jdomain
from patron.journeys import service as journeys
from patron.messaging import domain as mdomain
from patron.messaging import service as messaging
from patron.segments import service as segments
from patron.web.console import journey_form as jf
from patron.web.console.members import PAGE_SIZE, Pager
from patron.web.console.page_kit import (
    CampaignsReader,
    CampaignsWriter,
    Code,
    Posted,
    console_router,
)
from patron.web.i18n import N_
from patron.web.pages import (
    CONSOLE_PREFIX,
    get_session,
    redirect,
    render,
    translate,
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


SERVICE_ERRORS: Final = {
    "journey_reference_unknown": N_(
        "A step names a segment or template that no longer exists; choose another."
    ),
    "journey_exists": N_("A journey with this code exists; choose another code."),
}


def _editor(
    request: Request, rows: list[jf.Row], for_code: str, error_row: int | None
) -> dict[str, Any]:
    session = get_session(request)
    return {
        "rows": [(r, jf.go_to_choices(rows, i)) for i, r in enumerate(rows)],
        "for_code": for_code,
        "error_row": error_row,
        "kind_labels": jf.KIND_LABELS,
        "unit_labels": jf.UNIT_LABELS,
        "segments": segments.list_segments(session),
        "message_templates": messaging.list_templates(session),
        "coupon_templates": coupons.list_templates(session),
    }


def _say(request: Request, message: str, values: dict[str, Any]) -> str:
    text = translate(request, message)
    return text % values if values else text


def _steps_or_error(
    request: Request, rows: list[jf.Row]
) -> tuple[list[dict[str, Any]] | None, dict[str, str], int | None]:
    try:
        return jf.steps_from_rows(rows), {}, None
    except jf.FormError as exc:
        return None, {"steps": _say(request, exc.message, dict(exc.values))}, exc.row


def _service_error(request: Request, exc: PatronError) -> dict[str, str]:
    if exc.code in SERVICE_ERRORS:
        return {"steps": _say(request, SERVICE_ERRORS[exc.code], {})}
    return {"steps": exc.message}


def _list_page(
    request: Request,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    rows: list[jf.Row] | None = None,
    error_row: int | None = None,
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
        "editor": _editor(request, rows or [jf.Row("send")], "", error_row),
    }
    return render(request, "console/journeys/index.html", ctx, status=422 if errors else 200)


@router.get("/journeys")
def journey_list(request: Request, viewer: CampaignsReader) -> HTMLResponse:
    return _list_page(request)


@router.post("/journeys")
def journey_create(request: Request, viewer: CampaignsWriter, data: Posted) -> Response:
    session = get_session(request)
    form = {k: str(data.get(k, "")).strip()[:100] for k in ("code", "name", "trigger")}
    rows = jf.rows_from_form(data)
    steps, errors, row = _steps_or_error(request, rows)
    if not errors and (not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", form["code"]) or not form["name"]):
        errors = {"code": N_("Give the journey a code and a name.")}
    if steps is None or errors:
        return _list_page(request, errors=errors, form=form, rows=rows, error_row=row)
    try:
        journeys.create(
            session,
            viewer.principal,
            code=form["code"],
            name=form["name"],
            trigger=form["trigger"],
            params=None,
            steps=steps,
            now=request.app.state.clock.now(),
        )
    except PatronError as exc:
        errors = _service_error(request, exc)
        return _list_page(request, errors=errors, form=form, rows=rows)
    return redirect(
        request, f"{CONSOLE_PREFIX}/journeys/{form['code']}", flash=N_("Journey saved.")
    )


@router.post("/journey-editor")
def journey_editor(request: Request, viewer: CampaignsWriter, data: Posted) -> Response:
    """Add, move or remove a step, or show the inputs of a newly chosen kind; nothing is
    saved. Answers the page the form came from with the rows changed."""
    rows = jf.apply(jf.rows_from_form(data), str(data.get("action", "")))
    code = str(data.get("editor_for", ""))
    if code and re.fullmatch(r"[A-Za-z0-9_-]{1,40}", code):
        return _detail(request, code, rows=rows, name=str(data.get("name", ""))[:100])
    form = {k: str(data.get(k, ""))[:100] for k in ("code", "name", "trigger")}
    return _list_page(request, form=form, rows=rows)


def _detail(
    request: Request,
    code: str,
    *,
    errors: dict[str, str] | None = None,
    rows: list[jf.Row] | None = None,
    error_row: int | None = None,
    name: str | None = None,
) -> HTMLResponse:
    session = get_session(request)
    j = journeys.get(session, code)
    report = messaging.report(session, kind="journey", code=code)
    ctx = {
        "nav": "journeys",
        "j": j,
        "name": name if name is not None else j.name,
        "steps": _step_sentences(j.steps),
        "editor": _editor(
            request, rows if rows is not None else jf.rows_from_steps(j.steps), j.code, error_row
        ),
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
def journey_change(code: Code, request: Request, viewer: CampaignsWriter, data: Posted) -> Response:
    session = get_session(request)
    name = str(data.get("name", "")).strip()[:100]
    rows = jf.rows_from_form(data)
    steps, errors, row = _steps_or_error(request, rows)
    if steps is None:
        return _detail(request, code, errors=errors, rows=rows, error_row=row, name=name)
    try:
        journeys.change(
            session,
            viewer.principal,
            code,
            name=name or None,
            trigger=None,
            params=None,
            steps=steps,
            now=request.app.state.clock.now(),
        )
    except PatronError as exc:
        if exc.status == 404:
            raise
        errors = _service_error(request, exc)
        return _detail(request, code, errors=errors, rows=rows, name=name)
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
