"""Console: the queue of members' erasure requests (made in the portal's "My data"), for the
people allowed to see personal data: each with its deadline, completed (the member's personal
data erased everywhere, docs/privacy.md) or rejected with a note."""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from patron.errors import PatronError
from patron.members import service as members
from patron.privacy import domain as privacy_domain
from patron.privacy import erasure
from patron.privacy import service as privacy
from patron.web.console.members import PAGE_SIZE, Pager, cipher_of
from patron.web.console.page_kit import PrivacyOfficer, console_router
from patron.web.i18n import N_
from patron.web.pages import (
    get_session,
    redirect,
    render,
)

router = console_router()

STATUS_LABELS: Final = {
    "open": N_("Open"),
    "done": N_("Done"),
    "rejected": N_("Rejected"),
}
CHANNEL_LABELS: Final = {"portal": N_("Member portal")}


MESSAGES: Final = {
    "erasure_note_required": N_("Say why the request is rejected."),
    "erasure_request_decided": N_("This request is already done or rejected."),
}


@router.get("/privacy/erasure")
def erasure_queue(
    request: Request,
    viewer: PrivacyOfficer,
    status: Annotated[str, Query(pattern=r"^(open|done|rejected|all)$")] = "open",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    return _queue(request, status, page)


def _queue(
    request: Request,
    status: str,
    page: int,
    errors: dict[int, str] | None = None,
    code: int = 200,
) -> HTMLResponse:
    session = get_session(request)
    conf = erasure.settings(session)
    rows, total = privacy.erasure_requests(
        session,
        status=None if status == "all" else status,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )
    owners = members.by_ids(session, list({r.member_id for r in rows}))
    cipher = cipher_of(request)
    ctx = {
        "nav": "privacy",
        "rows": rows,
        "owners": dict(
            zip(
                owners,
                members.summaries(session, [*owners.values()], cipher, full_pii=True),
                strict=True,
            )
        ),
        "status": status,
        "status_labels": STATUS_LABELS,
        "channel_labels": CHANNEL_LABELS,
        "pager": Pager(page, total),
        "deadlines": {r.id: privacy_domain.deadline(r.requested_at, conf) for r in rows},
        "now": request.app.state.clock.now(),
        "days": conf.erasure_days,
        "errors": errors or {},
    }
    return render(request, "console/privacy/erasure.html", ctx, status=code)


RequestId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.post("/privacy/erasure/{request_id}/complete")
def complete(
    request: Request,
    viewer: PrivacyOfficer,
    request_id: RequestId,
    note: Annotated[str, Form(max_length=500)] = "",
    confirm: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    if not confirm:
        msg = N_("Tick the box to confirm: erasing cannot be undone.")
        return _queue(request, "open", 1, {request_id: msg}, 422)
    session = get_session(request)
    try:
        with session.begin_nested():
            erasure.complete(
                session,
                viewer.principal,
                cipher_of(request),
                request_id,
                note=note,
                now=request.app.state.clock.now(),
            )
    except PatronError as exc:
        return _queue(request, "open", 1, {request_id: MESSAGES.get(exc.code, exc.message)}, 409)
    return redirect(
        request, "/console/privacy/erasure", flash=N_("Done: the member's personal data is erased.")
    )


@router.post("/privacy/erasure/{request_id}/reject")
def reject(
    request: Request,
    viewer: PrivacyOfficer,
    request_id: RequestId,
    note: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    session = get_session(request)
    try:
        with session.begin_nested():
            erasure.reject(
                session,
                viewer.principal,
                request_id,
                note=note,
                now=request.app.state.clock.now(),
            )
    except PatronError as exc:
        return _queue(request, "open", 1, {request_id: MESSAGES.get(exc.code, exc.message)}, 422)
    return redirect(request, "/console/privacy/erasure", flash=N_("Request rejected."))
