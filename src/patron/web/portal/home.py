"""Portal: the member's home page."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse

from patron.web.pages import PORTAL_PREFIX, MemberPage, Viewer, page_router, render

router = page_router(PORTAL_PREFIX)


@router.get("/")
def home(request: Request, viewer: Annotated[Viewer, Depends(MemberPage())]) -> HTMLResponse:
    return render(request, "portal/home.html", {})
