"""What the console and the portal share: a transaction per page, signed-cookie sessions, CSRF,
the caller's language, and Jinja2 rendering with money/date filters.

Pages call services exactly as the API does. A page that answers 4xx (a form with errors) has
its transaction rolled back, so bad input changes nothing; a page may keep its writes anyway
(a failed sign-in still counts) by setting ``request.state.keep_writes``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, unquote
from zoneinfo import ZoneInfo

import jwt
from babel.support import NullTranslations
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session, lazyload
from starlette.concurrency import run_in_threadpool

from patron.auth import service as auth_service
from patron.auth.models import StaffUser
from patron.auth.principal import Principal
from patron.config import Settings
from patron.db import Database
from patron.errors import Forbidden, PatronError, Unauthorized
from patron.web import i18n
from patron.web.deps import WRITE_METHODS
from patron.web.routing import transaction_slots

TEMPLATE_DIR: Final = Path(__file__).parent / "templates"
STAFF_COOKIE: Final = "patron_console"
MEMBER_COOKIE: Final = "patron_portal"
LANG_COOKIE: Final = "patron_lang"
FLASH_COOKIE: Final = "patron_flash"
CSRF_FIELD: Final = "csrf_token"
CSRF_HEADER: Final = "X-CSRF-Token"
ALGORITHM: Final = "HS256"
CONSOLE_PREFIX: Final = "/console"
PORTAL_PREFIX: Final = "/portal"


# ---- one transaction per page ----------------------------------------------------------------


class PageRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            async with transaction_slots(request.app):
                return await run_page(request)

        async def run_page(request: Request) -> Response:
            db: Database = request.app.state.db
            uow = await run_in_threadpool(db.begin)
            request.state.uow = uow
            try:
                try:
                    response = await original(request)
                except BaseException:
                    await run_in_threadpool(uow.rollback)
                    raise
                if response.status_code < 400 or getattr(request.state, "keep_writes", False):
                    await run_in_threadpool(uow.commit)
                else:
                    await run_in_threadpool(uow.rollback)
                renew: tuple[str, str, int] | None = getattr(request.state, "renew_cookie", None)
                if renew is not None:
                    name, value, max_age = renew
                    secure = secure_cookies(request.app.state.settings)
                    set_session_cookie(response, name, value, max_age, secure=secure)
                return response
            finally:
                await run_in_threadpool(uow.close)

        return handler


def page_router(prefix: str = "") -> APIRouter:
    # Pages are not part of the integrators' OpenAPI document.
    return APIRouter(prefix=prefix, route_class=PageRoute, include_in_schema=False)


def is_page_request(request: Request) -> bool:
    path = request.url.path
    return path.startswith((CONSOLE_PREFIX, PORTAL_PREFIX))


# ---- sessions: a signed, expiring token in an HttpOnly cookie ----------------------------------


def secure_cookies(settings: Settings) -> bool:
    return (
        settings.secure_cookies
        if settings.secure_cookies is not None
        else (settings.env == "production")
    )


def set_session_cookie(
    response: Response, name: str, value: str, max_age: int, *, secure: bool
) -> None:
    path = PORTAL_PREFIX if name == MEMBER_COOKIE else CONSOLE_PREFIX
    response.set_cookie(
        name, value, max_age=max_age, httponly=True, samesite="lax", path=path, secure=secure
    )


def clear_session_cookie(response: Response, name: str) -> None:
    path = PORTAL_PREFIX if name == MEMBER_COOKIE else CONSOLE_PREFIX
    response.delete_cookie(name, path=path)


def issue_member_session(
    member_id: int, key: bytes, ttl_minutes: int, now: datetime, *, sid: str | None = None
) -> str:
    jti = secrets.token_urlsafe(8)
    claims = {
        "sub": str(member_id),
        "typ": "member",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=ttl_minutes)).timestamp()),
        "jti": jti,
        "sid": sid or jti,
    }
    return jwt.encode(claims, key, algorithm=ALGORITHM)


def read_member_session(token: str, key: bytes, now: datetime) -> dict[str, Any] | None:
    try:
        claims: dict[str, Any] = jwt.decode(
            token, key, algorithms=[ALGORITHM], options={"verify_exp": False}
        )
    except jwt.PyJWTError:
        return None
    if claims.get("typ") != "member" or int(claims.get("exp", 0)) <= int(now.timestamp()):
        return None
    return claims


def _unverified(token: str) -> dict[str, Any]:
    """Claims of a token whose signature was already checked (here: issued-at and session id)."""
    try:
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}
    return claims


def _issued_at(claims: dict[str, Any]) -> int:
    try:
        return int(claims.get("iat", 0))
    except (TypeError, ValueError):
        return 0


def _session_id(claims: dict[str, Any], token: str) -> str:
    return str(claims.get("sid") or claims.get("jti") or token)


def csrf_token(session_id: str, key: bytes) -> str:
    """Bound to the session, which keeps its id when its cookie is renewed: a page of another
    session (or of none) cannot post, and a form stays valid while its session lives."""
    return hmac.new(key, b"csrf:" + session_id.encode(), hashlib.sha256).hexdigest()[:32]


async def _check_csrf(request: Request, expected: str) -> None:
    if request.method not in WRITE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER)
    if not sent:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
    if not sent or not hmac.compare_digest(sent, expected):
        raise Forbidden(
            "csrf_failed", "This form has expired or did not come from Patron; reload the page."
        )


# ---- who is looking at the page --------------------------------------------------------------


@dataclass
class Viewer:
    """The signed-in staff user or member, their language and the page's CSRF token."""

    principal: Principal
    locale: str
    csrf: str
    display_name: str
    extra: dict[str, Any] = field(default_factory=dict)

    def can(self, permission: str) -> bool:
        return self.principal.has(permission)


class NeedsSignIn(Exception):
    def __init__(self, login_url: str) -> None:
        super().__init__(login_url)
        self.login_url = login_url


def request_locale(request: Request, preferred: str | None = None) -> str:
    return (
        i18n.normalize_locale(preferred)
        or i18n.normalize_locale(request.cookies.get(LANG_COOKIE))
        or i18n.from_accept_language(request.headers.get("accept-language"))
        or i18n.DEFAULT_LOCALE
    )


def get_session(request: Request) -> Session:
    session: Session = request.state.uow.session
    return session


class StaffPage:
    """Dependency of every console page: a signed-in staff user holding ``permission``.

    Without a session the page redirects to sign-in; a role without the permission gets 403.
    Writes also need the session's CSRF token. The session slides: a token older than a fifth
    of its lifetime is renewed, so an idle console signs out after ``console_session_minutes``.
    """

    def __init__(self, permission: str | None) -> None:
        self.permission = permission

    async def __call__(self, request: Request) -> Viewer:
        settings: Settings = request.app.state.settings
        key: bytes = request.app.state.keys["token_key"]
        token = request.cookies.get(STAFF_COOKIE)
        next_url = quote(
            str(request.url.path) + ("?" + request.url.query if request.url.query else "")
        )
        login_url = f"{CONSOLE_PREFIX}/login?next={next_url}"
        if not token:
            raise NeedsSignIn(login_url)
        now: datetime = request.app.state.clock.now()
        session = get_session(request)

        def load() -> tuple[Principal, StaffUser]:
            principal = auth_service.principal_from_token(session, token, key, now)
            assert principal.id is not None
            return principal, auth_service.get_staff(session, principal.id)

        try:
            principal, user = await run_in_threadpool(load)
        except PatronError as exc:
            raise NeedsSignIn(login_url) from exc
        claims = _unverified(token)
        sid = _session_id(claims, token)
        csrf = csrf_token(sid, key)
        await _check_csrf(request, csrf)
        viewer = Viewer(
            principal=principal,
            locale=request_locale(request, getattr(user, "locale", None)),
            csrf=csrf,
            display_name=user.display_name,
        )
        request.state.viewer = viewer
        if self.permission is not None and not principal.has(self.permission):
            raise Forbidden(
                "forbidden",
                f"Your role does not allow this page (needs {self.permission}).",
                details={"permission": self.permission},
            )
        ttl = settings.console_session_minutes
        if int(now.timestamp()) - _issued_at(claims) > ttl * 12:  # a fifth of ttl, in seconds
            fresh = auth_service.issue_token(user, key, ttl, now, sid=sid)
            request.state.renew_cookie = (STAFF_COOKIE, fresh, ttl * 60)
        return viewer


class MemberPage:
    """Dependency of every signed-in portal page: the member of the session, nobody else."""

    async def __call__(self, request: Request) -> Viewer:
        from patron.members.models import Member

        settings: Settings = request.app.state.settings
        key: bytes = request.app.state.keys["token_key"]
        token = request.cookies.get(MEMBER_COOKIE)
        login_url = f"{PORTAL_PREFIX}/login"
        now: datetime = request.app.state.clock.now()
        claims = read_member_session(token, key, now) if token else None
        if token is None or claims is None:
            raise NeedsSignIn(login_url)
        session = get_session(request)
        # Consents and tags load only when a page touches them (most portal pages do not).
        member = await run_in_threadpool(
            lambda: session.get(Member, int(claims["sub"]), options=[lazyload("*")])
        )
        if member is None or member.status != "active":
            raise NeedsSignIn(login_url)
        ended = member.sessions_valid_after
        # iat has whole seconds: a token from the same second as the sign-out ends with it
        if ended is not None and int(claims.get("iat", 0)) <= int(ended.timestamp()):
            raise NeedsSignIn(login_url)
        sid = _session_id(claims, token)
        csrf = csrf_token(sid, key)
        await _check_csrf(request, csrf)
        viewer = Viewer(
            principal=Principal(kind="member", id=member.id, label=member.member_no),
            locale=request_locale(request),
            csrf=csrf,
            display_name=member.name or member.member_no,
            extra={"member": member},
        )
        request.state.viewer = viewer
        ttl = settings.portal_session_minutes
        if int(now.timestamp()) - int(claims.get("iat", 0)) > ttl * 12:
            fresh = issue_member_session(member.id, key, ttl, now, sid=sid)
            request.state.renew_cookie = (MEMBER_COOKIE, fresh, ttl * 60)
        return viewer


class PublicPage:
    """Dependency of a page anyone may open (sign-in). Writes still need a CSRF token, bound to
    a pre-session cookie."""

    async def __call__(self, request: Request) -> Viewer:
        key: bytes = request.app.state.keys["token_key"]
        anon = request.cookies.get("patron_anon") or ""
        csrf = csrf_token("anon:" + anon, key) if anon else ""
        if request.method in WRITE_METHODS:
            if not anon:
                raise Forbidden(
                    "csrf_failed", "Your browser did not keep Patron's cookie; reload the page."
                )
            await _check_csrf(request, csrf)
        elif not anon:
            anon = secrets.token_urlsafe(16)
            csrf = csrf_token("anon:" + anon, key)
            request.state.set_anon = anon
        viewer = Viewer(
            principal=Principal(kind="system", id=None, label="anonymous"),
            locale=request_locale(request),
            csrf=csrf,
            display_name="",
        )
        request.state.viewer = viewer
        return viewer


# ---- form values -----------------------------------------------------------------------------


def parse_day(text: str) -> date:
    """``YYYY-MM-DD`` between 1900 and 2999; anything else raises ValueError (a form error),
    so that arithmetic near date.max cannot overflow into a 500."""
    value = date.fromisoformat(text.strip())
    if not 1900 <= value.year <= 2999:
        raise ValueError("date out of range")
    return value


# ---- rendering -------------------------------------------------------------------------------


def money(fen: int | None) -> str:
    """Integer fen → ``¥1,234.56`` (negative amounts keep their sign in front)."""
    if fen is None:
        return ""
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(int(fen)), 100)
    return f"{sign}¥{yuan:,}.{cents:02d}"


def number(value: int | None) -> str:
    return "" if value is None else f"{int(value):,}"


def percent(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value * 100:.{digits}f}%"


def _plain_gettext(catalogue: NullTranslations) -> Callable[..., str]:
    def gettext(message: str, **variables: Any) -> str:
        return str(catalogue.gettext(message)) % variables

    return gettext


def _plain_ngettext(catalogue: NullTranslations) -> Callable[..., str]:
    def ngettext(singular: str, plural: str, n: int, **variables: Any) -> str:
        return str(catalogue.ngettext(singular, plural, n)) % {"num": n, **variables}

    return ngettext


class Renderer:
    """One Jinja2 environment per language (environments are not per-request objects)."""

    def __init__(self, settings: Settings) -> None:
        self.tz = ZoneInfo(settings.business_timezone)
        self._envs: dict[str, Environment] = {}
        for locale in i18n.LOCALES:
            env = Environment(
                loader=FileSystemLoader(TEMPLATE_DIR),
                autoescape=select_autoescape(["html"]),
                extensions=["jinja2.ext.i18n"],
                trim_blocks=True,
                lstrip_blocks=True,
            )
            catalogue = i18n.translations(locale)
            # Plain-text gettext: Jinja's own marks every translation as safe HTML, so a runtime
            # message passed to _() (an error text) would skip escaping. Here the result is a
            # str and autoescaping applies to all of it; formatting is the same `%` as Jinja's.
            env.install_gettext_callables(  # type: ignore[attr-defined]
                gettext=_plain_gettext(catalogue),
                ngettext=_plain_ngettext(catalogue),
                newstyle=False,
            )
            env.filters.update(
                money=money,
                number=number,
                percent=percent,
                dt=self.datetime_text,
                date=self.date_text,
            )
            env.globals.update(locales=i18n.LOCALE_LABELS, locale=locale)
            self._envs[locale] = env

    def datetime_text(self, value: datetime | None) -> str:
        return "" if value is None else value.astimezone(self.tz).strftime("%Y-%m-%d %H:%M")

    def date_text(self, value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, datetime):
            return value.astimezone(self.tz).strftime("%Y-%m-%d")
        return str(value.isoformat())

    def render(self, locale: str, template: str, context: Mapping[str, Any]) -> str:
        return (
            self._envs.get(locale, self._envs[i18n.DEFAULT_LOCALE])
            .get_template(template)
            .render(context)
        )


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """Render ``template`` for the page's viewer. Status ≥ 400 rolls the page's writes back."""
    renderer: Renderer = request.app.state.renderer
    viewer: Viewer | None = getattr(request.state, "viewer", None)
    locale = viewer.locale if viewer else request_locale(request)
    flash = request.cookies.get(FLASH_COOKIE)
    ctx = {
        "request": request,
        "viewer": viewer,
        "csrf_token": viewer.csrf if viewer else "",
        "flash": i18n.gettext(locale, unquote(flash)) if flash else None,
        "is_htmx": request.headers.get("HX-Request") == "true",
        "here": page_address(request),
        **(context or {}),
    }
    response = HTMLResponse(renderer.render(locale, template, ctx), status_code=status)
    if headers:
        response.headers.update(headers)
    if flash:
        response.delete_cookie(FLASH_COOKIE, path="/")
    anon = getattr(request.state, "set_anon", None)
    if anon:
        response.set_cookie(
            "patron_anon",
            anon,
            httponly=True,
            samesite="lax",
            path="/",
            secure=secure_cookies(request.app.state.settings),
        )
    return response


def redirect(request: Request, url: str, *, flash: str | None = None) -> Response:
    """After a successful form post: 303 to ``url`` (htmx follows ``HX-Redirect``). ``flash`` is
    an English message id shown once on the next page, in the viewer's language."""
    if request.headers.get("HX-Request") == "true":
        response: Response = Response(status_code=204, headers={"HX-Redirect": url})
    else:
        response = RedirectResponse(url, status_code=303)
    if flash:
        response.set_cookie(FLASH_COOKIE, quote(flash), max_age=60, path="/", samesite="lax")
    return response


def translate(request: Request, message: str) -> str:
    viewer: Viewer | None = getattr(request.state, "viewer", None)
    return i18n.gettext(viewer.locale if viewer else request_locale(request), message)


def error_page(request: Request, exc: PatronError) -> Response:
    if isinstance(exc, Unauthorized):
        prefix = PORTAL_PREFIX if request.url.path.startswith(PORTAL_PREFIX) else CONSOLE_PREFIX
        return RedirectResponse(f"{prefix}/login", status_code=303)
    base = "portal" if request.url.path.startswith(PORTAL_PREFIX) else "console"
    prefix = PORTAL_PREFIX if base == "portal" else CONSOLE_PREFIX
    ctx = {"error": exc, "base": f"{base}/base.html", "again": _page_to_retry(request, prefix)}
    return render(request, "shared/error.html", ctx, status=exc.status)


def page_address(request: Request) -> str:
    """The address that shows this page again (for the language switch): the URL of a GET;
    after a form post, whose address answers POST only, the page the form was on."""
    if request.method in ("GET", "HEAD"):
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return here if len(here) <= 4000 else request.url.path
    prefix = PORTAL_PREFIX if request.url.path.startswith(PORTAL_PREFIX) else CONSOLE_PREFIX
    return _page_to_retry(request, prefix)


def _page_to_retry(request: Request, prefix: str) -> str:
    """Where "try again" leads after a refused form: the page the form was on when the browser
    says so (same site, same area), else the area's home. Never another site."""
    referer = request.headers.get("referer", "")
    origin = f"{request.url.scheme}://{request.url.netloc}"
    if referer.startswith(origin + prefix):
        path = referer[len(origin) :]
        if path.startswith(prefix) and "//" not in path and "\\" not in path:
            return path
    return prefix + "/"
