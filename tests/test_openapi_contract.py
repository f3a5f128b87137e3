"""The OpenAPI document describes the errors the server really sends."""

from __future__ import annotations

import pytest

ENVELOPE = {"$ref": "#/components/schemas/ErrorEnvelope"}


def _operations(doc):
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            yield f"{method.upper()} {path}", op


def test_every_error_response_is_the_envelope(app):
    doc = app.openapi()
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    envelope = doc["components"]["schemas"]["ErrorEnvelope"]
    assert envelope["required"] == ["error"]
    body = doc["components"]["schemas"]["ErrorBody"]
    assert set(body["required"]) == {"code", "message", "details", "request_id"}
    for label, op in _operations(doc):
        for status, response in op["responses"].items():
            if int(status) >= 400:
                assert response["content"]["application/json"]["schema"] == ENVELOPE, (
                    label,
                    status,
                )


def test_every_schema_has_a_name_of_its_own(app):
    # Two models of one name make FastAPI fall back to module paths ("patron__mall__schemas__…"),
    # which reach integrators' generated clients as class names.
    names = app.openapi()["components"]["schemas"]
    assert [n for n in names if "__" in n] == []


@pytest.mark.parametrize(
    ("operation", "statuses"),
    [
        ("POST /api/v1/orders", {401, 403, 404, 409, 413, 422}),
        ("GET /api/v1/orders/{source}/{external_id}", {401, 403, 404, 422}),
        ("POST /api/v1/orders/{source}/{external_id}/returns", {404, 409, 422}),
        ("POST /api/v1/checkout/quote", {404, 422}),
        ("POST /api/v1/checkout/commit", {404, 409, 422}),
        ("POST /api/v1/members/{member_no}/points/spend", {404, 409, 422}),
        ("POST /api/v1/members/{member_no}/points/spends/{posting_id}/cancel", {404, 409}),
        ("GET /api/v1/members/{member_no}", {401, 403, 404, 422}),
        ("GET /api/v1/members/{member_no}/points", {404}),
        ("GET /api/v1/members/{member_no}/orders", {404}),
        ("GET /api/v1/members", {401, 403, 422}),
    ],
)
def test_operations_document_the_statuses_they_answer(app, operation, statuses):
    method, path = operation.split(" ", 1)
    documented = {int(s) for s in app.openapi()["paths"][path][method.lower()]["responses"]}
    assert statuses <= documented, statuses - documented


def test_a_refusal_looks_as_documented(client, auth_headers):
    """What the schema says a 422 and a 404 are is what the server sends."""
    h = auth_headers("admin")
    bad = client.post("/api/v1/orders", json={"source": "pos"}, headers=h)
    missing = client.get("/api/v1/members/1234567897", headers=h)
    for r, status in ((bad, 422), (missing, 404)):
        assert r.status_code == status, r.text
        assert set(r.json()) == {"error"}
        assert set(r.json()["error"]) == {"code", "message", "details", "request_id"}
