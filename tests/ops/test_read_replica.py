"""The console dashboard reads a streaming replica when PATRON_READ_DATABASE_URL is set
(a private primary and hot standby started by the test)."""

from __future__ import annotations

import re
import time
import uuid
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from patron.app import create_app
from patron.db import Database, normalize_url
from patron.migrate import upgrade
from tests.conftest import START, make_settings
from tests.ops import pgcluster
from tests.web.test_pages import _sign_in, _staff

JOINED = START - timedelta(days=40)  # a member before the dashboard's "today"

pytestmark = pytest.mark.skipif(
    pgcluster.unavailable_reason() is not None, reason=str(pgcluster.unavailable_reason())
)


def _members_total(html: str) -> int:
    found = re.search(r'data-kpi="members_total">.*?class="value">([\d,]+)<', html, re.S)
    assert found, html[:500]
    return int(found.group(1).replace(",", ""))


def _caught_up(primary_url: str, replica_url: str) -> None:
    with create_engine(normalize_url(primary_url)).connect() as p:
        lsn = p.execute(text("SELECT pg_current_wal_lsn()")).scalar_one()
    engine = create_engine(normalize_url(replica_url))
    deadline = time.monotonic() + 60
    with engine.connect() as r:
        while time.monotonic() < deadline:
            behind = r.execute(
                text("SELECT pg_wal_lsn_diff(:lsn, pg_last_wal_replay_lsn()) > 0"), {"lsn": lsn}
            ).scalar_one()
            if not behind:
                break
            r.rollback()
            time.sleep(0.2)
    engine.dispose()


def _add_member(db: Database) -> None:
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO members (member_no, phone_enc, phone_index, member_type, status, "
                "registration_channel, created_at, updated_at) VALUES (:no, :enc, :ix, 'regular', "
                "'active', 'web', :at, :at)"
            ),
            {"no": str(uuid.uuid4().int)[:10], "enc": b"x", "ix": uuid.uuid4().hex, "at": JOINED},
        )


def test_the_dashboard_reads_the_replica(clock):
    with pgcluster.private_cluster() as primary:
        admin = create_engine(normalize_url(primary.url), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("CREATE DATABASE patron"))
        admin.dispose()
        primary_url = primary.url_for("patron")
        upgrade(primary_url)
        db = Database(primary_url)
        _add_member(db)
        with pgcluster.streaming_replica(primary) as standby:
            replica_url = standby.url_for("patron")
            settings = make_settings(db, read_database_url=replica_url)
            app = create_app(settings, db, clock)
            user = _staff(db, clock, "admin")
            _caught_up(primary_url, replica_url)
            with TestClient(app) as client:
                client.headers["Accept-Language"] = "en"
                assert _sign_in(client, user).status_code == 303
                assert _members_total(client.get("/console/").text) == 1
                # Replay paused: the primary gains a member the replica does not show yet.
                with create_engine(normalize_url(replica_url)).connect() as r:
                    r.execute(text("SELECT pg_wal_replay_pause()"))
                    r.commit()
                _add_member(db)
                assert _members_total(client.get("/console/").text) == 1
                with create_engine(normalize_url(replica_url)).connect() as r:
                    r.execute(text("SELECT pg_wal_replay_resume()"))
                    r.commit()
                _caught_up(primary_url, replica_url)
                assert _members_total(client.get("/console/").text) == 2
            app.state.read_db.dispose()
        db.dispose()
