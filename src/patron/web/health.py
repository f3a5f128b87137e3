"""Liveness and readiness: ``GET /health`` checks that the database answers."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from patron import __version__
from patron.web.deps import public

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    summary="Health: the process runs and the database answers",
    dependencies=[Depends(public())],
)
def health(request: Request) -> JSONResponse:
    try:
        with request.app.state.db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception:
        return JSONResponse(
            {"status": "unavailable", "database": "unreachable", "version": __version__},
            status_code=503,
        )
    return JSONResponse(
        {"status": "ok", "database": request.app.state.db.dialect, "version": __version__}
    )
