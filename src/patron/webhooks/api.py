"""Webhook endpoints and their delivery log (admins)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from patron.auth import permissions as perm
from patron.auth.principal import Principal
from patron.errors import Invalid
from patron.kit.crypto import FieldCipher
from patron.web.deps import ClockDep, SessionDep, require
from patron.web.routing import api_router
from patron.webhooks import events, service
from patron.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent

router = api_router("/api/v1/webhooks", tags=["webhooks"])
events_router = api_router("/api/v1/events", tags=["webhooks"])
Admin = Annotated[Principal, Depends(require(perm.STAFF_ADMIN))]
EventReader = Annotated[Principal, Depends(require(perm.EVENTS_READ))]
IdPath = Annotated[int, Path(ge=1, le=2_147_483_647)]
BigIdPath = Annotated[int, Path(ge=1, le=9_223_372_036_854_775_807)]


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
    # every event type fits (37 today), so one endpoint can take them all
    events: list[Annotated[str, StringConstraints(max_length=48)]] = Field(max_length=100)
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
    last_error: str | None = Field(
        description="Error class of the last attempt (http_status, redirect, timeout, "
        "connect_error, transport_error, unresolvable, refused_destination, endpoint_inactive); "
        "the receiver's reply is never stored"
    )
    last_duration_ms: int | None
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
        allowed=request.app.state.settings.webhook_allowed_networks,
    )
    return EndpointCreated(**_out(created.endpoint).model_dump(), secret=created.secret)


@router.delete("/{endpoint_id}", summary="Stop deliveries to an endpoint")
def deactivate(
    endpoint_id: IdPath, principal: Admin, session: SessionDep, clock: ClockDep
) -> EndpointOut:
    return _out(service.deactivate_endpoint(session, principal, endpoint_id, clock.now()))


def _delivery(d: WebhookDelivery, e: WebhookEvent) -> DeliveryOut:
    return DeliveryOut(
        id=d.id,
        event_id=e.id,
        event_type=e.event_type,
        status=d.status,
        attempts=d.attempts,
        last_status_code=d.last_status_code,
        last_error=d.last_error,
        last_duration_ms=d.last_duration_ms,
        last_attempt_at=d.last_attempt_at,
        delivered_at=d.delivered_at,
        next_attempt_at=d.next_attempt_at,
        payload=events.document(e)["data"],
    )


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
        items=[_delivery(d, e) for d, e in rows], total=total, limit=limit, offset=offset
    )


@router.post(
    "/deliveries/{delivery_id}/resend",
    summary="Send one delivery again (now, with a fresh set of retries)",
)
def resend_delivery(
    delivery_id: BigIdPath, principal: Admin, session: SessionDep, clock: ClockDep
) -> DeliveryOut:
    return _delivery(*service.resend(session, principal, delivery_id, clock.now()))


# ---- the event log ---------------------------------------------------------------------------


class EventOut(BaseModel):
    id: int = Field(description="Increasing; also the cursor")
    type: str
    created_at: datetime
    data: dict[str, Any]


class EventPage(BaseModel):
    items: list[EventOut]
    next_cursor: str | None = Field(
        description="Pass as `after` for the next page; null when this page was the last one "
        "for now (keep the last id and ask again later)"
    )


EventType = Annotated[str, StringConstraints(max_length=48)]


@events_router.get("", summary="The event log, oldest first, to recover missed webhooks")
def list_events(
    principal: EventReader,
    session: SessionDep,
    after: Annotated[
        int, Query(ge=0, le=9_223_372_036_854_775_807, description="Cursor: the last id seen")
    ] = 0,
    type_: Annotated[
        list[EventType] | None, Query(alias="type", max_length=100, description="Event types")
    ] = None,
    member_no: Annotated[str | None, Query(min_length=1, max_length=16)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> EventPage:
    types = list(type_ or [])
    unknown = sorted(set(types) - set(events.EVENT_TYPES))
    if unknown:
        raise Invalid(
            "unknown_event",
            f"Filter by one or more of: {', '.join(events.EVENT_TYPES)}.",
            details={"unknown": unknown},
        )
    rows = events.page(session, after=after, limit=limit, types=types, member_no=member_no)
    return EventPage(
        items=[EventOut(**events.document(e)) for e in rows],
        next_cursor=str(rows[-1].id) if len(rows) == limit else None,
    )
