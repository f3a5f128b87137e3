"""Webhook endpoints and their delivery log (admins)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from patron.auth import permissions as perm
from patron.auth.principal import Principal
from patron.kit.crypto import FieldCipher
from patron.web.deps import ClockDep, SessionDep, require
from patron.web.routing import api_router
from patron.webhooks import service
from patron.webhooks.models import WebhookEndpoint

router = api_router("/api/v1/webhooks", tags=["webhooks"])
Admin = Annotated[Principal, Depends(require(perm.STAFF_ADMIN))]
IdPath = Annotated[int, Path(ge=1, le=2_147_483_647)]


class EndpointIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://erp.example.com/patron/events",
                    "events": ["order.recorded", "tier.changed"],
                    "description": "ERP",
                }
            ]
        },
    )
    url: Annotated[str, StringConstraints(min_length=8, max_length=500)]
    events: list[Annotated[str, StringConstraints(max_length=48)]] = Field(max_length=20)
    description: Annotated[str, StringConstraints(max_length=200)] = ""


class EndpointOut(BaseModel):
    id: int
    url: str
    description: str
    events: list[str]
    is_active: bool
    created_at: datetime


class EndpointCreated(EndpointOut):
    secret: str = Field(description="Signing secret, shown once: verify X-Patron-Signature")


class DeliveryOut(BaseModel):
    id: int
    event_id: int
    event_type: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    next_attempt_at: datetime
    payload: dict[str, Any]


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    total: int
    limit: int
    offset: int


def _out(ep: WebhookEndpoint) -> EndpointOut:
    return EndpointOut(
        id=ep.id,
        url=ep.url,
        description=ep.description,
        events=list(ep.events),
        is_active=ep.is_active,
        created_at=ep.created_at,
    )


@router.get("", summary="List webhook endpoints")
def list_endpoints(principal: Admin, session: SessionDep) -> list[EndpointOut]:
    return [_out(ep) for ep in service.list_endpoints(session)]


@router.post("", status_code=status.HTTP_201_CREATED, summary="Subscribe an endpoint to events")
def create_endpoint(
    body: EndpointIn, request: Request, principal: Admin, session: SessionDep, clock: ClockDep
) -> EndpointCreated:
    cipher: FieldCipher = request.app.state.cipher
    created = service.create_endpoint(
        session,
        principal,
        cipher,
        url=body.url,
        events=list(body.events),
        description=body.description,
        now=clock.now(),
    )
    return EndpointCreated(**_out(created.endpoint).model_dump(), secret=created.secret)


@router.delete("/{endpoint_id}", summary="Stop deliveries to an endpoint")
def deactivate(
    endpoint_id: IdPath, principal: Admin, session: SessionDep, clock: ClockDep
) -> EndpointOut:
    return _out(service.deactivate_endpoint(session, principal, endpoint_id, clock.now()))


@router.get("/{endpoint_id}/deliveries", summary="The delivery log of an endpoint")
def delivery_log(
    endpoint_id: IdPath,
    principal: Admin,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> DeliveryPage:
    rows, total = service.deliveries(session, endpoint_id, limit=limit, offset=offset)
    return DeliveryPage(
        items=[
            DeliveryOut(
                id=d.id,
                event_id=e.id,
                event_type=e.event_type,
                status=d.status,
                attempts=d.attempts,
                last_status_code=d.last_status_code,
                last_error=d.last_error,
                last_attempt_at=d.last_attempt_at,
                delivered_at=d.delivered_at,
                next_attempt_at=d.next_attempt_at,
                payload=e.payload,
            )
            for d, e in rows
        ],
        total=total,
        limit=limit,
        offset=offset,
    )
