"""Keyset pagination (SQLite and PostgreSQL): walking a sorted table page by page, each page
seeking past the last row of the one before, gives every row once, in the order of one sorted
read — NULLs last going up and first going down on both engines, ties broken by the id."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, Integer, MetaData, String, Table, delete, insert, select

from patron.kit import keyset

meta = MetaData()
rows_table = Table(
    "keyset_probe",
    meta,
    Column("id", Integer, primary_key=True),
    Column("word", String(8), nullable=True),
    Column("n", Integer, nullable=True),
)

#: lower-case letters sort alike under any collation; None is the NULL the walk must place
values = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c", None]), st.one_of(st.none(), st.integers(-3, 3))),
    max_size=14,
)


def _expected(rows: list[tuple[int, object]], descending: bool) -> list[int]:
    up = sorted(rows, key=lambda r: (r[1] is None, r[1] if r[1] is not None else 0, r[0]))
    ids = [r[0] for r in up]
    return ids[::-1] if descending else ids


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=values,
    column=st.sampled_from(["word", "n", "id"]),
    descending=st.booleans(),
    limit=st.integers(1, 4),
)
def test_a_seek_walk_gives_each_row_once_in_order(database, data, column, descending, limit):
    walk = keyset.Keyset(rows_table.c[column], rows_table.c.id, descending)
    with database.engine.begin() as conn:
        meta.create_all(conn)
        conn.execute(delete(rows_table))
        if data:
            conn.execute(
                insert(rows_table),
                [{"id": i, "word": w, "n": n} for i, (w, n) in enumerate(data, 1)],
            )
        order = walk.order_by()
        whole = [r.id for r in conn.execute(select(rows_table).order_by(*order))]
        walked: list[int] = []
        seek: keyset.Seek | None = walk.first()
        while seek is not None:
            q = select(rows_table).where(walk.where(seek)).order_by(*order).limit(limit)
            page = conn.execute(q).all()
            walked += [r.id for r in page]
            seek = walk.next(seek, page, limit)
        meta.drop_all(conn)
    expected = _expected(
        [
            (i, v[["word", "n"].index(column)] if column != "id" else i)
            for i, v in enumerate(data, 1)
        ],
        descending,
    )
    assert whole == expected
    assert walked == expected
