"""Large exports stream (SQLite and PostgreSQL), in flat memory and in one snapshot: the member
scores and the member list, as CSV and as Excel, exported for N and for 10 × N members through
the console's HTTP routes. Python's peak memory while one export is read (tracemalloc: every
allocation of the process, the app's threads included) must not grow with the number of rows —
a measure of memory, never of time. The test client hands the body over chunk by chunk as the
app sends it, so a CSV that is not streamed, or a workbook built in memory, shows up as a peak
that grows with N."""

from __future__ import annotations

import csv
import gc
import io
import tracemalloc
from datetime import UTC, date, datetime

from sqlalchemy import create_engine, insert, text

from patron.members.models import Member
from patron.members.service import PHONE_CTX
from patron.web.console import exports
from tests.web.test_members_pages import staff  # noqa: F401

N = 1_000
#: rows per batch here: N is then several batches, and one batch is small beside N rows
BATCH = 100
AT = datetime(2025, 6, 1, tzinfo=UTC)
#: room for the allocator's and the caches' noise beside the 1.5 × factor (bytes)
SLACK = 128 * 1024
EXPORTS = (
    "/console/analytics/export/scores?format=csv",
    "/console/analytics/export/scores?format=xlsx",
    "/console/members/export?format=csv",
    "/console/members/export?format=xlsx",
)


def _members(cipher, first: int, n: int) -> list[dict[str, object]]:
    phone = cipher.encrypt("13800138000", PHONE_CTX)  # one ciphertext serves every row
    return [
        {
            "id": i,
            "member_no": f"M{i:09d}",
            "phone_enc": phone,
            "phone_index": f"ix-{i}",
            "name": f"会员 {i}",
            "registration_channel": "web",
            "status": "active",
            "member_type": "regular",
            "created_at": AT,
            "updated_at": AT,
        }
        for i in range(first, first + n)
    ]


def _add(database, cipher, first: int, n: int) -> None:
    """Members ``first`` … ``first + n − 1`` and a scores row each, written set-based (one
    executemany, one INSERT … SELECT)."""
    with database.unit_of_work() as s:
        s.execute(insert(Member), _members(cipher, first, n))
        s.execute(
            text(
                "INSERT INTO member_scores (member_id, as_of, recency_days, purchase_days, "
                "monetary_fen, r_score, f_score, m_score, segment, p_alive, expected_purchases, "
                "clv_fen, churn_risk, next_purchase_days) "
                "SELECT id, :day, id % 365, 1 + id % 9, 1000 * id, 1 + id % 5, 1 + id % 4, "
                "1 + id % 3, 'champions', 0.5, 1.25, 20000, 0.25, 30.5 "
                "FROM members WHERE id BETWEEN :first AND :last"
            ),
            {"day": date(2026, 3, 1), "first": first, "last": first + n - 1},
        )


def _export(client, url: str) -> tuple[int, int, int, dict[str, str]]:
    """(peak bytes allocated above the start while the export is read, body bytes, body
    chunks, headers); the body is counted, never kept."""
    gc.collect()
    tracemalloc.reset_peak()
    start = tracemalloc.get_traced_memory()[0]
    size = chunks = 0
    with client.stream("GET", url) as r:
        assert r.status_code == 200, r.read()[:300]
        for chunk in r.iter_raw():
            size += len(chunk)
            chunks += 1
        headers = dict(r.headers)
    return tracemalloc.get_traced_memory()[1] - start, size, chunks, headers


def _traced(client) -> dict[str, tuple[int, int, int, dict[str, str]]]:
    """Every export, measured (tracing slows Python down: only while measuring)."""
    tracemalloc.start()
    try:
        return {url: _export(client, url) for url in EXPORTS}
    finally:
        tracemalloc.stop()


def test_large_exports_stream_in_flat_memory(app, database, staff, monkeypatch):  # noqa: F811
    monkeypatch.setattr(exports, "BATCH", BATCH)
    admin = staff("admin")
    _add(database, app.state.cipher, 1, N)
    for url in EXPORTS:  # warm up: imports, templates, catalogues and statement caches
        assert admin.get(url).status_code == 200
    small = _traced(admin)
    _add(database, app.state.cipher, N + 1, 9 * N)
    large = _traced(admin)
    for url in EXPORTS:
        (peak_n, size_n, _, _), (peak_10n, size_10n, chunks, headers) = small[url], large[url]
        assert size_10n > 8 * size_n  # the rows really are there
        assert peak_10n < 1.25 * peak_n + SLACK, (url, peak_n, peak_10n, size_10n)
        if "csv" in url:
            # Sent while it is read: no length announced, a chunk per batch of rows at least.
            assert "content-length" not in headers
            assert headers["content-type"].startswith("text/csv")
            assert chunks >= 10 * N // BATCH
        else:
            # A zip must be complete before it is sent: it is written to a temporary file
            # (constant memory) and sent from there in chunks.
            assert headers["content-type"].startswith("application/vnd.openxmlformats")
            assert chunks > 1


def test_an_export_reads_one_snapshot_and_blocks_no_write(app, database, staff, monkeypatch):  # noqa: F811
    """A member registers while the member list is being downloaded: the export neither
    repeats nor skips a row (its pages are read in one snapshot) and leaves out the newcomer;
    on SQLite the registration is not kept waiting by the export (it holds no write lock)."""
    monkeypatch.setattr(exports, "BATCH", 100)
    admin = staff("admin")
    _add(database, app.state.cipher, 1, 300)
    # A writer of its own that gives up after a second instead of the app's 30 s.
    writer = create_engine(
        database.url, connect_args={"timeout": 1} if "sqlite" in database.url else {}
    )
    with admin.stream("GET", "/console/members/export?format=csv") as r:
        chunks = r.iter_raw()
        received = [next(chunks), next(chunks)]  # the header and the first page (newest first)
        with writer.begin() as conn:
            conn.execute(insert(Member), _members(app.state.cipher, 301, 1))
        received.extend(chunks)
    writer.dispose()
    rows = list(csv.reader(io.StringIO(b"".join(received).decode().lstrip("\ufeff"))))[1:]
    numbers = [row[0] for row in rows]
    assert len(numbers) == len(set(numbers)) == 300
    assert numbers[0] == f"M{300:09d}" and f"M{301:09d}" not in numbers
