"""Prometheus metrics: request counts and latency by route template, and gauges read from the
database at scrape time (pool, webhook backlog and lag, SMS codes sent, job runs, last
check/backup).

Labels are route *templates* (``/api/v1/members/{member_no}``), never addresses or query
strings, so no personal data and no unbounded label sets reach the metrics. With several
``patron serve`` workers the process-local series are aggregated through
``PROMETHEUS_MULTIPROC_DIR`` (``patron serve`` sets one up).
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import time
from collections.abc import Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.pool import QueuePool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from patron.db import Database, utcnow
from patron.observability import get_logger
from patron.ops import status as run_status

if TYPE_CHECKING:
    from patron.messaging.broker import RedisQueue

log = get_logger("patron.metrics")

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "patron_http_requests",
    "HTTP requests by method, route template and status code.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "patron_http_request_duration_seconds",
    "Time from request to the end of the response, by method and route template.",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
HTTP_IN_FLIGHT = Gauge(
    "patron_http_requests_in_flight",
    "Requests being served now.",
    multiprocess_mode="livesum",
)
UNMATCHED = "unmatched"  # any address no route claims: one label, not one per scanner probe


class MetricsMiddleware:
    """Counts and times every HTTP request by route template and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        start = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        HTTP_IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_status)
        finally:
            HTTP_IN_FLIGHT.dec()
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            method = scope["method"]
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_LATENCY.labels(method, route).observe(time.perf_counter() - start)


class DatabaseCollector(Collector):
    """Gauges computed at scrape time from the database and this host's status files. A scrape
    costs a few indexed counts; if the database does not answer, ``patron_database_up`` is 0."""

    def __init__(self, db: Database, status_dir: Path, queue: RedisQueue | None = None) -> None:
        self.db = db
        self.status_dir = status_dir
        self.queue = queue

    def collect(self) -> Iterator[Metric]:
        yield from self._pool()
        yield from self._status_files()
        yield from self._broker()
        up = GaugeMetricFamily("patron_database_up", "1 if the database answered this scrape.")
        try:
            families = list(self._from_database())
        except Exception as exc:  # the scrape must still answer, saying the database is down
            log.warning("metrics_database_unavailable", error_type=type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _pool(self) -> Iterable[GaugeMetricFamily]:
        pool = self.db.engine.pool
        if not isinstance(pool, QueuePool):
            return
        size = GaugeMetricFamily("patron_db_pool_size", "Connections the pool keeps open.")
        size.add_metric([], pool.size())
        out = GaugeMetricFamily(
            "patron_db_pool_checked_out", "Connections in use by requests and jobs now."
        )
        out.add_metric([], pool.checkedout())
        over = GaugeMetricFamily(
            "patron_db_pool_overflow", "Connections opened beyond the pool size now."
        )
        over.add_metric([], max(pool.overflow(), 0))
        yield from (size, out, over)

    def _broker(self) -> Iterable[GaugeMetricFamily]:
        if self.queue is None:
            return
        up = GaugeMetricFamily(
            "patron_message_broker_up", "1 if the message broker (Redis) answered this scrape."
        )
        entries = GaugeMetricFamily(
            "patron_message_stream_entries",
            "Messages published to the broker's stream and not yet acknowledged by a consumer.",
        )
        try:
            entries.add_metric([], self.queue.backlog())
            up.add_metric([], 1)
        except Exception as exc:  # any Redis error: the scrape still answers
            log.warning("metrics_broker_unavailable", error_type=type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        yield from (up, entries)

    def _from_database(self) -> Iterable[Metric]:
        from patron.messaging.models import Message as Outgoing
        from patron.otp.models import OtpCode
        from patron.webhooks.models import WebhookDelivery, WebhookEvent

        now = utcnow()
        with self.db.session() as s:
            by_status = dict(
                s.execute(
                    select(WebhookDelivery.status, func.count())
                    .where(WebhookDelivery.status.in_(("pending", "dead")))
                    .group_by(WebhookDelivery.status)
                ).all()
            )
            oldest_due = s.scalar(
                select(func.min(WebhookEvent.created_at))
                .join(WebhookDelivery, WebhookDelivery.event_id == WebhookEvent.id)
                .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
            )
            # Both over the queue's (status, next_attempt_at) index.
            due, oldest_message = s.execute(
                select(func.count(), func.min(Outgoing.next_attempt_at)).where(
                    Outgoing.status == "queued", Outgoing.next_attempt_at <= now
                )
            ).one()
            dead = s.scalar(select(func.count()).where(Outgoing.status == "dead"))
            sent = s.execute(
                select(OtpCode.purpose, func.count())
                .where(OtpCode.created_at >= now - timedelta(hours=1))
                .group_by(OtpCode.purpose)
            ).all()
        backlog = GaugeMetricFamily(
            "patron_webhook_deliveries",
            "Webhook deliveries waiting (pending) or given up (dead).",
            labels=["status"],
        )
        for state in ("pending", "dead"):
            backlog.add_metric([state], by_status.get(state, 0))
        age = GaugeMetricFamily(
            "patron_webhook_outbox_age_seconds",
            "Age of the oldest event whose delivery is due and not yet made (0 if none).",
        )
        age.add_metric([], (now - oldest_due).total_seconds() if oldest_due else 0.0)
        otp = GaugeMetricFamily(
            "patron_otp_codes_sent_last_hour",
            "SMS codes sent in the last hour, by purpose (from the code log).",
            labels=["purpose"],
        )
        for purpose, n in sent:
            otp.add_metric([purpose], n)
        messages = GaugeMetricFamily(
            "patron_messages",
            "Messages to members due and waiting for the sender (due), or given up (dead).",
            labels=["status"],
        )
        messages.add_metric(["due"], due or 0)
        messages.add_metric(["dead"], dead or 0)
        message_age = GaugeMetricFamily(
            "patron_messages_due_age_seconds",
            "How long the longest-waiting due message has waited past its time (0 if none).",
        )
        message_age.add_metric(
            [], max((now - oldest_message).total_seconds(), 0.0) if oldest_message else 0.0
        )
        yield from (backlog, age, otp, messages, message_age)
        yield from self._jobs()

    def _jobs(self) -> Iterable[Metric]:
        """Job runs as recorded in the database by whichever process ran them (jobs/runs.py):
        every server's scrape shows the same figures, so aggregate them with max, not sum."""
        from patron.jobs import runs
        from patron.jobs.tasks import SCHEDULE

        now = utcnow()
        with self.db.session() as s:
            jobs = runs.statuses(s, SCHEDULE, now)
        total = CounterMetricFamily(
            "patron_job_runs", "Job runs recorded, by job and outcome (ok, failed).",
            labels=["job", "outcome"],
        )  # fmt: skip
        last_ok = GaugeMetricFamily(
            "patron_job_last_success_timestamp_seconds",
            "Unix time of the job's last successful run (lag = time() - this).",
            labels=["job"],
        )
        last_run_ok = GaugeMetricFamily(
            "patron_job_last_run_ok", "1 if the job's last run succeeded.", labels=["job"]
        )
        took = GaugeMetricFamily(
            "patron_job_last_run_seconds", "How long the job's last run took.", labels=["job"]
        )
        overdue = GaugeMetricFamily(
            "patron_job_overdue",
            "1 if the job has not succeeded for three of its intervals (the scheduler stopped, "
            "or the job keeps failing).",
            labels=["job"],
        )
        for job in jobs:
            run = job.run
            overdue.add_metric([job.job], 1 if job.state == "overdue" else 0)
            if run is None:
                continue
            total.add_metric([job.job, "ok"], run.runs_ok)
            total.add_metric([job.job, "failed"], run.runs_failed)
            if run.last_ok_at is not None:
                last_ok.add_metric([job.job], run.last_ok_at.timestamp())
            last_run_ok.add_metric([job.job], 1 if run.last_ok else 0)
            took.add_metric([job.job], run.last_ms / 1000)
        yield from (total, last_ok, last_run_ok, took, overdue)

    def _status_files(self) -> Iterable[GaugeMetricFamily]:
        last = GaugeMetricFamily(
            "patron_ops_last_run_timestamp_seconds",
            "Unix time of the last backup, restore drill or check on this host.",
            labels=["kind"],
        )
        ok = GaugeMetricFamily(
            "patron_ops_last_run_ok", "1 if the last run of that kind succeeded.", labels=["kind"]
        )
        took = GaugeMetricFamily(
            "patron_ops_last_run_seconds", "How long the last run took.", labels=["kind"]
        )
        violations = GaugeMetricFamily(
            "patron_ledger_check_violations", "Violations found by the last `patron check`."
        )
        for kind in run_status.KINDS:
            found = run_status.read(self.status_dir, kind)
            if found is None:
                continue
            last.add_metric([kind], found.finished_at)
            ok.add_metric([kind], 1 if found.ok else 0)
            took.add_metric([kind], found.seconds)
            if kind == "check":
                violations.add_metric([], found.violations)
        yield from (last, ok, took, violations)


def render(db_registry: CollectorRegistry) -> tuple[bytes, str]:
    """The exposition text: process-wide series (merged across workers when multiprocess)
    followed by this app's database gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        merged = CollectorRegistry()
        MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
        base = generate_latest(merged)
    else:
        base = generate_latest(REGISTRY)
    return base + generate_latest(db_registry), CONTENT_TYPE_LATEST


def scrape_allowed(client_host: str | None, authorization: str | None, token: str | None) -> bool:
    """With a token set, the scraper must send it as a bearer token; without one, only
    loopback and private addresses may scrape (the metrics are not for the public internet)."""
    if token:
        scheme, _, given = (authorization or "").partition(" ")
        return scheme.lower() == "bearer" and secrets.compare_digest(given.strip(), token)
    if not client_host:
        return False
    try:
        addr = ipaddress.ip_address(client_host)
    except ValueError:
        return False
    return addr.is_loopback or addr.is_private


def new_db_registry(
    db: Database, status_dir: Path, queue: RedisQueue | None = None
) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(db, status_dir, queue))
    return registry
