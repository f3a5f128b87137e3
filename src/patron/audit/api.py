"""Read the audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Query
from pydantic import BaseModel

from patron.audit import service
from patron.auth import permissions as perm
from patron.auth.principal import Principal
from patron.kit.timeutil import BoundedDateTime
from patron.web.deps import SessionDep, require
from patron.web.routing import api_router

router = api_router("/api/v1/audit", tags=["admin"])


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor_type: str
    actor_id: int | None
    actor_label: str
    action: str
    entity_type: str
    entity_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    request_id: str | None


class AuditPage(BaseModel):
    items: list[AuditOut]
    total: int
    limit: int
    offset: int


@router.get("", summary="Search the audit trail")
def search_audit(
    principal: Annotated[Principal, Depends(require(perm.AUDIT_READ))],
    session: SessionDep,
    entity_type: Annotated[str | None, Query(max_length=32)] = None,
    entity_id: Annotated[str | None, Query(max_length=64)] = None,
    actor_type: Annotated[str | None, Query(max_length=16)] = None,
    actor_id: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    since: BoundedDateTime | None = None,
    until: BoundedDateTime | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> AuditPage:
    rows, total = service.search(
        session,
        entity_type=entity_type,
        entity_id=entity_id,
        actor_type=actor_type,
        actor_id=actor_id,
        action=action,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    return AuditPage(
        items=[AuditOut.model_validate(r, from_attributes=True) for r in rows],
        total=total,
        limit=limit,
        offset=offset,
    )
