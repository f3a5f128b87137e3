"""A baseline endpoint for the `earn` benchmark: one INSERT and one COMMIT per request.

Mounted only when PATRON_BENCH_ENDPOINTS=1, so throughput of the real order endpoint can be
compared with the cheapest possible write on the same server, process and database.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from patron.web.deps import public

router = APIRouter(tags=["bench"], include_in_schema=False)

CREATE = (
    "CREATE TABLE IF NOT EXISTS bench_rows (id BIGSERIAL PRIMARY KEY, body TEXT NOT NULL, "
    "created_at TIMESTAMPTZ NOT NULL DEFAULT now())"
)


@router.post("/bench/bare", dependencies=[Depends(public())])
def bare(request: Request) -> JSONResponse:
    with request.app.state.db.engine.begin() as conn:
        conn.execute(text("INSERT INTO bench_rows (body) VALUES (:b)"), {"b": "x"})
    return JSONResponse({"ok": True}, status_code=201)
