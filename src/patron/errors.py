"""One error type with a stable ``code``; every 4xx leaves the API in the same JSON shape:

{"error": {"code": "member_not_found", "message": "...", "details": {...}, "request_id": "..."}}
"""

from __future__ import annotations

from typing import Any


class PatronError(Exception):
    status: int = 400

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        if status is not None:
            self.status = status
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class NotFound(PatronError):
    status = 404


class Conflict(PatronError):
    status = 409


class Invalid(PatronError):
    status = 422


class Unauthorized(PatronError):
    status = 401


class Forbidden(PatronError):
    status = 403


class TooManyRequests(PatronError):
    status = 429
