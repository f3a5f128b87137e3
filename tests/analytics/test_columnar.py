"""Arrays in and out of PostgreSQL: binary COPY written by NumPy, packed bigints read back."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from sqlalchemy import BigInteger, cast, column, select, table, text

from patron.analytics import columnar


def test_copy_in_and_read_back(database):
    with database.unit_of_work() as s:
        conn = s.connection()
        if not columnar.is_postgres(conn):
            pytest.skip("binary COPY is PostgreSQL's")
        conn.execute(
            text("CREATE TEMP TABLE cols (a int, b bigint, c float8, d date, e varchar(32))")
        )
        n = 450_001  # more than two chunks
        a = np.arange(n, dtype=np.int64)
        c = np.where(a % 3 == 0, np.nan, a / 7.0)
        e = np.array(["champions", "at_risk", "新客"], dtype=object)[a % 3]
        columnar.copy_in(
            conn,
            "cols",
            [
                columnar.Column("a", "int4", a),
                columnar.Column("b", "int8", a * 10_000_000_000, a % 5 == 0),
                columnar.Column("c", "float8", np.nan_to_num(c), ~np.isfinite(c)),
                columnar.Column("d", "date", np.full(n, columnar.day_numbers(date(2026, 12, 3)))),
                columnar.Column("e", "text", e),
            ],
        )
        rows = conn.execute(
            text("SELECT * FROM cols WHERE a IN (0, 1, 5, 449999, 450000) ORDER BY a")
        )
        assert [tuple(r) for r in rows] == [
            (0, None, None, date(2026, 12, 3), "champions"),
            (1, 10_000_000_000, pytest.approx(1 / 7), date(2026, 12, 3), "at_risk"),
            (5, None, pytest.approx(5 / 7), date(2026, 12, 3), "新客"),
            (449999, 4_499_990_000_000_000, pytest.approx(449999 / 7), date(2026, 12, 3), "新客"),
            (450000, None, None, date(2026, 12, 3), "champions"),
        ]
        t = table("cols", column("a"), column("b"))
        got = columnar.read_bigints(
            conn, select(cast(t.c.a, BigInteger), cast(t.c.a * 2 - 7, BigInteger)), 2
        )
        assert got.shape == (n, 2)
        order = np.argsort(got[:, 0])
        assert (got[order, 0] == a).all()
        assert (got[order, 1] == 2 * a - 7).all()
        empty = columnar.read_bigints(conn, select(cast(t.c.a, BigInteger)).where(t.c.a < 0), 1)
        assert empty.shape == (0, 1)


def test_sum_by_pairs_adds_up_each_pair_once() -> None:
    rng = np.random.default_rng(2)
    first = rng.integers(1, 50, 2000)
    second = rng.integers(19000, 19030, 2000)
    values = rng.integers(-500, 5000, 2000)
    a, b, v = columnar.sum_by_pairs(first, second, values)
    expected: dict[tuple[int, int], int] = {}
    for f, s, x in zip(first.tolist(), second.tolist(), values.tolist(), strict=True):
        expected[(f, s)] = expected.get((f, s), 0) + x
    assert list(zip(a.tolist(), b.tolist(), strict=True)) == sorted(expected)
    assert v.tolist() == [expected[k] for k in sorted(expected)]
    # Keys out of the packed range (negative days) take the two-key sort, same answer.
    a2, b2, v2 = columnar.sum_by_pairs(first, second - 40000, values)
    assert (a2 == a).all() and (b2 == b - 40000).all() and (v2 == v).all()
    empty = np.zeros(0, dtype=np.int64)
    assert [x.size for x in columnar.sum_by_pairs(empty, empty, empty)] == [0, 0, 0]
