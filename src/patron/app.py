"""create_app(): middleware, error handlers and routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import DataError, DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from patron import __version__
from patron.config import Settings, get_settings
from patron.db import Database
from patron.errors import Invalid, PatronError
from patron.kit.clock import Clock, SystemClock
from patron.kit.crypto import FieldCipher
from patron.messaging import broker as message_broker
from patron.observability import (
    RequestContextMiddleware,
    configure_logging,
    current_request_id,
    get_logger,
)
from patron.ops.metrics import MetricsMiddleware, new_db_registry
from patron.web import openapi, pages
from patron.web.deps import Public
from patron.web.security_headers import SecurityHeadersMiddleware

log = get_logger("patron.app")

_HTTP_CODES = {
    400: "malformed_body",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def _error(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> JSONResponse:
    return JSONResponse(
        {
            "error": {
                "code": code,
                "message": message,
                "details": details or {},
                "request_id": current_request_id(),
            }
        },
        status_code=status,
    )


def _is_unavailable(exc: DBAPIError) -> bool:
    """An error meaning "no database to talk to", not a bad statement or a lost race: a failed
    connection (no SQLSTATE, or class 08) or a server shutting down (57P01-57P03)."""
    from sqlalchemy.exc import InterfaceError, OperationalError

    if not isinstance(exc, OperationalError | InterfaceError):
        return False
    # SQLite raises OperationalError for a locked or a missing table too: not an outage.
    if "sqlite" in type(exc.orig).__module__:
        return False
    sqlstate = getattr(exc.orig, "sqlstate", None)
    return sqlstate is None or sqlstate.startswith("08") or sqlstate in _SHUTDOWN_STATES


_SHUTDOWN_STATES = frozenset({"57P01", "57P02", "57P03"})


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Never echo the submitted values back: they may be personal data.
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body",)]
        out.append({"field": ".".join(loc), "type": err.get("type"), "message": err.get("msg")})
    return out


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    from patron.jobs.leader import Leader, lock_for
    from patron.jobs.scheduler import Scheduler
    from patron.jobs.tasks import default_tasks

    settings: Settings = app.state.settings
    scheduler = None
    if settings.scheduler:
        scheduler = Scheduler(
            default_tasks(
                app.state.db, app.state.cipher, app.state.clock, settings, app.state.read_db
            ),
            leader=Leader(lock_for(app.state.db)),
            db=app.state.db,
        )
        scheduler.start()
    try:
        yield
    finally:
        if scheduler is not None:
            scheduler.stop()


def create_app(
    settings: Settings | None = None,
    db: Database | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_json)
    keys = settings.keys()
    app = FastAPI(
        lifespan=_lifespan,
        title="Patron API",
        version=__version__,
        description=(
            "Membership and loyalty for retailers: members, points, tiers. Staff sign in at "
            "`/api/v1/auth/token` and send `Authorization: Bearer <token>`; integrations send "
            "`X-API-Key`. Every write accepts an `Idempotency-Key` header: a retry with the same "
            "key and body returns the first response, the same key with another body is a 409. "
            'Errors always look like `{"error": {"code", "message", "details", "request_id"}}`.'
        ),
    )
    app.state.settings = settings
    app.state.db = db or Database(settings.database_url)
    app.state.clock = clock or SystemClock()
    app.state.keys = keys
    app.state.cipher = FieldCipher(keys["data_key"], keys["index_key"], settings.previous_keys())
    app.state.renderer = pages.Renderer(settings)
    # the scrape's look at the broker waits briefly: a hung Redis must not hold /metrics
    app.state.broker = message_broker.from_settings(settings, timeout=message_broker.PROBE_TIMEOUT)
    app.state.metrics_registry = new_db_registry(
        app.state.db, settings.status_dir, app.state.broker
    )
    app.state.read_db = Database(settings.read_database_url) if settings.read_database_url else None

    @app.exception_handler(pages.NeedsSignIn)
    async def _needs_sign_in(request: Request, exc: pages.NeedsSignIn) -> Response:
        if request.headers.get("HX-Request") == "true":
            return Response(status_code=401, headers={"HX-Redirect": exc.login_url})
        return RedirectResponse(exc.login_url, status_code=303)

    @app.exception_handler(PatronError)
    async def _patron_error(request: Request, exc: PatronError) -> Response:
        if pages.is_page_request(request):
            return pages.error_page(request, exc)
        return _error(exc.status, exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        if pages.is_page_request(request):
            # Pages validate their own forms; this is a hand-made or truncated request.
            bad = Invalid("validation_error", "The form was incomplete; reload the page.")
            return pages.error_page(request, bad)
        errors = _field_errors(exc)
        unknown = [e["field"] for e in errors if e["type"] == "extra_forbidden"]
        if unknown:
            message = f"Unknown or read-only field(s): {', '.join(unknown)}."
        else:
            first = errors[0] if errors else {"field": "", "message": "invalid"}
            message = f"{first['field'] or 'request'}: {first['message']}"
        return _error(422, "validation_error", message, {"errors": errors})

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        message = exc.detail if isinstance(exc.detail, str) else "Request failed."
        if pages.is_page_request(request) and exc.status_code in (404, 405):
            return pages.error_page(request, PatronError(code, message, status=exc.status_code))
        response = _error(exc.status_code, code, message)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(DataError)
    async def _data_error(request: Request, exc: DataError) -> Response:
        # The database refused a value the validation let through (e.g. a number out of its
        # range): bad input, already rolled back by the request's unit of work.
        log.warning("data_error", error_type=type(exc.orig).__name__)
        bad = Invalid("invalid_value", "A value in the request is out of range or not valid.")
        if pages.is_page_request(request):
            return pages.error_page(request, bad)
        return _error(422, bad.code, bad.message)

    @app.exception_handler(DBAPIError)
    async def _database_error(request: Request, exc: DBAPIError) -> Response:
        # The database went away (restart, failover, network): answer at once with a stable
        # code so clients retry with their Idempotency-Key; the pool reconnects by itself.
        if exc.connection_invalidated or _is_unavailable(exc):
            log.warning("database_unavailable", error_type=type(exc.orig).__name__)
            response = _error(
                503,
                "database_unavailable",
                "The database is not reachable right now; retry in a few seconds with the "
                "same Idempotency-Key.",
            )
            response.headers["Retry-After"] = "2"
            return response
        return await _unexpected(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.error("unhandled_error", error_type=type(exc).__name__)
        if pages.is_page_request(request):
            oops = PatronError(
                "internal_error", "Something went wrong on our side; it was logged.", status=500
            )
            return pages.error_page(request, oops)
        return _error(500, "internal_error", "Something went wrong on our side; it was logged.")

    from patron.audit.api import router as audit_router
    from patron.auth.api import router as auth_router
    from patron.campaigns.api import events_router as member_events_router
    from patron.campaigns.api import milestones_router, referral_router
    from patron.campaigns.api import router as campaigns_router
    from patron.campaigns.contests_api import router as contests_router
    from patron.campaigns.recall_api import router as recall_router
    from patron.catalog.api import router as catalog_router
    from patron.checkin.api import router as checkin_router
    from patron.coupons.api import router as coupons_router
    from patron.journeys.api import router as journeys_router
    from patron.ledger.api import admin_router as points_admin_router
    from patron.ledger.api import router as points_router
    from patron.mall.api import router as mall_router
    from patron.mall.api_images import router as mall_images_router
    from patron.mall.api_suppliers import router as mall_suppliers_router
    from patron.members.api import router as members_router
    from patron.members.api import tags_router
    from patron.messaging.api import router as messaging_router
    from patron.ops.api import router as ops_router
    from patron.orders.api import router as orders_router
    from patron.risk.api import router as risk_router
    from patron.rules.api import router as rules_router
    from patron.segments.api import router as segments_router
    from patron.segments.api_tags import router as segment_tags_router
    from patron.service.api import router as service_router
    from patron.tiers.api import ladder_router
    from patron.tiers.api import router as tiers_router
    from patron.web.assets import router as assets_router
    from patron.web.console import router as console_router
    from patron.web.health import router as health_router
    from patron.web.links import router as links_router
    from patron.web.portal import router as portal_router
    from patron.webhooks.api import events_router
    from patron.webhooks.api import router as webhooks_router

    # routers:
    for router in (
        health_router,
        ops_router,
        auth_router,
        members_router,
        tags_router,
        audit_router,
        catalog_router,
        orders_router,
        rules_router,
        points_router,
        points_admin_router,
        tiers_router,
        ladder_router,
        checkin_router,
        mall_router,
        mall_suppliers_router,
        mall_images_router,
        coupons_router,
        campaigns_router,
        segments_router,
        segment_tags_router,
        service_router,
        risk_router,
        referral_router,
        recall_router,
        contests_router,
        member_events_router,
        milestones_router,
        messaging_router,
        journeys_router,
        links_router,
        webhooks_router,
        events_router,
        assets_router,
        console_router,
        portal_router,
    ):
        app.include_router(router)

    @app.get("/", include_in_schema=False, dependencies=[Depends(Public())])
    def _home() -> RedirectResponse:
        return RedirectResponse(f"{pages.CONSOLE_PREFIX}/", status_code=307)

    if settings.bench_endpoints:
        from patron.web.bench import router as bench_router

        app.include_router(bench_router)

    openapi.install(app)
    from patron.campaigns.contests_api import API_ENTRY_UPLOAD
    from patron.mall.api_images import API_UPLOAD
    from patron.web.console.mall import IMAGE_UPLOAD
    from patron.web.portal.contests import ENTRY_UPLOAD

    # a gift image may be larger than the 1 MB other requests are held to (plus the form's own)
    image_cap = settings.mall_image_max_bytes + 64 * 1024
    uploads = (
        (IMAGE_UPLOAD, image_cap),
        (API_UPLOAD, image_cap),
        (API_ENTRY_UPLOAD, image_cap),
        (ENTRY_UPLOAD, image_cap),
    )
    app.add_middleware(RequestContextMiddleware, uploads=uploads)
    app.add_middleware(MetricsMiddleware)  # outside the request context: sees its 413/422/500
    # Outermost, so the middleware's own 413/422/500 answers carry the headers too.
    app.add_middleware(SecurityHeadersMiddleware, hsts=settings.hsts_enabled)
    return app
