"""Thin routes over UGC contests for integrators (docs/campaigns.md): contests, their entries
with moderation status, moderation, winners, and a member's entry sent by a mini-program
(multipart, its photo through the same checks as a gift's image)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Final, Literal

from fastapi import Depends, Form, Path, Query, Request
from fastapi.responses import Response

from patron.auth import permissions as perm
from patron.auth.principal import Principal
from patron.campaigns import contests
from patron.campaigns.contests import ContestIn
from patron.campaigns.models import Contest, ContestEntry
from patron.campaigns.schemas import (
    ContestEntryList,
    ContestEntryOut,
    ContestEntryUpload,
    ContestList,
    ContestModeration,
    ContestOut,
    ContestPut,
    ContestWinnersIn,
    ContestWinnersOut,
)
from patron.errors import NotFound
from patron.mall import images
from patron.mall.api_images import read_upload
from patron.web.context import request_ctx
from patron.web.deps import ClockDep, SessionDep, require
from patron.web.openapi import errors
from patron.web.routing import api_router

PREFIX: Final = "/api/v1/contests"
router = api_router(PREFIX, tags=["campaigns"])
Code = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_-]{0,39}$")]
EntryId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Reader = Annotated[Principal, Depends(require(perm.CAMPAIGNS_READ))]
Manager = Annotated[Principal, Depends(require(perm.CONTESTS_MANAGE))]
Enterer = Annotated[Principal, Depends(require(perm.CONTESTS_ENTER))]

#: the entry upload's address (its body may be larger than other requests', see app.py)
API_ENTRY_UPLOAD: Final = re.compile(r"^/api/v1/contests/[a-z][a-z0-9_-]{0,39}/entries$")


def _state(c: Contest, now: datetime) -> Literal["upcoming", "open", "closed"]:
    if now < c.starts_at:
        return "upcoming"
    return "open" if now < c.ends_at else "closed"


def _out(c: Contest, counts: contests.Counts, now: datetime) -> ContestOut:
    return ContestOut(
        code=c.code,
        name=c.name,
        description=c.description,
        starts_at=c.starts_at,
        ends_at=c.ends_at,
        reward_points=c.reward_points,
        reward_coupon=c.reward_coupon,
        max_winners=c.max_winners,
        state=_state(c, now),
        pending=counts.pending,
        approved=counts.approved,
        winners=counts.winners,
    )


def _entry_out(code: str, e: ContestEntry, member_no: str) -> ContestEntryOut:
    base = f"{PREFIX}/{code}/entries/{e.id}/image"
    return ContestEntryOut(
        id=e.id,
        member_no=member_no,
        text=e.text,
        status=e.status,  # pending | approved | rejected
        note=e.note,
        moderated_at=e.moderated_at,
        winner=e.winner,
        rewarded_at=e.rewarded_at,
        coupon_code=e.coupon_code,
        created_at=e.created_at,
        image_urls={s: f"{base}/{s}" for s in images.SIZES} if e.image_key else {},
    )


@router.get("", response_model=ContestList, summary="UGC contests, newest first")
def list_contests(session: SessionDep, clock: ClockDep, _p: Reader) -> ContestList:
    now = clock.now()
    return ContestList(items=[_out(c, n, now) for c, n in contests.listing(session)])


@router.get("/{code}", response_model=ContestOut, summary="One UGC contest", responses=errors(404))
def get_contest(code: Code, session: SessionDep, clock: ClockDep, _p: Reader) -> ContestOut:
    contest = contests.get_contest(session, code)
    return _out(contest, contests.counts_of(session, contest), clock.now())


@router.put(
    "/{code}",
    response_model=ContestOut,
    summary="Create or change a UGC contest (audited; emits contest.changed)",
    responses=errors(404, 422),
)
def put_contest(
    code: Code, body: ContestPut, request: Request, session: SessionDep, principal: Manager
) -> ContestOut:
    ctx = request_ctx(request, session, principal)
    data = ContestIn(
        name=body.name,
        description=body.description,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        reward_points=body.reward_points,
        reward_coupon=body.reward_coupon,
        max_winners=body.max_winners,
    )
    contest = contests.put_contest(session, ctx, code, data)
    return _out(contest, contests.counts_of(session, contest), ctx.now)


@router.get(
    "/{code}/entries",
    response_model=ContestEntryList,
    summary="A contest's entries with their moderation status, oldest first",
    responses=errors(404),
)
def list_entries(
    code: Code,
    session: SessionDep,
    _p: Reader,
    status: Annotated[Literal["pending", "approved", "rejected"] | None, Query()] = None,
) -> ContestEntryList:
    contest = contests.get_contest(session, code)
    rows = contests.entries(session, contest, status)
    return ContestEntryList(items=[_entry_out(contest.code, e, no) for e, no in rows])


@router.post(
    "/{code}/entries",
    response_model=ContestEntryOut,
    status_code=201,
    summary="A member's entry, sent by a mini-program (multipart: member_no, text, image)",
    operation_id="submit_contest_entry",
    responses=errors(404, 409, 413, 422),
)
def submit_entry(
    code: Code,
    request: Request,
    session: SessionDep,
    principal: Enterer,
    form: Annotated[ContestEntryUpload, Form(media_type="multipart/form-data")],
) -> ContestEntryOut:
    """One entry per member while the contest is open; it waits for moderation. The photo
    (optional) is checked like a gift's image (declared type, size, Pillow, dimensions) and
    stored only once the entry is accepted."""
    member_id = contests.entrant(session, form.member_no)
    max_bytes = request.app.state.settings.mall_image_max_bytes
    data = read_upload(form.image, max_bytes) if form.image is not None else None
    prepared = (
        images.prepare(f"{code}-{member_id}", data, max_bytes, prefix="ugc")
        if data is not None
        else None
    )
    ctx = request_ctx(request, session, principal)
    entry = contests.submit(
        session, ctx, code, member_id, form.text, prepared.key if prepared else None
    )
    if prepared is not None:  # stored only once the entry is accepted
        images.save(images.for_app(request.app.state), prepared)
    return _entry_out(code, entry, form.member_no)


@router.get(
    "/{code}/entries/{entry_id}/image/{size}",
    response_class=Response,
    summary="One rendition of an entry's photo (image/webp)",
    responses={**errors(404), 200: {"content": {images.CONTENT_TYPE: {}}}},
)
def entry_image(
    code: Code,
    entry_id: EntryId,
    size: Annotated[str, Path(pattern=r"^(large|thumb)$")],
    request: Request,
    session: SessionDep,
    _p: Reader,
) -> Response:
    entry = contests.get_entry(session, contests.get_contest(session, code), entry_id)
    blob = (
        images.for_app(request.app.state).get(images.size_key(entry.image_key, size))
        if entry.image_key
        else None
    )
    if blob is None:
        raise NotFound("image_not_found", "This entry has no image.")
    return Response(blob, media_type=images.CONTENT_TYPE, headers={"ETag": f'"{entry.image_key}"'})


@router.post(
    "/{code}/entries/{entry_id}/moderation",
    response_model=ContestEntryOut,
    summary="Approve or reject a pending entry with a note (audited; once)",
    responses=errors(404, 409, 422),
)
def moderate_entry(
    code: Code,
    entry_id: EntryId,
    body: ContestModeration,
    request: Request,
    session: SessionDep,
    principal: Manager,
) -> ContestEntryOut:
    contest = contests.get_contest(session, code)
    entry = contests.moderate(
        session,
        request_ctx(request, session, principal),
        entry_id,
        approve=body.decision == "approve",
        note=body.note,
        contest_id=contest.id,
    )
    return _entry_out(contest.code, entry, contests.member_no(session, entry))


@router.post(
    "/{code}/winners",
    response_model=ContestWinnersOut,
    summary="Choose winners among approved entries once the contest has closed "
    "(each rewarded exactly once; emits contest.winner_rewarded)",
    responses=errors(404, 409, 422),
)
def choose_winners(
    code: Code,
    body: ContestWinnersIn,
    request: Request,
    session: SessionDep,
    principal: Manager,
) -> ContestWinnersOut:
    done = contests.choose_winners(
        session, request_ctx(request, session, principal), code, body.entry_ids
    )
    return ContestWinnersOut(chosen=done.chosen, already=done.already)
