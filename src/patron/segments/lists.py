"""Static lists: a fixed set of members imported from a file of member numbers or phones (one
a line, in the first column; a header line is skipped). An import replaces the list's members.
Flushes, never commits."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from patron.audit import service as audit
from patron.auth.principal import Principal
from patron.errors import Invalid, NotFound
from patron.kit.crypto import FieldCipher
from patron.members import service as members
from patron.segments.models import StaticList, StaticListMember

MAX_ENTRIES: Final = 100_000
#: unknown entries echoed back (the count is always given)
SHOWN_UNKNOWN: Final = 100


@dataclass(frozen=True, slots=True)
class Imported:
    code: str
    name: str
    members: int
    unknown: list[str]
    unknown_count: int


def parse_entries(text: str) -> list[str]:
    """The first column of each non-empty line, without a header line."""
    out: list[str] = []
    for i, row in enumerate(csv.reader(io.StringIO(text.lstrip("\ufeff")))):
        value = row[0].strip() if row else ""
        if not value or (i == 0 and not any(ch.isdigit() for ch in value)):
            continue  # blank, or a header such as "member_no" / "phone"
        out.append(value)
    if len(out) > MAX_ENTRIES:
        raise Invalid(
            "static_list_too_large",
            f"A list holds at most {MAX_ENTRIES:,} members; split the file.",
            details={"entries": len(out)},
        )
    return list(dict.fromkeys(out))


def import_list(
    session: Session,
    cipher: FieldCipher,
    actor: Principal,
    *,
    code: str,
    name: str,
    entries: list[str],
    now: datetime,
) -> Imported:
    if not entries:
        raise Invalid(
            "static_list_empty",
            "The file holds no member number or phone; put one a line in the first column.",
        )
    values = set(entries)
    by_phone, by_no, _invalid = members.find_many(session, cipher, phones=values, numbers=values)
    ids: dict[int, None] = {}
    unknown: list[str] = []
    for v in entries:
        m = by_no.get(v) or by_phone.get(v)
        if m is None:
            unknown.append(v)
        else:
            ids[m.id] = None
    lst = session.scalar(select(StaticList).where(StaticList.code == code).with_for_update())
    before = None
    if lst is None:
        lst = StaticList(
            code=code, name=name, created_by=actor.label, created_at=now, updated_at=now
        )
        session.add(lst)
        session.flush()
    else:
        before = {"name": lst.name, "members": count(session, lst.id)}
        lst.name, lst.updated_at = name, now
        session.execute(delete(StaticListMember).where(StaticListMember.list_id == lst.id))
    if ids:
        session.execute(
            insert(StaticListMember), [{"list_id": lst.id, "member_id": i} for i in ids]
        )
    session.flush()
    audit.record(
        session,
        actor,
        "static_list.import",
        "static_list",
        code,
        before,
        {"name": name, "members": len(ids), "unknown": len(unknown)},
        at=now,
    )
    return Imported(code, name, len(ids), unknown[:SHOWN_UNKNOWN], len(unknown))


def count(session: Session, list_id: int) -> int:
    return session.scalar(select(func.count()).where(StaticListMember.list_id == list_id)) or 0


def list_lists(session: Session) -> list[tuple[StaticList, int]]:
    n = (
        select(StaticListMember.list_id, func.count().label("n"))
        .group_by(StaticListMember.list_id)
        .subquery()
    )
    rows = session.execute(
        select(StaticList, func.coalesce(n.c.n, 0))
        .outerjoin(n, n.c.list_id == StaticList.id)
        .order_by(StaticList.code)
    )
    return [(lst, int(k)) for lst, k in rows]


def get(session: Session, code: str) -> StaticList:
    lst = session.scalar(select(StaticList).where(StaticList.code == code))
    if lst is None:
        raise NotFound("static_list_not_found", f"No static list with code {code}.")
    return lst
