"""Console: the scheduled jobs (admins) — when each last ran, where, how long, whether it
succeeded, and which ones are behind. Read from ``job_runs`` (jobs/runs.py), so it shows the
jobs whichever process ran them."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from patron.db import utcnow
from patron.jobs import runs
from patron.jobs.tasks import SCHEDULE
from patron.web.console.page_kit import StaffAdmin, console_router
from patron.web.pages import get_session, render

router = console_router()

#: states in the order an operator wants to see them
_ORDER = {"failed": 0, "overdue": 1, "never": 2, "ok": 3}


@router.get("/admin/jobs")
def job_list(request: Request, viewer: StaffAdmin) -> HTMLResponse:
    # Wall-clock time, as the runs were recorded (not the business clock of the request).
    jobs = runs.statuses(get_session(request), SCHEDULE, utcnow())
    jobs.sort(key=lambda j: (_ORDER[j.state], j.job))
    counts = {state: sum(1 for j in jobs if j.state == state) for state in _ORDER}
    return render(
        request, "console/admin/jobs.html", {"nav": "jobs", "jobs": jobs, "counts": counts}
    )
