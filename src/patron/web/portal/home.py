"""Portal: the member's home page — the member card with its rotating QR code, points and
the next expiry — and the QR fragment the page refreshes every minute."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse

from patron.analytics import personal
from patron.checkin import domain as checkin_domain
from patron.checkin import service as checkin
from patron.checkin.domain import CheckinSettings
from patron.kit.ids import format_member_no
from patron.ledger import service as ledger
from patron.members import card
from patron.program import service as program
from patron.tiers import service as tiers
from patron.tiers.domain import TierLadder
from patron.web.pages import PORTAL_PREFIX, MemberPage, Viewer, page_router, render
from patron.web.portal import common, summary

router = page_router(PORTAL_PREFIX)


def _qr(request: Request, member_id: int) -> dict[str, object]:
    token = summary.card_token(member_id, common.token_key(request), common.now(request))
    return {"token": token, "svg": summary.qr_svg(token), "rotate": card.ROTATE_SECONDS}


@router.get("/")
def home(request: Request, viewer: Annotated[Viewer, Depends(MemberPage())]) -> HTMLResponse:
    member = common.member(request, viewer)
    session = common.session(request)
    program.preload(
        session,
        {
            ledger.SECTION: ledger.PointsSettings,
            tiers.SECTION: TierLadder,
            checkin_domain.SECTION: CheckinSettings,
        },
    )
    ctx = common.ctx(request, member)
    return render(
        request,
        "portal/home.html",
        {
            "tab": "home",
            "member": member,
            "card_number": format_member_no(member.member_no),
            "tier": summary.tier_view(session, ctx, member.id, viewer.locale),
            "points": summary.points_view(session, ctx, member.id),
            "qr": _qr(request, member.id),
            "checkin": checkin.status(session, ctx, member.id),
            "for_you": personal.for_you(
                session, member.id, common.now(request).astimezone(common.tz(request)).date()
            ),
        },
    )


@router.get("/card/qr")
def card_qr(request: Request, viewer: Annotated[Viewer, Depends(MemberPage())]) -> HTMLResponse:
    member = common.member(request, viewer)
    return render(request, "portal/_qr.html", {"qr": _qr(request, member.id)})
