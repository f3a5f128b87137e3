"""Console: the manual review queue of risk review — redemptions held before they were made
and earnings (orders, manual credits) flagged after the fact — the rules that fired in words,
the score, and approve or reject with a note (audited; rejecting an earning takes its points
back)."""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from patron.auth import permissions as perm
from patron.errors import PatronError
from patron.members import service as members
from patron.risk import earning
from patron.risk import service as risk
from patron.web.console.members import PAGE_SIZE, Pager, cipher_of, ledger_ctx
from patron.web.console.page_kit import RiskReviewer, console_router
from patron.web.i18n import N_
from patron.web.pages import (
    Viewer,
    get_session,
    redirect,
    render,
)

router = console_router()

RULE_LABELS: Final = {
    "member_velocity": N_("Many redemptions by this member within an hour"),
    "store_velocity": N_("Many redemptions at this store within an hour"),
    "new_member_redeems": N_("A new member redeeming many points at once"),
    "shared_phone_prefix": N_("Many new members on one phone number prefix"),
    "refunds_after_redemption": N_("Returns after redeeming"),
    "unusual_adjustments": N_("Points credited by a staff member with unusual adjustment volume"),
    "device_velocity": N_("Many redemptions from one device within an hour"),
    "earning_velocity": N_("Many orders by this member within an hour"),
    "store_burst": N_("Orders of many members at one store within minutes"),
    "new_member_earns": N_("A new member earning many points soon after joining"),
    "earn_and_return": N_("Points earned on orders later returned"),
}
STATUS_LABELS: Final = {
    "pending": N_("Waiting for a decision"),
    "approved": N_("Approved"),
    "rejected": N_("Rejected"),
    "verified": N_("Confirmed by SMS code"),
    "used": N_("Redeemed"),
}
DECISION_LABELS: Final = {"step_up": N_("SMS code asked"), "review": N_("Manual review")}
TABS: Final = {
    "pending": N_("Waiting for a decision"),
    "approved": N_("Approved"),
    "rejected": N_("Rejected"),
    "all": N_("All"),
}
MESSAGES: Final = {"risk_review_decided": N_("This review was already decided.")}


def _page(
    request: Request,
    viewer: Viewer,
    status: str,
    page: int,
    errors: dict[int, str] | None = None,
    code: int = 200,
) -> HTMLResponse:
    session = get_session(request)
    rows, total = risk.queue(session, status=status, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    owners = members.by_ids(session, list({r.member_id for r in rows}))
    cipher = cipher_of(request)
    full = viewer.can(perm.MEMBERS_PII)
    ctx = {
        "nav": "risk",
        "rows": rows,
        "owners": dict(
            zip(
                owners,
                members.summaries(session, [*owners.values()], cipher, full_pii=full),
                strict=True,
            )
        ),
        "status": status,
        "tabs": TABS,
        "rule_labels": RULE_LABELS,
        "earned": earning.describe(session, rows),
        "status_labels": STATUS_LABELS,
        "decision_labels": DECISION_LABELS,
        "errors": errors or {},
        "pager": Pager(page, total),
    }
    return render(request, "console/risk.html", ctx, status=code)


@router.get("/risk")
def review_queue(
    request: Request,
    viewer: RiskReviewer,
    status: Annotated[str, Query(pattern=r"^(pending|approved|rejected|all)$")] = "pending",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    return _page(request, viewer, status, page)


def _decide(request: Request, viewer: Viewer, review_id: int, approve: bool, note: str) -> Response:
    session = get_session(request)
    ctx = ledger_ctx(request, viewer)
    try:
        with session.begin_nested():
            done = risk.decide(
                session, viewer.principal, review_id, approve=approve, note=note, now=ctx.now,
                ctx=ctx,
            )  # fmt: skip
    except PatronError as exc:
        message = MESSAGES.get(exc.code, exc.message)
        return _page(request, viewer, "all", 1, {review_id: message}, 409)
    if done.action == earning.ACTION:
        flash = (
            N_("Approved: the points stay with the member.")
            if approve
            else N_(
                "Rejected: the points are taken back by an adjustment (above the approval "
                "limit it waits for a second approver)."
            )
        )
    else:
        flash = N_("Approved: the member may redeem the gift.") if approve else N_("Rejected.")
    return redirect(request, "/console/risk", flash=flash)


@router.post("/risk/{review_id}/approve")
def approve(
    request: Request,
    viewer: RiskReviewer,
    review_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    note: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    return _decide(request, viewer, review_id, True, note)


@router.post("/risk/{review_id}/reject")
def reject(
    request: Request,
    viewer: RiskReviewer,
    review_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    note: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    return _decide(request, viewer, review_id, False, note)
