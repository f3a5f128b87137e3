"""/metrics is scraped like Prometheus would; health endpoints; logs hold no personal data."""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import timedelta

from fastapi.testclient import TestClient
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy import text

from patron.app import create_app
from patron.jobs.scheduler import Scheduler, Task
from patron.ops import status as run_status
from tests.ops.server import free_port

PRIVATE = ("10.1.2.3", 5000)
PUBLIC = ("93.184.216.34", 5000)


def _scrape(app, client=PRIVATE, headers=None):
    with TestClient(app, client=client) as c:
        return c.get("/metrics", headers=headers or {})


def _samples(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_count_requests_by_route_template_and_status(app, client, make_member, settings):
    no = make_member()
    client.get(f"/api/v1/members/{no}")  # 401: no credentials
    client.get("/no/such/page/13800138000")
    r = _scrape(app)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    samples = _samples(r.text)
    route = "/api/v1/members/{member_no}"
    assert samples[("patron_http_requests_total", (("method", "GET"), ("route", route),
                                                   ("status", "401")))] >= 1  # fmt: skip
    assert samples[("patron_http_requests_total", (("method", "POST"),
                    ("route", "/api/v1/members"), ("status", "201")))] >= 1  # fmt: skip
    assert (
        "patron_http_request_duration_seconds_bucket",
        (("le", "0.1"), ("method", "GET"), ("route", route)),
    ) in samples
    # An address no route claims is one label, never the address (it may hold a phone).
    assert "13800138000" not in r.text
    assert 'route="unmatched"' in r.text
    assert samples[("patron_database_up", ())] == 1
    assert samples[("patron_webhook_deliveries", (("status", "pending"),))] >= 0
    assert ("patron_webhook_outbox_age_seconds", ()) in samples


def test_metrics_read_sms_sends_jobs_and_the_last_check(app, database, settings, tmp_path, clock):
    from patron.db import utcnow

    with database.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO otp_codes (phone_index, purpose, code_hash, attempts, created_at, "
                "expires_at) VALUES ('x', 'login', 'h', 0, :t, :t)"
            ),
            {"t": utcnow().replace(tzinfo=None) if database.dialect == "sqlite" else utcnow()},
        )
    run_status.record(settings.status_dir, "check", ok=False, seconds=1.5, violations=3)

    def boom() -> None:
        raise RuntimeError

    # A scheduler in another process (it shares only the database with this app) ran the jobs.
    elsewhere = Scheduler(
        [Task("expire_points", 60, lambda: None), Task("tiers", 60, boom)], db=database
    )
    elsewhere.run_due()
    samples = _samples(_scrape(app).text)
    assert samples[("patron_otp_codes_sent_last_hour", (("purpose", "login"),))] == 1
    assert samples[("patron_ledger_check_violations", ())] == 3
    assert samples[("patron_ops_last_run_ok", (("kind", "check"),))] == 0
    ok = (("job", "expire_points"),)
    assert samples[("patron_job_runs_total", (*ok, ("outcome", "ok")))] == 1
    assert samples[("patron_job_runs_total", (*ok, ("outcome", "failed")))] == 0
    assert samples[("patron_job_runs_total", (("job", "tiers"), ("outcome", "failed")))] == 1
    assert samples[("patron_job_last_run_ok", ok)] == 1
    assert samples[("patron_job_last_run_ok", (("job", "tiers"),))] == 0
    assert ("patron_job_last_run_seconds", ok) in samples
    assert abs(samples[("patron_job_last_success_timestamp_seconds", ok)] - time.time()) < 600
    assert ("patron_job_last_success_timestamp_seconds", (("job", "tiers"),)) not in samples
    assert samples[("patron_job_overdue", ok)] == 0
    assert samples[("patron_job_overdue", (("job", "webhooks"),))] == 0  # never ran: not judged


def test_metrics_are_refused_to_the_public_unless_the_token_is_sent(settings, database, clock):
    app = create_app(settings, database, clock)
    r = _scrape(app, client=PUBLIC)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "metrics_forbidden"
    tokened = create_app(
        settings.model_copy(update={"metrics_token": SecretStr("s3cret")}), database, clock
    )
    assert _scrape(tokened, client=PRIVATE).status_code == 403  # a token, once set, is needed
    assert (
        _scrape(tokened, client=PUBLIC, headers={"Authorization": "Bearer wrong"}).status_code
        == 403
    )
    ok = _scrape(tokened, client=PUBLIC, headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200


def test_metrics_say_the_database_is_down_instead_of_failing(settings, clock, tmp_path):
    from patron.db import Database

    gone = Database("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")
    app = create_app(settings.model_copy(update={"database_url": gone.url}), gone, clock)
    r = _scrape(app)
    assert r.status_code == 200
    assert _samples(r.text)[("patron_database_up", ())] == 0


def test_liveness_and_readiness(client, database):
    assert client.get("/health/live").json()["status"] == "ok"
    assert client.get("/health/ready").status_code == 200
    with database.engine.connect() as conn:
        head = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    try:
        # A schema behind this release is not ready (the load balancer keeps traffic away).
        with database.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0001_foundation'"))
        r = client.get("/health/ready")
        assert r.status_code == 503
        assert r.json()["database"] == "schema_mismatch"
        assert client.get("/health/live").status_code == 200
        # A schema ahead of it (a newer release migrated during a rolling upgrade) is fine.
        with database.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '9999_newer'"))
        assert client.get("/health/ready").status_code == 200
    finally:  # the database outlives the test on PostgreSQL: later tests migrate it
        with database.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})


def test_a_database_outage_is_a_fast_503_with_a_stable_code(settings, clock):
    from patron.db import Database

    gone = Database("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")
    app = create_app(settings.model_copy(update={"database_url": gone.url}), gone, clock)
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.post("/api/v1/auth/token", json={"username": "ops", "password": "long-password-1"})
        assert r.status_code == 503
        assert r.headers["retry-after"] == "2"
        body = r.json()["error"]
        assert body["code"] == "database_unavailable"
        assert body["request_id"]
        assert c.get("/health/ready").status_code == 503
        assert c.get("/health/live").status_code == 200


def test_structured_logs_hold_no_personal_data(settings, database, clock, auth_headers, capsys):
    """Every kind of request that carries personal data, logged at DEBUG: nothing of it in the
    log lines (addresses are route templates; bodies and query strings are never logged)."""
    app = create_app(settings.model_copy(update={"log_level": "DEBUG"}), database, clock)
    personal = ("13912345678", "li.na@example.com", "李娜", "1990-05-17", "上海市静安区")
    with TestClient(app, raise_server_exceptions=False) as c:
        h = auth_headers("admin")
        r = c.post(
            "/api/v1/members",
            json={"phone": personal[0], "channel": "web", "email": personal[1],
                  "name": personal[2], "birthday": personal[3], "address": personal[4]},
            headers=h,
        )  # fmt: skip
        no = r.json().get("member_no", "x") if r.status_code == 201 else "x"
        c.get(f"/api/v1/members?phone={personal[0]}", headers=h)
        c.get(f"/api/v1/members/{personal[0]}", headers=h)  # a phone where an id belongs
        c.patch(f"/api/v1/members/{no}", json={"email": "bad-" + personal[1] + "\x01"}, headers=h)
        c.post("/api/v1/members", json={"phone": "not-a-phone " + personal[2]}, headers=h)
        c.post("/portal/login", data={"phone": personal[0]}, headers={"Accept": "text/html"})
    logged = capsys.readouterr().err
    lines = [json.loads(ln) for ln in logged.splitlines() if ln.startswith("{")]
    assert any(ln.get("event") == "request" for ln in lines), logged
    for secret in personal:
        assert secret not in logged, secret
    assert not re.search(r"(?<!\d)1[3-9]\d{9}(?!\d)", logged)  # a phone: 11 digits alone


def test_the_grafana_dashboard_uses_only_metrics_that_exist(app, client, settings):
    from pathlib import Path

    dashboard = json.loads(
        (Path(__file__).parents[2] / "docs" / "grafana" / "patron-dashboard.json").read_text()
    )
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"\b(patron_[a-z_]+)", e)}
    for kind in ("backup", "drill", "check"):
        run_status.record(settings.status_dir, kind, ok=True, seconds=1.0)
    Scheduler([Task("webhooks", 60, lambda: None)], db=app.state.db).run_due()
    client.get("/health/live")
    body = _scrape(app).text
    names = {name for name, _labels in _samples(body)}
    names |= set(re.findall(r"^# HELP (\S+)", body, re.MULTILINE))  # families with no sample yet

    class Stream:  # the broker's families appear only with a broker
        def backlog(self) -> int:
            return 0

    from patron.ops.metrics import new_db_registry

    with_broker = generate_latest(new_db_registry(app.state.db, settings.status_dir, Stream()))  # type: ignore[arg-type]
    names |= {name for name, _labels in _samples(with_broker.decode())}
    missing = {m for m in used if m not in names}
    assert not missing, missing


def test_only_a_lost_connection_counts_as_an_outage():
    import psycopg
    from sqlalchemy.exc import OperationalError

    from patron.app import _is_unavailable

    def wrapped(orig: Exception) -> OperationalError:
        return OperationalError("SELECT 1", {}, orig)

    assert _is_unavailable(wrapped(psycopg.OperationalError("connection refused")))
    assert _is_unavailable(wrapped(psycopg.errors.AdminShutdown("terminating connection")))
    assert not _is_unavailable(wrapped(psycopg.errors.DeadlockDetected("deadlock")))
    assert not _is_unavailable(wrapped(psycopg.errors.SerializationFailure("retry")))


def test_metrics_show_the_message_queue_and_the_brokers_stream(
    app, database, settings, clock, make_member
):
    import os

    import redis
    from sqlalchemy import select

    from patron.db import utcnow
    from patron.members.models import Member
    from patron.messaging import broker
    from patron.messaging.models import Message
    from patron.ops.metrics import new_db_registry

    no = make_member()
    now = utcnow()
    with database.unit_of_work() as s:
        mid = s.scalar(select(Member.id).where(Member.member_no == no))
        for status, due in (("queued", -120), ("queued", 3600), ("dead", -60)):
            s.add(
                Message(
                    member_id=mid,
                    template_code="t",
                    source_kind="campaign",
                    source_code="c",
                    dedupe_key=f"m:{status}:{due}",
                    locale="en",
                    body="b",
                    params={},
                    links=[],
                    status=status,
                    next_attempt_at=now + timedelta(seconds=due),
                    created_at=now,
                )
            )
    samples = _samples(_scrape(app).text)
    assert samples[("patron_messages", (("status", "due"),))] == 1  # not the one due in an hour
    assert samples[("patron_messages", (("status", "dead"),))] == 1
    assert 100 <= samples[("patron_messages_due_age_seconds", ())] < 3600
    assert ("patron_message_stream_entries", ()) not in samples  # no broker set

    url = os.environ.get("PATRON_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError:
        if os.environ.get("PATRON_REQUIRE_REDIS") == "1":
            raise
        return
    queue = broker.RedisQueue(client, stream=f"patron-test:{uuid.uuid4().hex}")
    try:
        queue.ensure_group()
        client.xadd(queue.stream, {"id": "1", "lease": "x"})
        body = generate_latest(new_db_registry(database, settings.status_dir, queue)).decode()
        samples = _samples(body)
        assert samples[("patron_message_broker_up", ())] == 1
        assert samples[("patron_message_stream_entries", ())] == 1
    finally:
        client.delete(queue.stream)
    down = broker.RedisQueue(redis.Redis(port=free_port(), socket_timeout=1), stream="x")
    samples = _samples(
        generate_latest(new_db_registry(database, settings.status_dir, down)).decode()
    )
    assert samples[("patron_message_broker_up", ())] == 0
    assert samples[("patron_database_up", ())] == 1


def test_a_broker_that_hangs_does_not_hold_the_scrape(settings, database, clock):
    import socket

    from patron.messaging import broker

    # a port that takes the connection and never answers (nobody accepts it)
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)
        url = SecretStr(f"redis://127.0.0.1:{hung.getsockname()[1]}/0")
        app = create_app(settings.model_copy(update={"message_broker_url": url}), database, clock)
        # the senders wait 30 s for Redis; the scrape's client only briefly
        kwargs = app.state.broker.client.connection_pool.connection_kwargs
        assert kwargs["socket_timeout"] == kwargs["socket_connect_timeout"] == broker.PROBE_TIMEOUT
        assert broker.PROBE_TIMEOUT < 30
        response = _scrape(app)
        assert response.status_code == 200
        samples = _samples(response.text)
        assert samples[("patron_message_broker_up", ())] == 0
        assert samples[("patron_database_up", ())] == 1
