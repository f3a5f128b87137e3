"""Baseline endpoints for the benchmarks: one INSERT and one COMMIT per request (`earn`), and
one guarded UPDATE and one COMMIT (`flash`: the cheapest possible "take a unit if any is left").

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
CREATE_GUARDED = (
    "CREATE TABLE IF NOT EXISTS bench_units (id INTEGER PRIMARY KEY, quantity INTEGER NOT NULL, "
    "granted INTEGER NOT NULL DEFAULT 0)"
)


@router.post("/bench/bare", dependencies=[Depends(public())])
def bare(request: Request) -> JSONResponse:
    with request.app.state.db.engine.begin() as conn:
        conn.execute(text("INSERT INTO bench_rows (body) VALUES (:b)"), {"b": "x"})
    return JSONResponse({"ok": True}, status_code=201)


@router.post("/bench/guarded", dependencies=[Depends(public())])
def guarded(request: Request) -> JSONResponse:
    """Take one unit of row 1 of ``bench_units`` if any is left (201), else 409."""
    with request.app.state.db.engine.begin() as conn:
        taken = conn.execute(
            text("UPDATE bench_units SET granted = granted + 1 WHERE id = 1 AND granted < quantity")
        ).rowcount
    return JSONResponse({"ok": bool(taken)}, status_code=201 if taken else 409)
