"""Statement budget of an import batch on PostgreSQL: the same statements whatever the batch's
size, the COPYs (sent through the driver's connection) counted like every other statement.

(SQLite writes a batch with multi-row INSERTs, which its limit on bound parameters splits into
more statements as the batch grows.)"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from patron.auth.principal import Principal
from patron.imports.importers import OrderImporter
from patron.imports.runner import run_import
from tests.statements import count_statements

NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
HEADER = "order_id,member_no,phone,store_code,ordered_at,sku,quantity,unit_price,discount\n"

#: statements of one batch: its reads (members, existing orders, keys, locks, facts), the ids,
#: one COPY per table, the balances and tier rows, ANALYZE after the first batch, the audit record
BUDGET = 31


def _run(app, database, tmp_path, name, members, n):
    rows = [
        f"{name}{i},{members[i % len(members)]},,SH001,2026-02-{1 + i % 27:02d} 10:00:00,"
        f"BEA-1,1,9999.00,"
        for i in range(n)
    ]
    path = tmp_path / f"{name}.csv"
    path.write_text(HEADER + "\n".join(rows) + "\n")
    importer = OrderImporter(
        app.state.cipher, Principal.system("t"), tz=ZoneInfo("Asia/Shanghai"), now=NOW
    )
    with count_statements(database.engine) as log:
        report = run_import(database, importer, path, batch_size=n, report_path=tmp_path / "e")
    assert report.imported == n, report
    return log


def test_an_import_batch_sends_the_same_statements_whatever_its_size(
    app, database, tmp_path, make_member, shop
):
    if database.dialect != "postgresql":
        pytest.skip("the COPY writer is PostgreSQL's")
    # members of their own for each batch, whose orders are large enough to move them up a
    # tier in both: the two batches write the same kinds of rows
    small = _run(app, database, tmp_path, "S", [make_member() for _ in range(4)], 8)
    large = _run(app, database, tmp_path, "L", [make_member() for _ in range(4)], 600)
    assert large.count == small.count, f"{small.report()}\n---\n{large.report()}"
    assert any(s.startswith("COPY orders") for s in large.statements), large.report()
    assert large.count <= BUDGET, f"{large.count} statements > {BUDGET}\n{large.report()}"


def test_an_import_refreshes_the_statistics_of_every_table_its_batches_read(
    app, database, tmp_path, make_member, shop
):
    """A table the batches read but the import does not ANALYZE keeps the plan it had while
    empty: member_tiers did, and its sequential scan against each batch's ids came to take most
    of a large import's time. Three batches move members up a tier; the fourth batch starts with
    the ANALYZE (after batches 1, 4, 16 …), which must count those tier rows."""
    if database.dialect != "postgresql":
        pytest.skip("ANALYZE and pg_class statistics are PostgreSQL's")
    upgraded = [make_member() for _ in range(6)]
    plain = [make_member() for _ in range(2)]
    rows = [
        f"T{i},{upgraded[i]},,SH001,2026-02-{1 + i:02d} 10:00:00,BEA-1,1,9999.00," for i in range(6)
    ] + [f"T{6 + i},{plain[i]},,SH001,2026-02-10 10:00:00,BEA-1,1,1.00," for i in range(2)]
    path = tmp_path / "tiers.csv"
    path.write_text(HEADER + "\n".join(rows) + "\n")
    importer = OrderImporter(
        app.state.cipher, Principal.system("t"), tz=ZoneInfo("Asia/Shanghai"), now=NOW
    )
    report = run_import(database, importer, path, batch_size=2, report_path=tmp_path / "e")
    assert report.imported == 8, report
    with database.engine.connect() as conn:
        tiers = conn.exec_driver_sql("SELECT count(*) FROM member_tiers").scalar_one()
        counted = conn.exec_driver_sql(
            "SELECT reltuples FROM pg_class WHERE relname = 'member_tiers'"
        ).scalar_one()
    assert tiers >= 6  # the first three batches' members moved up
    assert counted == tiers
