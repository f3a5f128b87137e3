"""Console: UGC contests — the list with a form for a new one, and a contest's page with the
moderation queue (approve or reject with a note, audited by the service), the approved entries
and the choice of winners once the contest has closed."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Final

from fastapi import Form, Path, Request
from fastapi.responses import HTMLResponse, Response

from patron.auth import permissions as perm
from patron.campaigns import contests
from patron.campaigns.contests import ContestIn
from patron.coupons import service as coupons
from patron.errors import NotFound, PatronError
from patron.kit.timeutil import business_tz
from patron.mall import images
from patron.web.console.page_kit import (
    CampaignCode,
    CampaignsReader,
    CampaignsWriter,
    console_router,
)
from patron.web.context import request_ctx
from patron.web.i18n import N_
from patron.web.pages import (
    CONSOLE_PREFIX,
    Viewer,
    get_session,
    redirect,
    render,
)

router = console_router()

ERRORS: Final = {
    "invalid_contest": N_(
        "Check the fields: a name, an end after the start, 1 to 1,000 winners, and points or "
        "a coupon for each winner."
    ),
    "coupon_template_not_found": N_("Choose one of the coupon templates."),
    "entry_already_moderated": N_("This entry was already approved or rejected."),
    "entry_not_found": N_("This entry no longer exists."),
    "invalid_note": N_("The note is at most 500 characters."),
    "contest_still_open": N_("Choose the winners after the contest has closed."),
    "entry_not_approved": N_("Only approved entries can win."),
    "too_many_winners": N_("That is more winners than the contest has places."),
    "coupon_template_paused": N_("That coupon template is paused: it issues nothing."),
    "coupon_sold_out": N_("The prize's coupon template has none left."),
}
FAILED: Final = N_("That did not work; check the fields and try again.")
STATUS_LABELS: Final = {
    "pending": N_("Waiting for review"),
    "approved": N_("Approved"),
    "rejected": N_("Rejected"),
}


def _tz(request: Request) -> Any:
    return business_tz(request.app.state.settings.business_timezone)


def _page(
    request: Request,
    viewer: Viewer,
    *,
    form: dict[str, str] | None = None,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    session = get_session(request)
    today = request.app.state.clock.now().astimezone(_tz(request)).date()
    ctx = {
        "nav": "campaigns",
        "rows": contests.list_contests(session),
        "templates": [t for t in coupons.list_templates(session) if t.status == "active"],
        "form": form
        or {
            "code": "",
            "name": "",
            "description": "",
            "starts": today.isoformat(),
            "ends": (today + timedelta(days=13)).isoformat(),
            "points": "100",
            "coupon": "",
            "winners": "3",
        },
        "error": error,
        "can_write": viewer.can(perm.CAMPAIGNS_WRITE),
        "tz": _tz(request),
    }
    return render(request, "console/campaigns/contests.html", ctx, status=status)


@router.get("/contests")
def contest_list(request: Request, viewer: CampaignsReader) -> HTMLResponse:
    return _page(request, viewer)


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


@router.post("/contests")
async def contest_save(request: Request, viewer: CampaignsWriter) -> Response:
    raw = await request.form()
    form = {
        k: str(raw.get(k, "")).strip()[:2000]
        for k in ("code", "name", "description", "starts", "ends", "points", "coupon", "winners")
    }
    starts, ends = _day(form["starts"]), _day(form["ends"])
    code = form["code"].lower()
    ok_code = bool(code) and len(code) <= 40 and code[0].isalpha() and code.isascii()
    ok_code = ok_code and all(c.isalnum() or c in "_-" for c in code)
    if (
        starts is None
        or ends is None
        or not ok_code
        or not form["points"].isdigit()
        or not form["winners"].isdigit()
    ):
        return _page(request, viewer, form=form, error=ERRORS["invalid_contest"], status=422)
    tz = _tz(request)
    data = ContestIn(
        name=form["name"],
        description=form["description"],
        starts_at=datetime.combine(starts, time(), tz),
        # the last day is included: the contest closes at the start of the next one
        ends_at=datetime.combine(ends + timedelta(days=1), time(), tz),
        reward_points=int(form["points"]),
        reward_coupon=form["coupon"] or None,
        max_winners=int(form["winners"]),
    )
    session = get_session(request)
    try:
        with session.begin_nested():
            contests.put_contest(
                session, request_ctx(request, session, viewer.principal), code, data
            )
    except PatronError as exc:
        message = ERRORS.get(exc.code, FAILED)
        return _page(request, viewer, form=form, error=message, status=max(exc.status, 400))
    return redirect(request, f"{CONSOLE_PREFIX}/contests/{code}", flash=N_("Contest saved."))


def _detail(
    request: Request, viewer: Viewer, code: str, *, error: str | None = None, status: int = 200
) -> HTMLResponse:
    session = get_session(request)
    contest = contests.get_contest(session, code)
    all_entries = contests.entries(session, contest)
    now = request.app.state.clock.now()
    ctx = {
        "nav": "campaigns",
        "contest": contest,
        "pending": [(e, no) for e, no in all_entries if e.status == "pending"],
        "approved": [(e, no) for e, no in all_entries if e.status == "approved"],
        "rejected": [(e, no) for e, no in all_entries if e.status == "rejected"],
        "closed": now >= contest.ends_at,
        "places_left": contest.max_winners - sum(1 for e, _ in all_entries if e.winner),
        "coupon_name": _coupon_name(session, contest.reward_coupon),
        "labels": STATUS_LABELS,
        "error": error,
        "can_write": viewer.can(perm.CAMPAIGNS_WRITE),
        "tz": _tz(request),
    }
    return render(request, "console/campaigns/contest.html", ctx, status=status)


def _coupon_name(session: Any, code: str | None) -> str | None:
    if not code:
        return None
    try:
        return coupons.get_template(session, code).name
    except NotFound:
        return None


@router.get("/contests/{code}")
def contest_detail(request: Request, viewer: CampaignsReader, code: CampaignCode) -> HTMLResponse:
    return _detail(request, viewer, code)


@router.post("/contests/{code}/entries/{entry_id}")
def contest_moderate(
    request: Request,
    viewer: CampaignsWriter,
    code: CampaignCode,
    entry_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    decision: Annotated[str, Form(pattern=r"^(approve|reject)$")] = "approve",
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    session = get_session(request)
    try:
        with session.begin_nested():
            contests.moderate(
                session,
                request_ctx(request, session, viewer.principal),
                entry_id,
                approve=decision == "approve",
                note=note,
            )
    except PatronError as exc:
        return _detail(
            request, viewer, code, error=ERRORS.get(exc.code, FAILED), status=max(exc.status, 400)
        )
    flash = N_("Entry approved.") if decision == "approve" else N_("Entry rejected.")
    return redirect(request, f"{CONSOLE_PREFIX}/contests/{code}", flash=flash)


@router.post("/contests/{code}/winners")
async def contest_winners(
    request: Request, viewer: CampaignsWriter, code: CampaignCode
) -> Response:
    raw = await request.form()
    given = [str(v) for v in raw.getlist("entry")]
    ids = [int(v) for v in given if v.isdigit() and len(v) < 10][:1000]
    session = get_session(request)
    if not ids:
        return _detail(request, viewer, code, error=N_("Tick the winning entries."), status=422)
    try:
        with session.begin_nested():
            contests.choose_winners(
                session, request_ctx(request, session, viewer.principal), code, ids
            )
    except PatronError as exc:
        return _detail(
            request, viewer, code, error=ERRORS.get(exc.code, FAILED), status=max(exc.status, 400)
        )
    return redirect(
        request,
        f"{CONSOLE_PREFIX}/contests/{code}",
        flash=N_("Winners chosen and rewarded; a winner is never rewarded twice."),
    )


@router.get("/contests/{code}/entries/{entry_id}/image/{size}")
def contest_image(
    request: Request,
    viewer: CampaignsReader,
    code: CampaignCode,
    entry_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    size: Annotated[str, Path(pattern=r"^(large|thumb)$")],
) -> Response:
    return serve_entry_image(request, code, entry_id, size, approved_only=False)


def serve_entry_image(
    request: Request,
    code: str,
    entry_id: int,
    size: str,
    *,
    approved_only: bool,
    member_id: int | None = None,
) -> Response:
    """An entry's image from the image store (the portal sees approved entries and its own)."""
    session = get_session(request)
    contest = contests.get_contest(session, code)
    entry = contests.get_entry(session, contest, entry_id)
    visible = not approved_only or entry.status == "approved" or entry.member_id == member_id
    blob = (
        images.for_app(request.app.state).get(images.size_key(entry.image_key, size))
        if entry.image_key and visible
        else None
    )
    if blob is None:
        raise NotFound("image_not_found", "This entry has no image.")
    return Response(
        blob,
        media_type=images.CONTENT_TYPE,
        headers={"Cache-Control": "private, max-age=86400", "ETag": f'"{entry.image_key}"'},
    )
