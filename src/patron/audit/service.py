"""Write and read the audit trail. Callers pass personal data already masked."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from patron.audit.models import AuditRecord
from patron.auth.principal import Principal
from patron.observability import current_request_id


def record(
    session: Session,
    principal: Principal,
    action: str,
    entity_type: str,
    entity_id: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    *,
    at: datetime,
) -> None:
    """``at`` is the operation's time from the injected clock (never the wall clock)."""
    session.add(
        AuditRecord(
            at=at,
            actor_type=principal.kind,
            actor_id=principal.id,
            actor_label=principal.label[:120],
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            before=_jsonable(before),
            after=_jsonable(after),
            request_id=current_request_id(),
        )
    )


def _jsonable(data: dict[str, Any] | None) -> dict[str, Any] | None:
    if data is None:
        return None
    out: dict[str, Any] = {}
    for k, v in data.items():
        if isinstance(v, datetime) or hasattr(v, "isoformat"):
            out[k] = v.isoformat()
        else:
            out[k] = v
    return out


def search(
    session: Session,
    *,
    entity_type: str | None = None,
    entity_id: str | None = None,
    actor_type: str | None = None,
    actor_id: int | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[AuditRecord], int]:
    conds = []
    if entity_type:
        conds.append(AuditRecord.entity_type == entity_type)
    if entity_id:
        conds.append(AuditRecord.entity_id == entity_id)
    if actor_type:
        conds.append(AuditRecord.actor_type == actor_type)
    if actor_id is not None:
        conds.append(AuditRecord.actor_id == actor_id)
    if action:
        conds.append(AuditRecord.action == action)
    if since:
        conds.append(AuditRecord.at >= since)
    if until:
        conds.append(AuditRecord.at < until)
    total = session.scalar(select(func.count()).select_from(AuditRecord).where(*conds)) or 0
    rows = session.scalars(
        select(AuditRecord)
        .where(*conds)
        .order_by(AuditRecord.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows), total


def for_entities(
    session: Session, keys: list[tuple[str, str]], *, limit: int = 50, offset: int = 0
) -> tuple[list[AuditRecord], int]:
    """Records about any of ``keys`` (entity type, entity id), newest first: one subject that
    was recorded under several keys (a member by number, by row id, and their adjustments)."""
    if not keys:
        return [], 0
    cond = or_(*(and_(AuditRecord.entity_type == t, AuditRecord.entity_id == i) for t, i in keys))
    total = session.scalar(select(func.count()).select_from(AuditRecord).where(cond)) or 0
    rows = session.scalars(
        select(AuditRecord).where(cond).order_by(AuditRecord.id.desc()).limit(limit).offset(offset)
    )
    return list(rows), total
