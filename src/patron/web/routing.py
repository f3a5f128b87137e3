"""A route class that gives every API call one transaction and honours Idempotency-Key.

The handler's work is committed once, after it returned successfully (with the idempotent
response stored in the same transaction); any exception rolls everything back.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Coroutine
from typing import Any, Final

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from patron.db import Database, UnitOfWork
from patron.idempotency import service as idempotency
from patron.kit.crypto import FieldCipher
from patron.web.deps import WRITE_METHODS

# A request's transaction holds its pooled connection across several thread hops. If more
# requests ran at once than the pool has connections, every worker thread could block waiting
# for a connection while the requests holding one wait for a thread: a deadlock until the pool
# times out. So API calls and pages beyond this many wait in the event loop, which costs no
# thread (the pool has 30 connections, the thread pool 40 threads).
TRANSACTION_SLOTS: Final = 24


def transaction_slots(app: Any) -> asyncio.Semaphore:
    """The limit on transactions in flight, shared by API calls and pages: one per event loop
    (a server process runs one; an asyncio semaphore must not be shared between loops)."""
    per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] | None
    per_loop = getattr(app.state, "transaction_slots", None)
    if per_loop is None:
        per_loop = app.state.transaction_slots = weakref.WeakKeyDictionary()
    loop = asyncio.get_running_loop()
    slots = per_loop.get(loop)
    if slots is None:
        slots = per_loop[loop] = asyncio.Semaphore(TRANSACTION_SLOTS)
    return slots


class UnitOfWorkRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            async with transaction_slots(request.app):
                return await run_call(request)

        async def run_call(request: Request) -> Response:
            db: Database = request.app.state.db
            if request.method in WRITE_METHODS and idempotency.HEADER in request.headers:
                body = await request.body()
                request.state.request_hash = idempotency.request_hash(
                    request.method, request.url.path, request.url.query, body
                )
            # A new session does no I/O (it connects on first use): no thread hop to begin.
            uow = db.begin()
            request.state.uow = uow
            try:
                response = await original(request)
            except idempotency.Replay as replay:
                await run_in_threadpool(_abandon, uow)
                return Response(
                    content=replay.stored.body,
                    status_code=replay.stored.status_code,
                    media_type=replay.stored.content_type,
                    headers={"Idempotent-Replayed": "true"},
                )
            except BaseException:
                await run_in_threadpool(_abandon, uow)
                raise
            row_id = getattr(request.state, "idempotency_row", None)
            await run_in_threadpool(_finish, uow, request.app.state.cipher, row_id, response)
            return response

        return handler


def _abandon(uow: UnitOfWork) -> None:
    try:
        uow.rollback()
    finally:
        uow.close()


def _finish(uow: UnitOfWork, cipher: FieldCipher, row_id: int | None, response: Response) -> None:
    """Store the idempotent response, commit and close: one thread hop for all three."""
    try:
        if row_id is not None:
            idempotency.store_response(
                uow.session,
                cipher,
                row_id,
                response.status_code,
                bytes(response.body),
                response.headers.get("content-type", "application/json"),
            )
        uow.commit()
    except BaseException:
        uow.rollback()
        raise
    finally:
        uow.close()


def api_router(prefix: str = "", tags: list[str] | None = None) -> APIRouter:
    return APIRouter(prefix=prefix, tags=list(tags or []), route_class=UnitOfWorkRoute)
