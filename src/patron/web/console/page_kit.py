"""What every console page module starts with, written once: its router, the viewers its pages
accept (a signed-in staff user holding one permission; without it the page answers 403, without
a session it redirects to sign-in) and the path parameters several areas share.

A page module imports the names it needs::

    from patron.web.console.page_kit import CampaignsReader, console_router

    router = console_router()
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request

from patron.auth import permissions as perm
from patron.web.pages import CONSOLE_PREFIX, StaffPage, Viewer, page_router


def console_router(*, full_paths: bool = False) -> APIRouter:
    """The router of a console page module: its paths start after ``/console`` unless the
    module writes them in full (the desk and the mall, whose routers nest)."""
    return page_router("" if full_paths else CONSOLE_PREFIX)


# ---- who may open a page ---------------------------------------------------------------------

SignedIn = Annotated[Viewer, Depends(StaffPage(None))]
AuditReader = Annotated[Viewer, Depends(StaffPage(perm.AUDIT_READ))]
CampaignsReader = Annotated[Viewer, Depends(StaffPage(perm.CAMPAIGNS_READ))]
CampaignsWriter = Annotated[Viewer, Depends(StaffPage(perm.CAMPAIGNS_WRITE))]
Configurer = Annotated[Viewer, Depends(StaffPage(perm.PROGRAM_CONFIGURE))]
CouponsReader = Annotated[Viewer, Depends(StaffPage(perm.COUPONS_READ))]
CouponIssuer = Annotated[Viewer, Depends(StaffPage(perm.COUPONS_ISSUE))]
MallReader = Annotated[Viewer, Depends(StaffPage(perm.MALL_READ))]
MallManager = Annotated[Viewer, Depends(StaffPage(perm.MALL_MANAGE))]
MallVerifier = Annotated[Viewer, Depends(StaffPage(perm.MALL_REDEEM))]
MembersReader = Annotated[Viewer, Depends(StaffPage(perm.MEMBERS_READ))]
MembersWriter = Annotated[Viewer, Depends(StaffPage(perm.MEMBERS_WRITE))]
OrdersReader = Annotated[Viewer, Depends(StaffPage(perm.ORDERS_READ))]
OrdersWriter = Annotated[Viewer, Depends(StaffPage(perm.ORDERS_WRITE))]
PointsReader = Annotated[Viewer, Depends(StaffPage(perm.POINTS_READ))]
PointsAdjuster = Annotated[Viewer, Depends(StaffPage(perm.POINTS_ADJUST))]
PointsApprover = Annotated[Viewer, Depends(StaffPage(perm.POINTS_APPROVE))]
PrivacyOfficer = Annotated[Viewer, Depends(StaffPage(perm.MEMBERS_PII))]
RiskReviewer = Annotated[Viewer, Depends(StaffPage(perm.RISK_REVIEW))]
SegmentsReader = Annotated[Viewer, Depends(StaffPage(perm.SEGMENTS_READ))]
SegmentsWriter = Annotated[Viewer, Depends(StaffPage(perm.SEGMENTS_WRITE))]
ServiceReader = Annotated[Viewer, Depends(StaffPage(perm.SERVICE_READ))]
ServiceWriter = Annotated[Viewer, Depends(StaffPage(perm.SERVICE_WRITE))]
StaffAdmin = Annotated[Viewer, Depends(StaffPage(perm.STAFF_ADMIN))]

# ---- the posted form ------------------------------------------------------------------------


async def posted(request: Request) -> dict[str, str]:
    """The submitted form as plain strings (file uploads are not part of these forms). Read
    here, on the event loop, so that the page itself can be a plain ``def`` that runs its
    synchronous service calls in a worker thread."""
    form = await request.form()
    return {key: value for key, value in form.multi_items() if isinstance(value, str)}


Posted = Annotated[dict[str, str], Depends(posted)]

# ---- path parameters -------------------------------------------------------------------------

#: a campaign's code: lower case, starting with a letter
CampaignCode = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_-]{0,39}$")]
#: the code of a journey, segment or message template
Code = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,40}$")]
#: a service ticket's number
TicketNo = Annotated[str, Path(pattern=r"^T[0-9]{8}$")]
