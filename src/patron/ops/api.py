"""``GET /metrics`` (Prometheus), ``GET /health/live`` and ``GET /health/ready``."""

from __future__ import annotations

from functools import lru_cache

from alembic.script import ScriptDirectory
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from patron import __version__
from patron.errors import Forbidden, NotFound
from patron.ops import metrics
from patron.web.deps import public

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    include_in_schema=False,
    dependencies=[Depends(public())],  # guarded below: token or private network
)
def prometheus_metrics(request: Request) -> Response:
    settings = request.app.state.settings
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    client = request.client.host if request.client else None
    if not settings.metrics_enabled:
        raise NotFound("metrics_disabled", "Metrics are switched off (PATRON_METRICS_ENABLED).")
    if not metrics.scrape_allowed(client, request.headers.get("authorization"), token):
        raise Forbidden(
            "metrics_forbidden",
            "Metrics are served to private networks only, or to a scraper sending "
            "PATRON_METRICS_TOKEN as a bearer token.",
        )
    body, content_type = metrics.render(request.app.state.metrics_registry)
    return Response(body, media_type=content_type)


@router.get(
    "/health/live",
    summary="Liveness: the process answers (restart it if not)",
    dependencies=[Depends(public())],
)
def live() -> JSONResponse:
    return JSONResponse({"status": "ok", "version": __version__})


@router.get(
    "/health/ready",
    summary="Readiness: the database answers and its schema matches this release",
    dependencies=[Depends(public())],
)
def ready(request: Request) -> JSONResponse:
    from alembic.runtime.migration import MigrationContext

    db = request.app.state.db
    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            current = set(MigrationContext.configure(conn).get_current_heads())
    except Exception:
        return JSONResponse(
            {"status": "unavailable", "database": "unreachable", "version": __version__},
            status_code=503,
        )
    if _schema_behind(current):
        return JSONResponse(
            {"status": "unavailable", "database": "schema_mismatch", "version": __version__},
            status_code=503,
        )
    return JSONResponse({"status": "ok", "database": db.dialect, "version": __version__})


def _schema_behind(current: set[str]) -> bool:
    """The schema lacks a migration this release needs. A schema *ahead* of this release (a
    newer release migrated first, during a rolling upgrade) is fine: migrations only expand
    while old servers still run (docs/operations.md)."""
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    script = _script()
    if not current:
        return True
    heads = set(script.get_heads())
    for rev in current:
        if rev in heads:
            continue
        try:
            script.get_revision(rev)
        except (CommandError, RevisionError, KeyError):
            continue  # unknown here: written by a newer release
        return True  # known but older than our head
    return False


@lru_cache(maxsize=1)
def _script() -> ScriptDirectory:
    from patron.migrate import alembic_config

    return ScriptDirectory.from_config(alembic_config("sqlite://"))
