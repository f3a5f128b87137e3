"""The OpenAPI document describes what the server sends, errors included.

FastAPI documents a 422 as its own ``{"detail": [...]}`` and nothing else; Patron answers every
error with the envelope of ``app.py``. Here each API operation gets the error statuses it can
answer, all with the ``ErrorEnvelope`` schema:

- from what the route is: authenticated (401, 403), takes input (422), takes a body (413),
  writes (409: an ``Idempotency-Key`` reused with another request), addresses an object by
  its path (404);
- plus what the route declares next to itself with ``responses=errors(404, 409)`` — for
  errors that follow from the body (e.g. an order's ``member_no`` that does not exist).

``tests/test_schemathesis.py`` checks every response the fuzzer gets against this document.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.routing import BaseRoute

from patron.web.deps import WRITE_METHODS, Require

ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "The body is not valid JSON",
    401: "Not signed in: no valid bearer token or API key",
    403: "Signed in without the permission this operation needs",
    404: "The addressed object (or one the body names) does not exist",
    409: "Conflicts with what is recorded (e.g. an Idempotency-Key reused with another request)",
    413: "The request body is larger than 1 MB",
    422: "The request is invalid; nothing was written",
    429: "Too many requests; try again later",
}
CATALOGUE_HINT = " (codes: the error catalogue in docs/api.md)"


class ErrorBody(BaseModel):
    code: str = Field(description="stable error code; see the error catalogue in docs/api.md")
    message: str = Field(description="what went wrong and what to do, for a person")
    details: dict[str, Any] = Field(description="e.g. the field, or the figures that disagree")
    request_id: str | None = Field(description="quote it when reporting a problem")


class ErrorEnvelope(BaseModel):
    """Every error Patron answers: ``{"error": {"code", "message", "details", "request_id"}}``."""

    error: ErrorBody


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: error statuses it answers beyond those its shape implies."""
    return {s: {"model": ErrorEnvelope, "description": ERROR_DESCRIPTIONS[s]} for s in statuses}


def _routes(routes: list[BaseRoute]) -> Iterator[APIRoute]:
    for r in routes:
        if isinstance(r, APIRoute):
            yield r
        elif hasattr(r, "original_router"):  # an included router, kept as a unit
            yield from _routes(r.original_router.routes)


def _requires_auth(route: APIRoute) -> bool:
    stack = [route.dependant]
    while stack:
        d = stack.pop()
        if isinstance(d.call, Require):
            return True
        stack.extend(d.dependencies)
    return False


def implied_statuses(route: APIRoute, method: str) -> set[int]:
    """The error statuses an operation can answer because of what it is."""
    dependant = route.dependant
    statuses: set[int] = set()
    if _requires_auth(route):
        statuses |= {401, 403}
    params = [
        *dependant.path_params,
        *dependant.query_params,
        *dependant.header_params,
        *dependant.body_params,
    ]
    if params or route.body_field is not None:
        statuses.add(422)
    if route.body_field is not None:
        statuses |= {400, 413}  # not JSON, or too large
    if method in WRITE_METHODS:
        statuses |= {409, 422}  # Idempotency-Key reused, or not a valid key
    if dependant.path_params:
        statuses.add(404)
    return statuses


def _envelope_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}},
    }


def build(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version=app.openapi_version,
        description=app.description,
        routes=app.routes,
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["ErrorBody"] = ErrorBody.model_json_schema()
    components["ErrorEnvelope"] = {
        **ErrorEnvelope.model_json_schema(ref_template="#/components/schemas/{model}"),
    }
    components["ErrorEnvelope"].pop("$defs", None)
    for route in _routes(app.routes):
        if not route.include_in_schema or route.path_format not in schema["paths"]:
            continue
        for method in route.methods or ():
            op = schema["paths"][route.path_format].get(method.lower())
            if op is None:
                continue
            responses = op.setdefault("responses", {})
            declared = {int(s) for s in responses if s.isdigit() and int(s) >= 400}
            for status in sorted(declared | implied_statuses(route, method)):
                given = responses.get(str(status), {}).get("description")
                base = ERROR_DESCRIPTIONS.get(status, "Error")
                description = given if given and given != "Validation Error" else base
                responses[str(status)] = _envelope_response(description + CATALOGUE_HINT)
    # FastAPI's own 422 shapes are no longer referenced by any operation.
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema


def install(app: FastAPI) -> None:
    """Serve the document from :func:`build` (computed once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
