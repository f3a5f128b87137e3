"""Portal: the membership terms and the privacy notice the join form links to — the operator's
own documents when the ``privacy`` section names them, otherwise Patron's built-in pages."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response

from patron.privacy import erasure
from patron.web.pages import PORTAL_PREFIX, PublicPage, Viewer, get_session, page_router, render

router = page_router(PORTAL_PREFIX)
Anyone = Annotated[Viewer, Depends(PublicPage())]


@router.get("/terms")
def terms(request: Request, viewer: Anyone) -> Response:
    url = erasure.settings(get_session(request)).terms_url
    if url:
        return RedirectResponse(url, status_code=303)
    return render(request, "portal/legal.html", {"doc": "terms"})


@router.get("/privacy")
def privacy_notice(request: Request, viewer: Anyone) -> Response:
    url = erasure.settings(get_session(request)).privacy_url
    if url:
        return RedirectResponse(url, status_code=303)
    return render(request, "portal/legal.html", {"doc": "privacy"})
