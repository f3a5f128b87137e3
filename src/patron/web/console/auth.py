"""Console sign-in, sign-out and language."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from patron.auth import service as auth_service
from patron.config import Settings
from patron.web import i18n
from patron.web.console.page_kit import SignedIn, console_router
from patron.web.pages import (
    CONSOLE_PREFIX,
    LANG_COOKIE,
    STAFF_COOKIE,
    PublicPage,
    Viewer,
    clear_session_cookie,
    get_session,
    redirect,
    render,
    secure_cookies,
    set_session_cookie,
)

router = console_router()


def _safe_next(value: str | None) -> str:
    """A console page of this site (path and query) to go back to; anything else, e.g. another
    site's address, becomes the dashboard: never an open redirect."""
    home = CONSOLE_PREFIX + "/"
    if not value or not value.startswith(home) or "\\" in value or not value.isprintable():
        return home
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not parts.path.startswith(home):
        return home
    return value


@router.get("/login")
def login_form(
    request: Request,
    viewer: Annotated[Viewer, Depends(PublicPage())],
    next: str | None = None,
) -> HTMLResponse:
    return render(request, "console/login.html", {"next": _safe_next(next), "errors": {}})


@router.post("/login")
def login(
    request: Request,
    viewer: Annotated[Viewer, Depends(PublicPage())],
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    next: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    settings: Settings = request.app.state.settings
    errors: dict[str, str] = {}
    if not username.strip():
        errors["username"] = "Enter your username."
    if not password:
        errors["password"] = "Enter your password."
    if errors:
        ctx = {"next": _safe_next(next), "errors": errors, "username": username}
        return render(request, "console/login.html", ctx, status=422)
    try:
        issued = auth_service.login(
            get_session(request),
            username=username.strip(),
            password=password,
            token_key=request.app.state.keys["token_key"],
            ttl_minutes=settings.console_session_minutes,
            throttle=auth_service.LoginThrottle(
                settings.login_max_failures, timedelta(minutes=settings.login_lockout_minutes)
            ),
            source=request.client.host if request.client else None,
            now=request.app.state.clock.now(),
        )
    except auth_service.LoginFailed as failed:
        request.state.keep_writes = True  # the failed attempt must stick (counted per address)
        message = {"account_disabled": "This account is disabled."}.get(
            failed.error.code, "Wrong username or password."
        )
        ctx = {"next": _safe_next(next), "errors": {"form": message}, "username": username}
        return render(request, "console/login.html", ctx, status=401)
    response = redirect(request, _safe_next(next))
    ttl_seconds = settings.console_session_minutes * 60
    set_session_cookie(
        response, STAFF_COOKIE, issued.token, ttl_seconds, secure=secure_cookies(settings)
    )
    if issued.user.locale:
        response.set_cookie(LANG_COOKIE, issued.user.locale, samesite="lax", path="/")
    return response


@router.post("/logout")
def logout(request: Request, viewer: SignedIn) -> Response:
    assert viewer.principal.id is not None
    # Signing out ends this user's sessions everywhere: a copied cookie stops working too.
    auth_service.revoke_sessions(
        get_session(request), viewer.principal.id, request.app.state.clock.now()
    )
    response = redirect(request, CONSOLE_PREFIX + "/login", flash="You are signed out.")
    clear_session_cookie(response, STAFF_COOKIE)
    return response


@router.post("/lang")
def set_language(
    request: Request,
    viewer: SignedIn,
    locale: Annotated[str, Form(max_length=8)] = "",
    back: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    chosen = i18n.normalize_locale(locale)
    if chosen is None:
        return render(request, "shared/error.html", {"base": "console/base.html"}, status=422)
    assert viewer.principal.id is not None
    auth_service.set_locale(get_session(request), viewer.principal.id, chosen)
    response = redirect(request, _safe_next(back))
    response.set_cookie(LANG_COOKIE, chosen, samesite="lax", path="/", max_age=365 * 86400)
    return response
