"""Keyset ("seek") pagination for long walks through a sorted list, such as an export.

An OFFSET makes the database read and throw away every row before the page, so walking a table
of N rows in pages costs N²/2 row reads; a seek starts each page right after the last row of
the one before, through the same index the sort uses. The sort is a column and the row id as
a tie-breaker, in one direction. Where NULLs go is made explicit (last going up, first going
down: PostgreSQL's default, so its indexes still serve the sort; SQLite is told the same), so
that a nullable column pages identically on both engines.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, or_
from sqlalchemy.sql.elements import ColumnElement


def order_by(key: Any, id_col: Any, descending: bool) -> tuple[Any, ...]:
    """The ORDER BY for ``key`` then ``id_col``; ``id_col`` alone when it is the key."""
    if key is id_col:
        return (id_col.desc(),) if descending else (id_col.asc(),)
    if descending:
        return (key.desc().nulls_first(), id_col.desc())
    return (key.asc().nulls_last(), id_col.asc())


def after(key: Any, id_col: Any, descending: bool, last: tuple[Any, int]) -> ColumnElement[bool]:
    """Rows that come after ``last`` = (its key value, its id) in ``order_by``'s order."""
    value, last_id = last
    if key is id_col:
        past: ColumnElement[bool] = id_col < last_id if descending else id_col > last_id
        return past
    if descending:  # NULLs first, then the values from the highest down
        if value is None:
            return or_(and_(key.is_(None), id_col < last_id), key.is_not(None))
        return or_(key < value, and_(key == value, id_col < last_id))
    # going up: the values from the lowest, then NULLs
    if value is None:
        return and_(key.is_(None), id_col > last_id)
    return or_(key > value, and_(key == value, id_col > last_id), key.is_(None))
