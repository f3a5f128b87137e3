"""Console: the clerk desk — find or scan a member and choose the desk's store.

Made for a tablet and a handheld scanner: a scanner types a code and presses Enter into the
focused field, so every step is one text field whose Enter does the obvious thing. The basket is
in desk_basket.py, returns in desk_returns.py, registration in desk_register.py.
"""

from __future__ import annotations

import re
from typing import Annotated, Final

from fastapi import Form, Query, Request
from sqlalchemy.orm import Session
from starlette.responses import Response

from patron.auth import permissions as perm
from patron.errors import PatronError
from patron.members import card
from patron.members import service as members
from patron.members.models import Member
from patron.web.console import desk_basket, desk_register, desk_returns
from patron.web.console.desk_basket import Basket
from patron.web.console.desk_common import (
    DESK,
    STORE_COOKIE,
    cipher,
    member_view,
    message,
    new_order_no,
    now,
    page_context,
    store_choices,
)
from patron.web.console.page_kit import MembersReader, console_router
from patron.web.i18n import N_
from patron.web.pages import (
    get_session,
    redirect,
    render,
    translate,
)

router = console_router(full_paths=True)  # full paths (DESK), so the routers below nest as they are
# The desk's other pages come with this router, so the console registers the desk once.
for _part in (desk_basket, desk_returns, desk_register):
    router.include_router(_part.router)


#: what a clerk types as a mobile number (spaces, dashes and a +86 prefix allowed)
PHONE_LIKE: Final = re.compile(r"^(?:\+?86[ -]?)?1[0-9][0-9 -]{9,12}$")


# ---- the desk: store, lookup, member -------------------------------------------------------


def _find(request: Request, session: Session, q: str) -> tuple[list[Member], str | None]:
    """Members matching what the clerk typed or scanned, or why there are none."""
    text = q.strip()
    if not text:
        return [], translate(request, N_("Enter a phone number or member number, or scan a code."))
    if card.looks_like_token(text):
        key: bytes = request.app.state.keys["token_key"]
        try:
            return [card.resolve(session, text, key, now(request))], None
        except PatronError as exc:
            return [], message(request, exc)
    rows, _total = members.search(session, cipher(request), q=text, limit=10)
    if not rows:
        return [], translate(request, N_("No member has this phone number or member number."))
    return rows, None


@router.get(DESK)
def desk(
    request: Request,
    viewer: MembersReader,
    q: Annotated[str | None, Query(max_length=200)] = None,
    member: Annotated[str | None, Query(pattern=r"^[0-9]{10}$")] = None,
) -> Response:
    session = get_session(request)
    chosen = members.get_member(session, member) if member is not None and q is None else None
    ctx = page_context(request, session, viewer, chosen, q=q or "")
    if q is not None:
        found, error = _find(request, session, q)
        if len(found) == 1 and found[0].status == "active":
            return redirect(request, f"{DESK}?member={found[0].member_no}")
        if error:
            ctx["errors"] = {"q": error}
            if not found and PHONE_LIKE.fullmatch(q.strip()):
                ctx["register_phone"] = q.strip()  # offer to register the number not found
            return render(request, "console/desk/index.html", ctx, status=422)
        ctx["matches"] = [member_view(request, session, viewer, m) for m in found]
    elif chosen is not None and chosen.status == "active" and viewer.can(perm.ORDERS_WRITE):
        store = ctx["store"]
        code = store.code if store else None
        ctx["basket"] = Basket(order_no=new_order_no(code, now(request), request))
    return render(request, "console/desk/index.html", ctx)


@router.post(DESK + "/store")
def choose_store(
    request: Request,
    viewer: MembersReader,
    store_code: Annotated[str, Form(max_length=32)] = "",
    back: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    session = get_session(request)
    codes = {s.code for s in store_choices(session)}
    if store_code not in codes:
        error = translate(request, N_("Choose one of the stores."))
        ctx = page_context(request, session, viewer, None, errors={"store_code": error})
        return render(request, "console/desk/index.html", ctx, status=422)
    target = back if back.startswith(DESK) and not back.startswith("//") else DESK
    response = redirect(request, target)
    # Remembered on this tablet for a working year; the store is chosen once.
    response.set_cookie(
        STORE_COOKIE, store_code, max_age=365 * 86400, httponly=True, samesite="lax", path=DESK
    )
    return response
