"""Console: staff users, API keys and the audit log (admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse

from patron.auth import permissions as perm
from patron.web.pages import CONSOLE_PREFIX, StaffPage, Viewer, page_router, render

router = page_router(CONSOLE_PREFIX)


@router.get("/admin/staff")
def staff_list(
    request: Request, viewer: Annotated[Viewer, Depends(StaffPage(perm.STAFF_ADMIN))]
) -> HTMLResponse:
    return render(request, "console/admin/staff.html", {"nav": "staff"})
