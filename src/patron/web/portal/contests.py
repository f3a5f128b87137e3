"""Portal: UGC contests — the open ones, a contest's page with the member's entry (text and an
optional photo through the image store) and the approved entries of other members."""

from __future__ import annotations

import re
from typing import Annotated, Final

from fastapi import Depends, File, Form, Path, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from patron.campaigns import contests
from patron.errors import PatronError
from patron.mall import images
from patron.web.console.contests import serve_entry_image
from patron.web.i18n import N_
from patron.web.pages import PORTAL_PREFIX, MemberPage, Viewer, page_router, redirect, render
from patron.web.portal import common

router = page_router(PORTAL_PREFIX)
# An entry's photo may be larger than the 1 MB body cap of other requests (app.py).
ENTRY_UPLOAD: Final = re.compile(rf"^{PORTAL_PREFIX}/contests/[a-z][a-z0-9_-]{{0,39}}$")
Code = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_-]{0,39}$")]

ERRORS: Final = {
    "contest_not_open": N_("This contest is not taking entries now."),
    "entry_exists": N_("You have already entered this contest."),
    "invalid_entry": N_("Write your entry: 1 to 2,000 characters."),
    "image_too_large": N_("The image is too large; upload a smaller file."),
    "image_type": N_("Upload a JPEG, PNG or WebP image."),
    "image_dimensions": N_("Each side of the image must be between 100 and 8,000 pixels."),
}
STATUS_TEXTS: Final = {
    "pending": N_("Your entry is waiting for review."),
    "approved": N_("Your entry is approved and shown below."),
    "rejected": N_("Your entry was not approved."),
}


@router.get("/contests")
def contest_list(
    request: Request, viewer: Annotated[Viewer, Depends(MemberPage())]
) -> HTMLResponse:
    now = request.app.state.clock.now()
    open_now = contests.open_contests(common.session(request), now)
    return render(request, "portal/contests.html", {"tab": "activities", "contests": open_now})


def _page(
    request: Request,
    viewer: Viewer,
    code: str,
    *,
    error: str | None = None,
    text: str = "",
    status: int = 200,
) -> HTMLResponse:
    member = common.member(request, viewer)
    session = common.session(request)
    contest = contests.get_contest(session, code)
    now = request.app.state.clock.now()
    ctx = {
        "tab": "activities",
        "contest": contest,
        "open": contest.starts_at <= now < contest.ends_at,
        "mine": contests.member_entry(session, contest, member.id),
        "approved": [e for e, _ in contests.entries(session, contest, "approved")],
        "status_texts": STATUS_TEXTS,
        "error": error,
        "text": text,
    }
    return render(request, "portal/contest.html", ctx, status=status)


@router.get("/contests/{code}")
def contest_page(
    request: Request, viewer: Annotated[Viewer, Depends(MemberPage())], code: Code
) -> HTMLResponse:
    return _page(request, viewer, code)


@router.post("/contests/{code}")
def contest_submit(
    request: Request,
    viewer: Annotated[Viewer, Depends(MemberPage())],
    code: Code,
    text: Annotated[str, Form(max_length=4000)] = "",
    image: Annotated[UploadFile | None, File()] = None,
) -> Response:
    member = common.member(request, viewer)
    session = common.session(request)
    max_bytes = request.app.state.settings.mall_image_max_bytes
    data = image.file.read(max_bytes + 1) if image is not None and image.filename else b""
    try:
        with session.begin_nested():
            prepared = (
                images.prepare(f"{code}-{member.id}", data, max_bytes, prefix="ugc")
                if data
                else None
            )
            contests.submit(
                session,
                common.ctx(request, member),
                code,
                member.id,
                text,
                prepared.key if prepared else None,
            )
            if prepared is not None:  # stored only once the entry is accepted
                images.save(images.for_app(request.app.state), prepared)
    except PatronError as exc:
        message = ERRORS.get(exc.code, N_("That did not work; check the fields and try again."))
        return _page(request, viewer, code, error=message, text=text, status=max(exc.status, 400))
    return redirect(
        request,
        f"{PORTAL_PREFIX}/contests/{code}",
        flash=N_("Thank you! Your entry will be shown once it is approved."),
    )


@router.get("/contests/{code}/entries/{entry_id}/image/{size}")
def contest_image(
    request: Request,
    viewer: Annotated[Viewer, Depends(MemberPage())],
    code: Code,
    entry_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    size: Annotated[str, Path(pattern=r"^(large|thumb)$")],
) -> Response:
    member = common.member(request, viewer)
    return serve_entry_image(request, code, entry_id, size, approved_only=True, member_id=member.id)
