"""Console: manual adjustments above the approval limit, waiting for a second person.

The ledger flow enforces the rules (nobody decides their own request; a decision is final);
this page shows its refusals in words."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Final

from fastapi import Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from patron.auth import permissions as perm
from patron.errors import PatronError
from patron.ledger import domain as ledger_domain
from patron.ledger import flows, queries
from patron.members import service as members
from patron.web.console.members import (
    ADJUSTMENT_STATUS_LABELS,
    LEDGER_LABELS,
    PAGE_SIZE,
    Pager,
    cipher_of,
    ledger_ctx,
)
from patron.web.console.page_kit import PointsApprover, console_router
from patron.web.i18n import N_
from patron.web.pages import (
    CONSOLE_PREFIX,
    Viewer,
    get_session,
    redirect,
    render,
)

router = console_router()

DECISION_MESSAGES: Final = {
    "approver_must_differ": N_("You requested this adjustment; another person must decide it."),
    "adjustment_decided": N_("This adjustment was already decided."),
    "adjustment_not_found": N_("This adjustment does not exist."),
    "insufficient_points": N_("The member no longer has enough points for this adjustment."),
    "insufficient_growth": N_("The member no longer has enough growth value for this adjustment."),
}


def _page(
    request: Request,
    viewer: Viewer,
    page: int,
    *,
    errors: dict[int, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    session = get_session(request)
    offset = (page - 1) * PAGE_SIZE
    rows, total = queries.adjustments(
        session, status="pending_approval", limit=PAGE_SIZE, offset=offset
    )
    # A decided one the page still tries to show (its error) is listed too.
    shown = {r.id for r in rows}
    extra = [i for i in (errors or {}) if i not in shown]
    decided = queries.adjustments_by_id(session, extra)
    cipher = cipher_of(request)
    full = viewer.can(perm.MEMBERS_PII)
    owners = members.by_ids(session, list({r.member_id for r in [*rows, *decided]}))
    lctx = ledger_ctx(request, viewer)
    # What each member holds now on each ledger: the approver sees what the change leaves.
    held = queries.held_now(session, list(owners), lctx.now)
    delay = lctx.settings.self_approval_delay_hours
    ctx = {
        "nav": "approvals",
        "rows": [*decided, *rows],
        "owners": dict(
            zip(
                owners,
                members.summaries(session, [*owners.values()], cipher, full_pii=full),
                strict=True,
            )
        ),
        "own_key": viewer.principal.key[:80],
        "errors": errors or {},
        "pager": Pager(page, total),
        "ledger_labels": LEDGER_LABELS,
        "adjustment_status_labels": ADJUSTMENT_STATUS_LABELS,
        "approval_limit": lctx.settings.adjustment_approval_limit,
        "held": held,
        "self_delay": delay,
        "own_from": {
            r.id: r.created_at + timedelta(hours=delay)
            for r in [*decided, *rows]
            if delay and r.requested_by_key == viewer.principal.key[:80]
        },
        "may_decide_own": {
            r.id
            for r in rows
            if r.requested_by_key == viewer.principal.key[:80]
            and ledger_domain.may_decide_own(r.created_at, lctx.now, delay)
        },
    }
    return render(request, "console/approvals.html", ctx, status=status)


@router.get("/approvals")
def approvals(
    request: Request,
    viewer: PointsApprover,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    return _page(request, viewer, page)


def _decide(
    request: Request, viewer: Viewer, adjustment_id: int, approve: bool, note: str
) -> Response:
    session = get_session(request)
    ctx = ledger_ctx(request, viewer)
    try:
        with session.begin_nested():
            flows.decide_adjustment(
                session, ctx, adjustment_id, approve=approve, note=note.strip()[:200]
            )
    except PatronError as exc:
        message = DECISION_MESSAGES.get(exc.code, N_("That did not work; nothing was changed."))
        status = exc.status if exc.status in (403, 404, 409) else 422
        return _page(request, viewer, 1, errors={adjustment_id: message}, status=status)
    flash = N_("Adjustment approved and applied.") if approve else N_("Adjustment rejected.")
    return redirect(request, f"{CONSOLE_PREFIX}/approvals", flash=flash)


@router.post("/approvals/{adjustment_id}/approve")
def approve(
    request: Request,
    adjustment_id: Annotated[int, Path(ge=1, le=2**53)],
    viewer: PointsApprover,
    note: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    return _decide(request, viewer, adjustment_id, True, note)


@router.post("/approvals/{adjustment_id}/reject")
def reject(
    request: Request,
    adjustment_id: Annotated[int, Path(ge=1, le=2**53)],
    viewer: PointsApprover,
    note: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    return _decide(request, viewer, adjustment_id, False, note)
