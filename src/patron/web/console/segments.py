"""Console: segments — build a rule tree (AND/OR groups, conditions added and removed) with a
live count and sample, save it as a segment (versioned) or as a rule tag, export a segment's
members, import static lists, and see the rule tags with their recent changes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Final

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from patron.auth import permissions as perm
from patron.errors import PatronError
from patron.kit.timeutil import business_tz
from patron.segments import lists, service, tags
from patron.segments.personas import PERSONAS
from patron.web.console import segment_form as sf
from patron.web.console.exports import BATCH, MAX_ROWS, Rows, table_response
from patron.web.console.members import cipher_of
from patron.web.console.page_kit import Code, SegmentsReader, SegmentsWriter, console_router
from patron.web.i18n import N_
from patron.web.pages import (
    CONSOLE_PREFIX,
    Viewer,
    get_session,
    redirect,
    render,
)

router = console_router()

ERRORS: Final = {
    "segment_exists": N_("Another segment already uses this code."),
    "tag_exists": N_("A tag with this name exists already; choose another name."),
    "tag_rule_loop": N_(
        "A rule tag may only use hand-set tags and rule tags defined before it, never itself."
    ),
    "static_list_empty": N_("The file holds no member number or phone."),
    "static_list_too_large": N_("The file is too long; split it into lists of 100,000 lines."),
}
CHANGE_LABELS: Final = {"added": N_("got the tag"), "removed": N_("lost the tag")}
SOURCE_LABELS: Final = {
    "job": N_("scheduled recompute"),
    "order": N_("after an order"),
    "manual": N_("recomputed on request"),
}
EXPORT_HEADER: Final = [
    N_("Member number"),
    N_("Tier"),
    N_("City"),
    N_("Region"),
    N_("Joined"),
    N_("Points available"),
]
#: the largest static list file read (about 100,000 lines of phones)
MAX_UPLOAD: Final = 2_000_000


def _tz(request: Request) -> Any:
    return business_tz(request.app.state.settings.business_timezone)


def _now(request: Request) -> Any:
    return request.app.state.clock.now()


@router.get("/segments")
def index(request: Request, viewer: SegmentsReader) -> HTMLResponse:
    return _index(request, viewer)


def _index(
    request: Request, viewer: Viewer, *, error: str | None = None, status: int = 200
) -> HTMLResponse:
    session = get_session(request)
    ctx = {
        "nav": "segments",
        "segments": [(s, sf.conditions(s.rule)) for s in service.list_segments(session)],
        "lists": lists.list_lists(session),
        "personas": list(PERSONAS.values()),
        "can_write": viewer.can(perm.SEGMENTS_WRITE),
        "error": error,
    }
    return render(request, "console/segments/index.html", ctx, status=status)


# ---- the builder -----------------------------------------------------------------------------


def _builder(
    request: Request,
    viewer: Viewer,
    tree: dict[str, Any],
    *,
    target: dict[str, str],
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    session = get_session(request)
    preview, bad, problem = None, None, None
    try:
        rule = service.parse_checked(session, tree)
    except PatronError as exc:
        bad = sf.error_node(str(exc.details.get("path", "")))
        problem = N_(
            "Check the highlighted condition: it needs its values or bounds, written as numbers "
            "where numbers are asked."
        )
        if exc.details.get("unknown"):
            problem = N_(
                "Check the highlighted condition: the catalogue has no product or category "
                "with one of its codes."
            )
    else:
        preview = service.preview(session, rule, now=_now(request), tz=_tz(request))
    ctx = {
        "nav": "segments",
        "tree": tree,
        "fields": sf.FIELDS,
        "shown": sf.shown,
        "preview": preview,
        "bad": bad,
        "problem": problem,
        "error": error,
        "target": target,
        "can_write": viewer.can(perm.SEGMENTS_WRITE),
    }
    return render(request, "console/segments/builder.html", ctx, status=status)


@router.get("/segments/build")
def build(
    request: Request,
    viewer: SegmentsReader,
    segment: Annotated[str, Query(max_length=40)] = "",
    tag: Annotated[str, Query(max_length=32)] = "",
    persona: Annotated[str, Query(max_length=40)] = "",
) -> HTMLResponse:
    session = get_session(request)
    target = {"kind": "segment", "code": "", "name": "", "description": ""}
    raw: dict[str, Any] | None = None
    if segment:
        seg = service.get(session, segment)
        raw = seg.rule
        target |= {"code": seg.code, "name": seg.name, "version": str(seg.version)}
    elif tag:
        t, tr = tags.get(session, tag)
        raw = tr.rule
        target = {"kind": "tag", "code": "", "name": t.name, "description": tr.description}
    elif persona in PERSONAS:
        raw = PERSONAS[persona].rule
    return _builder(request, viewer, sf.normalised(raw), target=target)


@router.post("/segments/build")
async def rebuild(request: Request, viewer: SegmentsReader) -> Response:
    form = await request.form()
    target = {
        k: str(form.get(f"target_{k}", ""))[:200] for k in ("kind", "code", "name", "description")
    }
    tree = sf.tree_from_form(form)
    action = str(form.get("action", ""))
    if action in ("save_segment", "save_tag"):
        return _save(request, viewer, tree, target, action)
    return _builder(request, viewer, sf.apply(tree, action), target=target)


def _save(
    request: Request, viewer: Viewer, tree: dict[str, Any], target: dict[str, str], action: str
) -> Response:
    if not viewer.can(perm.SEGMENTS_WRITE):
        return _builder(
            request, viewer, tree, target=target, error=N_("You may not save."), status=403
        )
    session = get_session(request)
    now = _now(request)
    try:
        rule = service.parse_checked(session, tree)
        with session.begin_nested():
            if action == "save_tag":
                name = target["name"].strip()
                if tags.is_rule_tag(session, name):
                    tags.change(
                        session, viewer.principal, name, description=target["description"],
                        rule=rule, on_order=None, now=now, tz=_tz(request),
                    )  # fmt: skip
                else:
                    tags.define(
                        session, viewer.principal, name=name, description=target["description"],
                        rule=rule, on_order=True, now=now, tz=_tz(request),
                    )  # fmt: skip
            else:
                code, name = target["code"].strip(), target["name"].strip()
                if service.exists(session, code):
                    service.change(
                        session, code, name=name or None, rule=rule, now=now,
                        actor=viewer.principal.key,
                    )  # fmt: skip
                else:
                    service.create(
                        session, code=code, name=name, rule=rule, actor=viewer.principal.key,
                        now=now,
                    )  # fmt: skip
    except PatronError as exc:
        message = ERRORS.get(
            exc.code, N_("Give a code of letters, digits, - or _ and a name, then save again.")
        )
        return _builder(request, viewer, tree, target=target, error=message, status=exc.status)
    if action == "save_tag":
        return redirect(request, f"{CONSOLE_PREFIX}/segments/tags", flash=N_("Rule tag saved."))
    return redirect(
        request, f"{CONSOLE_PREFIX}/segments/{target['code'].strip()}", flash=N_("Segment saved.")
    )


# ---- rule tags -------------------------------------------------------------------------------


@router.get("/segments/tags")
def tag_rules(request: Request, viewer: SegmentsReader) -> HTMLResponse:
    session = get_session(request)
    rows = [
        {"tag": t, "rule": r, "members": n, "recent": tags.history(session, t.name, limit=5)}
        for t, r, n in tags.list_rules(session)
    ]
    ctx = {
        "nav": "segments",
        "rows": rows,
        "change_labels": CHANGE_LABELS,
        "source_labels": SOURCE_LABELS,
        "conditions": sf.conditions,
        "can_write": viewer.can(perm.SEGMENTS_WRITE),
    }
    return render(request, "console/segments/tags.html", ctx)


@router.post("/segments/tags/recompute")
async def recompute_tag(request: Request, viewer: SegmentsWriter) -> Response:
    form = await request.form()
    session = get_session(request)
    tag, tr = tags.get(session, str(form.get("name", ""))[:32], lock=True)
    done = tags.recompute(session, tag, tr, now=_now(request), tz=_tz(request), source="manual")
    del done
    return redirect(request, f"{CONSOLE_PREFIX}/segments/tags", flash=N_("Rule tag recomputed."))


# ---- static lists ----------------------------------------------------------------------------


@router.post("/segments/lists")
async def import_list(request: Request, viewer: SegmentsWriter) -> Response:
    form = await request.form()
    code = str(form.get("code", "")).strip()[:40]
    name = str(form.get("name", "")).strip()[:100]
    upload = form.get("file")
    text = ""
    if isinstance(upload, UploadFile):
        text = (await upload.read(MAX_UPLOAD)).decode("utf-8", errors="replace")
    if not code or not name or not code.replace("-", "").replace("_", "").isalnum():
        return _index(
            request,
            viewer,
            error=N_("Give the list a code of letters, digits, - or _ and a name."),
            status=422,
        )
    session = get_session(request)
    try:
        with session.begin_nested():
            done = lists.import_list(
                session,
                cipher_of(request),
                viewer.principal,
                code=code,
                name=name,
                entries=lists.parse_entries(text),
                now=_now(request),
            )
    except PatronError as exc:
        message = ERRORS.get(exc.code, N_("That did not work; nothing was changed."))
        return _index(request, viewer, error=message, status=exc.status)
    del done
    return redirect(request, f"{CONSOLE_PREFIX}/segments", flash=N_("Static list imported."))


# ---- one segment -----------------------------------------------------------------------------


@router.get("/segments/{code}")
def detail(request: Request, code: Code, viewer: SegmentsReader) -> HTMLResponse:
    session = get_session(request)
    seg = service.get(session, code)
    preview = service.preview(session, service.parse(seg.rule), now=_now(request), tz=_tz(request))
    ctx = {
        "nav": "segments",
        "seg": seg,
        "preview": preview,
        "versions": service.versions(session, code),
        "conditions": sf.conditions,
        "can_write": viewer.can(perm.SEGMENTS_WRITE),
    }
    return render(request, "console/segments/detail.html", ctx)


@router.get("/segments/{code}/export")
def export(
    request: Request,
    code: Code,
    viewer: SegmentsReader,
    fmt: Annotated[str, Query(alias="format", max_length=8)] = "csv",
) -> Response:
    """The segment's members now, without contact data (number, tier, place, points)."""
    rule = service.parse(service.get(get_session(request), code).rule)
    now, tz = _now(request), _tz(request)

    def batches(session: Session) -> Iterator[Rows]:
        sent = 0
        for part in service.export_batches(session, rule, now=now, tz=tz, batch=BATCH):
            rows: list[list[object]] = [
                [
                    r[0],
                    r[1] or "",
                    r[2] or "",
                    r[3] or "",
                    r[4].astimezone(tz).date().isoformat(),
                    r[5],
                ]
                for r in part
            ]
            yield rows[: MAX_ROWS - sent]
            sent += len(rows)
            if sent >= MAX_ROWS:
                return

    return table_response(
        request, viewer, fmt if fmt in ("csv", "xlsx") else "csv", f"segment-{code}",
        EXPORT_HEADER, batches,
    )  # fmt: skip
