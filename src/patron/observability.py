"""Structured logs with request ids. Logs never carry personal data: no bodies, no query strings."""

from __future__ import annotations

import logging
import re
import secrets
import sys
import time
from contextvars import ContextVar
from typing import Any

import structlog
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_request_id: ContextVar[str | None] = ContextVar("patron_request_id", default=None)
_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
REQUEST_ID_HEADER = "x-request-id"


def current_request_id() -> str | None:
    return _request_id.get()


def configure_logging(level: str = "INFO", json: bool = True) -> None:
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)


class RequestContextMiddleware:
    """Assigns a request id (or keeps a well-formed incoming one), logs one line per request
    with method, route path, status and duration, and caps request bodies (1 MB; the upload
    paths given, e.g. gift images, have caps of their own)."""

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int = 1_048_576,
        uploads: tuple[tuple[re.Pattern[str], int], ...] = (),
    ) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.uploads = uploads
        self.log = get_logger("patron.http")

    def _cap(self, scope: Scope) -> int:
        path = scope.get("path", "")
        return next((cap for pattern, cap in self.uploads if pattern.match(path)), self.max_body)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = (
            dict(scope.get("headers") or []).get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        )
        rid = incoming if _VALID_ID.match(incoming) else secrets.token_hex(8)
        token = _request_id.set(rid)
        structlog.contextvars.bind_contextvars(request_id=rid)
        start = time.perf_counter()
        status = 500
        declared = dict(scope.get("headers") or []).get(b"content-length")
        cap = self._cap(scope)
        if declared is not None and declared.isdigit() and int(declared) > cap:
            await _too_large(send, rid)
            self.log.info("request", method=scope["method"], path=scope["path"], status=413)
            _request_id.reset(token)
            structlog.contextvars.clear_contextvars()
            return

        if _has_nul(scope):
            await _send_json(send, rid, 422, "invalid_character", NUL_MESSAGE)
            self.log.info("request", method=scope["method"], path=scope["path"], status=422)
            _request_id.reset(token)
            structlog.contextvars.clear_contextvars()
            return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    raise _BodyTooLarge
            return message

        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), rid.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_id)
        except _BodyTooLarge:
            # Read outside a route (e.g. to hash it for Idempotency-Key) and not handled there.
            if not started:
                await _too_large(send, rid)
            status = 413
        except Exception as exc:
            # Anything unhandled: log its type (never its message: it may hold data) and answer
            # with the usual error shape, carrying the request id for support.
            self.log.error("unhandled_error", error_type=type(exc).__name__)
            status = 500
            if not started:
                await _send_json(
                    send,
                    rid,
                    500,
                    "internal_error",
                    "Something went wrong on our side; it was logged.",
                )
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or scope["path"]
            self.log.info(
                "request",
                method=scope["method"],
                path=path,
                status=status,
                ms=round((time.perf_counter() - start) * 1000, 1),
            )
            _request_id.reset(token)
            structlog.contextvars.clear_contextvars()


TOO_LARGE_MESSAGE = "The request body is larger than 1 MB."


class _BodyTooLarge(HTTPException):
    """Raised while a body without Content-Length (chunked) is read past the cap. An HTTP
    exception, because FastAPI turns any other error raised while it parses a body into a
    400; this one reaches the app's handler as the documented 413."""

    def __init__(self) -> None:
        super().__init__(413, TOO_LARGE_MESSAGE)


NUL_MESSAGE = "Text may not contain control characters such as NUL; remove them and try again."


def _has_nul(scope: Scope) -> bool:
    """A NUL character in the address (``%00`` or raw): PostgreSQL cannot compare or store it,
    SQLite can — refused before any route runs, so both databases answer the same 422."""
    query: bytes = scope.get("query_string") or b""
    return "\x00" in str(scope.get("path", "")) or b"%00" in query or b"\x00" in query


async def _too_large(send: Send, rid: str) -> None:
    await _send_json(send, rid, 413, "payload_too_large", TOO_LARGE_MESSAGE)


async def _send_json(send: Send, rid: str, status: int, code: str, message: str) -> None:
    import json

    body = json.dumps(
        {"error": {"code": code, "message": message, "details": {}, "request_id": rid}}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (REQUEST_ID_HEADER.encode(), rid.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
