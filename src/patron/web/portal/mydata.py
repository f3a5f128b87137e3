"""Portal: my data (SPEC X4) — download everything Patron holds about me as JSON or CSV, and
request erasure (recorded for an operator)."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from patron.privacy import service as privacy
from patron.web.i18n import N_
from patron.web.pages import PORTAL_PREFIX, MemberPage, Viewer, page_router, redirect, render
from patron.web.portal import common

router = page_router(PORTAL_PREFIX)


def _page(
    request: Request, viewer: Viewer, errors: dict[str, str], status: int = 200
) -> HTMLResponse:
    member = common.member(request, viewer)
    pending = privacy.open_erasure_request(common.session(request), member.id)
    return render(
        request,
        "portal/mydata.html",
        {"tab": "me", "member": member, "pending": pending, "errors": errors},
        status=status,
    )


@router.get("/data")
def my_data(request: Request, viewer: Annotated[Viewer, Depends(MemberPage())]) -> HTMLResponse:
    return _page(request, viewer, {})


def _export(request: Request, viewer: Viewer) -> tuple[str, dict[str, object]]:
    member = common.member(request, viewer)
    data = privacy.export(
        common.session(request), common.cipher(request), member, now=common.now(request)
    )
    return member.member_no, data


def _download(body: bytes, media_type: str, filename: str) -> Response:
    # no-store: the file holds personal data; it must not stay in a shared phone's cache
    return Response(
        body,
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/data/export.json")
def export_json(request: Request, viewer: Annotated[Viewer, Depends(MemberPage())]) -> Response:
    member_no, data = _export(request, viewer)
    body = json.dumps(data, ensure_ascii=False, indent=2).encode()
    return _download(body, "application/json", f"patron-{member_no}.json")


@router.get("/data/export.zip")
def export_csv(request: Request, viewer: Annotated[Viewer, Depends(MemberPage())]) -> Response:
    member_no, data = _export(request, viewer)
    return _download(privacy.to_csv_zip(data), "application/zip", f"patron-{member_no}-csv.zip")


@router.post("/data/erasure")
def request_erasure(
    request: Request,
    viewer: Annotated[Viewer, Depends(MemberPage())],
    confirm: Annotated[str, Form(max_length=8)] = "",
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    if not confirm:
        errors = {"confirm": N_("Tick the box to confirm that you want your data erased.")}
        return _page(request, viewer, errors, 422)
    member = common.member(request, viewer)
    privacy.request_erasure(
        common.session(request),
        common.actor(member),
        member,
        reason=reason.strip(),
        now=common.now(request),
    )
    return redirect(
        request,
        PORTAL_PREFIX + "/data",
        flash=N_("Your erasure request is recorded. We will contact you when it is done."),
    )
