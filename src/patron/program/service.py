"""Read and write settings sections. A section that was never saved reads as the seed defaults
of its model, so every number from the retail plans is a default, never a hard-coded rule."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from patron.audit import service as audit
from patron.auth.principal import Principal
from patron.program.models import ProgramSetting

T = TypeVar("T", bound=BaseModel)


_CACHE = "patron.program.sections"


def get_section(session: Session, key: str, model: type[T]) -> T:
    """A section as of this unit of work (cached for it: one read and validation per request)."""
    cache: dict[tuple[str, type[BaseModel]], BaseModel] = session.info.setdefault(_CACHE, {})
    hit = cache.get((key, model))
    if hit is not None:
        return hit  # type: ignore[return-value]
    row = session.get(ProgramSetting, key)
    value = _parsed(key, model, None if row is None else row.value)
    cache[(key, model)] = value
    return value


#: sections parsed before, shared by the units of work of this process: a frozen model's fields
#: cannot be reassigned (and no code changes a section's nested values in place: a change is a
#: new section through ``put_section``), and the stored JSON is compared with the JSON it was
#: parsed from, so a saved change is seen at once. Validating every section again cost CPU on
#: every order.
_PARSED: dict[tuple[str, type[BaseModel]], tuple[Any, BaseModel]] = {}


def _parsed(key: str, model: type[T], raw: Any) -> T:
    if not model.model_config.get("frozen"):
        return model() if raw is None else model.model_validate(raw)
    hit = _PARSED.get((key, model))
    if hit is not None and hit[0] == raw:
        return hit[1]  # type: ignore[return-value]
    value = model() if raw is None else model.model_validate(raw)
    _PARSED[(key, model)] = (copy.deepcopy(raw), value)
    return value


# Built once: every request that records an order runs it.
_SECTIONS = select(ProgramSetting.key, ProgramSetting.value).where(
    ProgramSetting.key.in_(bindparam("keys", expanding=True))
)


def preload(session: Session, sections: dict[str, type[BaseModel]]) -> None:
    """Read several sections in one query into this unit of work's cache (a page that needs
    three sections pays one round trip instead of three)."""
    cache: dict[tuple[str, type[BaseModel]], BaseModel] = session.info.setdefault(_CACHE, {})
    wanted = {k: m for k, m in sections.items() if (k, m) not in cache}
    if not wanted:
        return
    rows = session.execute(_SECTIONS, {"keys": sorted(wanted)})
    raw: dict[str, Any] = {row.key: row.value for row in rows}
    for key, model in wanted.items():
        cache[(key, model)] = _parsed(key, model, raw.get(key))


def put_section(
    session: Session,
    principal: Principal,
    key: str,
    value: BaseModel,
    *,
    now: datetime,
) -> None:
    data = value.model_dump(mode="json")
    session.info.pop(_CACHE, None)
    row = session.get(ProgramSetting, key, with_for_update=True)
    before = row.value if row is not None else None
    if row is None:
        row = ProgramSetting(
            key=key, value=data, version=1, updated_at=now, updated_by=principal.label
        )
        session.add(row)
    else:
        if row.value == data:
            return
        row.value = data
        row.version += 1
        row.updated_at = now
        row.updated_by = principal.label[:120]
    session.flush()
    audit.record(session, principal, "settings.update", "settings", key, before, data, at=now)


@dataclass(frozen=True, slots=True)
class SectionInfo:
    """Who saved a section last, when, and its version (1 = first save)."""

    version: int
    updated_at: datetime
    updated_by: str


def section_info(session: Session, key: str, *, lock: bool = False) -> SectionInfo | None:
    """The section's last save, or None if it still holds the defaults. ``lock`` holds the row
    until the transaction ends, so a version check and the save that follows cannot interleave
    with another save."""
    row = (
        session.get(ProgramSetting, key, with_for_update=True, populate_existing=True)
        if lock
        else session.get(ProgramSetting, key)
    )
    if row is None:
        return None
    return SectionInfo(version=row.version, updated_at=row.updated_at, updated_by=row.updated_by)
