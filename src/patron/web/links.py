"""The links inside messages: ``/m/c/<token>`` counts a click and sends the reader on;
``/m/u/<token>`` asks to confirm and then withdraws consent for that message's channel;
``/m/o/<token>`` is the 1×1 image an HTML email loads when it is opened.
Signed tokens (``messaging.links``) are the only authority these pages need."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.responses import RedirectResponse, Response

from patron.messaging import service as messaging
from patron.web.i18n import N_
from patron.web.pages import PublicPage, get_session, page_router, render

router = page_router("")
Token = Annotated[str, Path(min_length=5, max_length=80)]
CHANNEL_WORDS = {
    "sms": N_("text messages"),
    "email": N_("email"),
    "push": N_("app notifications"),
    "wechat": N_("WeChat messages"),
}


@router.get("/m/c/{token}", include_in_schema=False, dependencies=[Depends(PublicPage())])
def click(token: Token, request: Request) -> Response:
    session = get_session(request)
    url = messaging.click(
        session, request.app.state.keys["token_key"], token, now=request.app.state.clock.now()
    )
    return RedirectResponse(url, status_code=302)


# A transparent 1×1 GIF.
PIXEL = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)


@router.get("/m/o/{token}", include_in_schema=False, dependencies=[Depends(PublicPage())])
def opened(token: Token, request: Request) -> Response:
    session = get_session(request)
    messaging.opened(
        session, request.app.state.keys["token_key"], token, now=request.app.state.clock.now()
    )
    # Every opening must reach the server (a cached image would count the first one only, and
    # a proxy must not keep it either).
    return Response(PIXEL, media_type="image/gif", headers={"Cache-Control": "no-store, private"})


@router.get("/m/u/{token}", include_in_schema=False, dependencies=[Depends(PublicPage())])
def unsubscribe_form(token: Token, request: Request) -> Response:
    session = get_session(request)
    target = messaging.unsubscribe_target(session, request.app.state.keys["token_key"], token)
    return render(
        request,
        "portal/unsubscribe.html",
        {"done": target.done, "channel": CHANNEL_WORDS[target.channel], "token": token},
    )


@router.post("/m/u/{token}", include_in_schema=False, dependencies=[Depends(PublicPage())])
def unsubscribe(token: Token, request: Request) -> Response:
    session = get_session(request)
    target = messaging.unsubscribe(
        session, request.app.state.keys["token_key"], token, now=request.app.state.clock.now()
    )
    return render(
        request,
        "portal/unsubscribe.html",
        {"done": True, "channel": CHANNEL_WORDS[target.channel], "token": token},
    )
