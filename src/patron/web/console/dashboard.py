"""Console: the dashboard (home page)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse

from patron.auth import permissions as perm
from patron.web.pages import CONSOLE_PREFIX, StaffPage, Viewer, page_router, render

router = page_router(CONSOLE_PREFIX)


@router.get("/")
def dashboard(
    request: Request, viewer: Annotated[Viewer, Depends(StaffPage(perm.MEMBERS_READ))]
) -> HTMLResponse:
    return render(request, "console/dashboard.html", {"nav": "dashboard"})
