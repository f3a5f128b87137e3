"""Keyset ("seek") pagination for long walks through a sorted list, such as an export.

An OFFSET makes the database read and throw away every row before the page, so walking a table
of N rows in pages costs N²/2 row reads; a seek starts each page right after the last row of
the one before, through the same index the sort uses. The sort is a column and the row id as
a tie-breaker, in one direction. Where NULLs go is made explicit (last going up, first going
down: PostgreSQL's default, so its indexes still serve the sort; SQLite is told the same), so
that a nullable column pages identically on both engines.

A nullable column is walked in two groups, its values and its NULLs, each with a condition an
index can start from (``name >= :last AND (name > :last OR id > :id)``): one condition for
both groups would need an OR with ``IS NULL``, which no index range serves, and every page
would scan from the top again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_, true
from sqlalchemy.sql.elements import ColumnElement


@dataclass(frozen=True)
class Seek:
    """Where a walk stands: in the NULL group or the values, after ``last`` = (key value, id),
    or at the group's start when ``last`` is None."""

    nulls: bool
    last: tuple[Any, int] | None = None


@dataclass(frozen=True)
class Keyset:
    """The sort ``key`` then ``id_col``, descending or not (``key`` may be ``id_col``)."""

    key: Any
    id_col: Any
    descending: bool

    @property
    def _nullable(self) -> bool:
        if self.key is self.id_col:
            return False
        column = getattr(self.key, "expression", self.key)
        return bool(getattr(column, "nullable", True))

    def order_by(self) -> tuple[Any, ...]:
        if self.key is self.id_col:
            return (self.id_col.desc(),) if self.descending else (self.id_col.asc(),)
        if self.descending:
            return (self.key.desc().nulls_first(), self.id_col.desc())
        return (self.key.asc().nulls_last(), self.id_col.asc())

    def first(self) -> Seek:
        """The start of the walk: the NULLs come first going down."""
        return Seek(nulls=self.descending and self._nullable)

    def where(self, seek: Seek) -> ColumnElement[bool]:
        """The rows of ``seek``'s group that come after its ``last``."""
        key, id_col, down = self.key, self.id_col, self.descending
        if seek.last is None:  # a group's start
            start: ColumnElement[bool] = true()
            if key is not id_col:
                start = key.is_(None) if seek.nulls else key.is_not(None)
            return start
        value, last_id = seek.last
        past_id: ColumnElement[bool] = id_col < last_id if down else id_col > last_id
        if key is id_col:
            return past_id
        if seek.nulls:
            return and_(key.is_(None), past_id)
        # the bound first: an index on the key starts there
        if down:
            return and_(key <= value, or_(key < value, past_id))
        return and_(key >= value, or_(key > value, past_id))

    def position(self, row: Any) -> tuple[Any, int]:
        """Where ``row`` (an object or result row with the key's and the id's attributes)
        stands in the order."""
        return getattr(row, self.key.key), getattr(row, self.id_col.key)

    def next(self, seek: Seek, rows: Sequence[Any], limit: int) -> Seek | None:
        """Where the walk goes after the page ``rows`` (read with ``where(seek)`` and at most
        ``limit`` rows); None: the walk is done."""
        if rows and len(rows) >= limit:
            return Seek(seek.nulls, self.position(rows[-1]))
        first_group_nulls = self.descending
        if self._nullable and seek.nulls == first_group_nulls:
            return Seek(nulls=not seek.nulls)  # the first group is done: the second
        return None
