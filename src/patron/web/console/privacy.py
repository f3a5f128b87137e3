"""Console: the queue of members' erasure requests (made in the portal's "My data"), for the
people allowed to see personal data. Processing a request is not done here yet: the queue is
what an operator works from."""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import Depends, Query, Request
from fastapi.responses import HTMLResponse

from patron.auth import permissions as perm
from patron.members import service as members
from patron.privacy import service as privacy
from patron.web.console.members import PAGE_SIZE, Pager, cipher_of
from patron.web.i18n import N_
from patron.web.pages import CONSOLE_PREFIX, StaffPage, Viewer, get_session, page_router, render

router = page_router(CONSOLE_PREFIX)
PrivacyOfficer = Annotated[Viewer, Depends(StaffPage(perm.MEMBERS_PII))]

STATUS_LABELS: Final = {
    "open": N_("Open"),
    "done": N_("Done"),
    "rejected": N_("Rejected"),
}
CHANNEL_LABELS: Final = {"portal": N_("Member portal")}


@router.get("/privacy/erasure")
def erasure_queue(
    request: Request,
    viewer: PrivacyOfficer,
    status: Annotated[str, Query(pattern=r"^(open|done|rejected|all)$")] = "open",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    session = get_session(request)
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
        "owners": {mid: members.to_summary(m, cipher, full_pii=True) for mid, m in owners.items()},
        "status": status,
        "status_labels": STATUS_LABELS,
        "channel_labels": CHANNEL_LABELS,
        "pager": Pager(page, total),
    }
    return render(request, "console/privacy/erasure.html", ctx)
