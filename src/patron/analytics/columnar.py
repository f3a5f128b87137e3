"""NumPy arrays in and out of PostgreSQL with binary COPY (docs/analytics.md, "Speed").

Reading: the database packs bigint columns into a few byte strings (``int8send`` and
``string_agg``), which NumPy reads in one step (no Python object per row or value). Writing:
the binary COPY stream of a whole table is assembled by NumPy from per-column arrays (NULLs and
short texts included) and sent in chunks. On SQLite the callers
fall back to ordinary statements.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import ColumnElement, LargeBinary, Select, func, literal, select
from sqlalchemy.engine import Connection

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
#: Days from 1970-01-01 (NumPy's epoch) to 2000-01-01 (PostgreSQL's).
PG_EPOCH_DAYS = 10957
CHUNK_ROWS = 200_000


def is_postgres(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def read_bigints(
    conn: Connection, query: Select[*tuple[Any, ...]], columns: int, *, chunks: int = 16
) -> NDArray[np.int64]:
    """Rows × ``columns`` int64 matrix of a query whose columns are all bigint and never NULL
    (cast and COALESCE them in the query). The database packs the rows into a few byte
    strings (``int8send``, ``string_agg`` over ``chunks`` groups of the first column), which
    NumPy reads as big-endian integers: no Python object per row or value."""
    inner = query.subquery("q")
    cols = list(inner.c)
    packed: ColumnElement[Any] = func.int8send(cols[0])
    for c in cols[1:]:
        packed = packed.concat(func.int8send(c))
    stmt = select(func.string_agg(packed, literal(b"", LargeBinary))).group_by(cols[0] % chunks)
    parts = [bytes(b) for (b,) in conn.execute(stmt) if b is not None]
    data = b"".join(parts)
    if len(data) % (8 * columns):
        raise ValueError("the packed rows do not divide into the columns")
    return np.frombuffer(data, dtype=">i8").astype(np.int64).reshape(-1, columns)


def sum_by_pairs(
    first: NDArray[np.int64], second: NDArray[np.int64], values: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """One row per distinct (first, second) pair, sorted by both, with the sum of its
    ``values`` (a GROUP BY done by one sort)."""
    if not first.size:
        return first.copy(), second.copy(), values.copy()
    low, high = int(second.min()), int(second.max())
    if low >= 0 and high < 1 << 20 and int(first.min()) >= 0 and int(first.max()) < 1 << 42:
        order = np.argsort((first << 20) | second, kind="stable")  # one key: a single sort
    else:
        order = np.lexsort((second, first))
    a, b, v = first[order], second[order], values[order]
    starts = np.flatnonzero(np.r_[True, (a[1:] != a[:-1]) | (b[1:] != b[:-1])])
    return a[starts], b[starts], np.add.reduceat(v, starts)


@dataclass(frozen=True)
class Column:
    """One column to write: ``kind`` is ``int4``, ``int8``, ``float8``, ``date`` (values are
    day numbers since 1970-01-01) or ``text``; ``null`` marks the NULL rows (None: none)."""

    name: str
    kind: str
    values: Any
    null: NDArray[np.bool_] | None = None


_FIXED = {"int4": ">i4", "int8": ">i8", "float8": ">f8", "date": ">i4"}


def _block(col: Column, lo: int, hi: int) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    """The bytes of one field for rows lo..hi (rows × width) and how many of them each row
    keeps (a NULL keeps only its length word, −1)."""
    n = hi - lo
    null = None if col.null is None else col.null[lo:hi]
    if col.kind == "text":
        uniq, inverse = np.unique(np.asarray(col.values[lo:hi], dtype=object), return_inverse=True)
        encoded = [str(u).encode() for u in uniq]
        width = max((len(e) for e in encoded), default=0)
        table = np.zeros((len(encoded), 4 + width), dtype=np.uint8)
        for i, e in enumerate(encoded):
            table[i, :4] = np.frombuffer(np.array(len(e), dtype=">i4").tobytes(), dtype=np.uint8)
            table[i, 4 : 4 + len(e)] = np.frombuffer(e, dtype=np.uint8)
        lengths = np.array([4 + len(e) for e in encoded], dtype=np.int64)
        out, keep = table[inverse.reshape(-1)], lengths[inverse.reshape(-1)]
        if null is not None:
            out[null, :4] = 255  # −1
            keep = np.where(null, 4, keep)
        return out, keep
    code = _FIXED[col.kind]
    size = np.dtype(code).itemsize
    values = np.asarray(col.values[lo:hi])
    if col.kind == "date":
        values = values - PG_EPOCH_DAYS
    rec = np.empty(n, dtype=[("len", ">i4"), ("v", code)])
    rec["len"] = size
    if null is not None:
        values = np.where(null, 0, values)
        rec["len"] = np.where(null, -1, size)
    rec["v"] = values
    keep = np.full(n, 4 + size, dtype=np.int64)
    if null is not None:
        keep[null] = 4
    return rec.view(np.uint8).reshape(n, 4 + size), keep


def copy_in(conn: Connection, table: str, columns: list[Column]) -> int:
    """Append the rows to ``table`` with one binary COPY; returns the row count."""
    n = len(columns[0].values) if columns else 0
    names = ", ".join(c.name for c in columns)
    raw = conn.connection.dbapi_connection
    assert raw is not None
    header = np.array(len(columns), dtype=">i2").tobytes()
    cursor: Any = raw.cursor()
    with cursor as cur, cur.copy(f"COPY {table} ({names}) FROM STDIN (FORMAT binary)") as cp:
        cp.write(SIGNATURE)
        for lo in range(0, n, CHUNK_ROWS):
            hi = min(lo + CHUNK_ROWS, n)
            count = np.tile(np.frombuffer(header, np.uint8), (hi - lo, 1))
            blocks = [(count, np.full(hi - lo, 2, dtype=np.int64))]
            blocks += [_block(c, lo, hi) for c in columns]
            matrix = np.hstack([b for b, _ in blocks])
            mask = np.hstack([np.arange(b.shape[1])[None, :] < k[:, None] for b, k in blocks])
            cp.write(matrix[mask].tobytes())
        cp.write(TRAILER)
    return n


def day_numbers(value: date) -> int:
    return int(np.datetime64(value, "D").astype(np.int64))
