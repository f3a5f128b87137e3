"""``patron jobs scheduler``, ``patron jobs run NAME`` and ``patron messages consume``: the
scheduled jobs from the command line (cron, a job runner) and the senders of a message broker."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer
from rich.console import Console

from patron.config import Settings

if TYPE_CHECKING:
    from patron.db import Database

console = Console()


def _migrated_settings() -> Settings:
    from patron.cli import _migrated_settings as migrated

    return migrated()


jobs_app = typer.Typer(help="Run scheduled jobs by hand or from cron.", no_args_is_help=True)


class JobName(StrEnum):
    expire = "expire"
    release = "release"
    tiers = "tiers"
    reminders = "reminders"
    webhooks = "webhooks"
    purge_idempotency = "purge-idempotency"
    scores = "scores"
    alerts = "alerts"
    expire_coupons = "expire-coupons"
    coupon_packs = "coupon-packs"
    coupon_reminders = "coupon-reminders"
    tags = "tags"
    tags_after_orders = "tags-after-orders"
    lifecycle = "lifecycle"
    recall_packs = "recall-packs"
    milestone_coupons = "milestone-coupons"
    sla_breaches = "sla-breaches"
    nps_surveys = "nps-surveys"
    risk_flags = "risk-flags"
    retention = "retention"
    journeys = "journeys"
    messages = "messages"
    mall_unclaimed = "mall-unclaimed"
    mall_markdowns = "mall-markdowns"
    mall_replenish = "mall-replenish"


@jobs_app.command("scheduler")
def jobs_scheduler(
    retry: Annotated[
        float,
        typer.Option(
            min=1, max=600, help="Seconds between tries to take over from another scheduler"
        ),
    ] = 15.0,
) -> None:
    """Run every scheduled job on its interval in the foreground — the scheduler `patron serve`
    embeds, for a deployment that runs it apart (PATRON_SCHEDULER=false on the servers).
    SIGTERM stops it after the job in hand."""
    import signal
    import threading

    from patron.db import Database
    from patron.jobs.leader import Leader, lock_for
    from patron.jobs.scheduler import Scheduler
    from patron.jobs.tasks import default_tasks
    from patron.kit.clock import SystemClock
    from patron.kit.crypto import FieldCipher
    from patron.ops.replica import replica_of

    settings = _migrated_settings()
    keys = settings.keys()
    cipher = FieldCipher(keys["data_key"], keys["index_key"], settings.previous_keys())
    db = Database(settings.database_url)
    tasks = default_tasks(db, cipher, SystemClock(), settings, replica_of(settings))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    # With servers that run the scheduler too, whoever holds the lock runs the jobs.
    scheduler = Scheduler(tasks, leader=Leader(lock_for(db), retry_seconds=retry), db=db)
    console.print(f"scheduler: {len(tasks)} jobs: {', '.join(t.name for t in tasks)}")
    scheduler.start()
    stop.wait()
    scheduler.stop(timeout=120)


@jobs_app.command("run")
def jobs_run(
    job: Annotated[JobName, typer.Argument(help="Which job")],
    workers: Annotated[
        int, typer.Option(min=1, max=16, help="expire: parallel connections over member ranges")
    ] = 1,
) -> None:
    """Run one job now. Every job is idempotent: running it twice changes nothing more."""
    from patron.db import Database, utcnow
    from patron.jobs import runs

    settings = _migrated_settings()
    db = Database(settings.database_url)
    started = utcnow()

    def record(error: Exception | None) -> None:  # cron knows the interval, not Patron
        name = _task_name(job)
        runs.record(
            db, name, started_at=started, finished_at=utcnow(), error=error, every_seconds=None
        )

    try:
        result = _run(job, settings, db, started, workers)
    except Exception as exc:
        record(exc)
        raise
    record(None)
    console.print(f"{job.value}: {result}")


#: `patron jobs run` names whose scheduled task has another name (the others: - → _), so a
#: run from cron is recorded under the job the scheduler would have run (jobs/runs.py).
_TASK_NAMES: Final = {
    "expire": "expire_points",
    "release": "release_pending",
    "reminders": "points_reminders",
    "scores": "member_scores",
    "alerts": "analytics_alerts",
    "lifecycle": "lifecycle_stages",
}


def _task_name(job: JobName) -> str:
    return _TASK_NAMES.get(job.value, job.value.replace("-", "_"))


def _run(job: JobName, settings: Settings, db: Database, now: datetime, workers: int) -> object:
    from patron.idempotency import service as idempotency
    from patron.kit.crypto import FieldCipher
    from patron.kit.timeutil import business_tz
    from patron.ledger import jobs as ledger_jobs
    from patron.ledger import service as ledger
    from patron.tiers.jobs import run_tiers
    from patron.webhooks.service import deliver_due

    tz = business_tz(settings.business_timezone)
    result: object
    if job is JobName.expire:
        result = ledger_jobs.run_expire(db, now, workers=workers)
    elif job is JobName.release:
        result = {"released": ledger_jobs.run_release(db, now, tz)}
    elif job is JobName.tiers:
        result = run_tiers(db, now, tz)
    elif job is JobName.reminders:
        with db.unit_of_work() as session:
            days = ledger.get_points_settings(session).reminder_days
            result = {"reminders": ledger_jobs.record_reminders(session, now, days, tz)}
    elif job is JobName.scores:
        from patron.analytics.jobs import run_scores
        from patron.ops.replica import replica_of

        with console.status("scoring members…"):
            result = run_scores(db, now, tz, read_db=replica_of(settings))
    elif job is JobName.alerts:
        from patron.analytics.jobs import run_alerts

        result = run_alerts(db, now, tz)
    elif job in (JobName.expire_coupons, JobName.coupon_packs, JobName.coupon_reminders):
        from patron.coupons import jobs as coupon_jobs

        if job is JobName.expire_coupons:
            result = {"expired": coupon_jobs.run_expire(db, now)}
        elif job is JobName.coupon_packs:
            result = coupon_jobs.run_auto(db, now, tz)
        else:
            with db.unit_of_work() as session:
                result = {"reminders": coupon_jobs.record_reminders(session, now, tz)}
    elif job in (JobName.tags, JobName.tags_after_orders, JobName.lifecycle):
        from patron.segments import jobs as segment_jobs

        if job is JobName.tags:
            result = segment_jobs.run_tags(db, now, tz)
        elif job is JobName.tags_after_orders:
            result = segment_jobs.run_tags_after_orders(db, now, tz)
        else:
            result = segment_jobs.run_stages(db, now, tz)
    elif job is JobName.recall_packs:
        from patron.campaigns.jobs import run_recall

        result = run_recall(db, now, tz)
    elif job is JobName.milestone_coupons:
        from patron.campaigns.jobs import run_milestone_coupons

        result = run_milestone_coupons(db, now, tz)
    elif job is JobName.sla_breaches:
        from patron.service.jobs import run_breaches

        result = {"breached": run_breaches(db, now)}
    elif job is JobName.nps_surveys:
        from patron.service.jobs import run_nps_surveys

        result = run_nps_surveys(db, now, base_url=settings.public_base_url)
    elif job is JobName.retention:
        from patron.privacy import retention as retention_job

        hours = timedelta(hours=settings.idempotency_retention_hours)
        result = retention_job.run(db, now, hours)
    elif job is JobName.risk_flags:
        from patron.risk.jobs import run as run_risk

        keys = settings.keys()
        cipher = FieldCipher(keys["data_key"], keys["index_key"], settings.previous_keys())
        result = run_risk(db, cipher, now)
    elif job is JobName.journeys:
        from patron.journeys.runner import run_job

        result = run_job(db, now, tz)
    elif job is JobName.messages:
        # Several processes may run this at once on PostgreSQL: they share the queue.
        from patron.messaging import broker, delivery

        sender = _message_sender(settings)
        queue = broker.from_settings(settings)
        if queue is not None:
            result = broker.publish_all(
                db, sender, queue, now=now, tz=tz, max_backlog=settings.message_broker_backlog
            )
        else:
            result = delivery.drain(db, sender, now=now, tz=tz)
    elif job in (JobName.mall_unclaimed, JobName.mall_markdowns, JobName.mall_replenish):
        from patron.mall import jobs as mall_jobs

        if job is JobName.mall_unclaimed:
            result = {"released": mall_jobs.run_release_unclaimed(db, now, tz)}
        elif job is JobName.mall_replenish:
            result = {"purchase_requests": mall_jobs.run_replenish(db, now, tz)}
        else:
            result = {"marked_down": mall_jobs.run_markdowns(db, now, tz)}
    elif job is JobName.webhooks:
        keys = settings.keys()
        result = deliver_due(
            db,
            FieldCipher(keys["data_key"], keys["index_key"], settings.previous_keys()),
            now,
            allowed=settings.webhook_allowed_networks,
        )
    else:
        with db.unit_of_work() as session:
            retention = timedelta(hours=settings.idempotency_retention_hours)
            result = {"purged": idempotency.purge(session, now, retention)}
    return result


def _message_sender(settings: Settings) -> Any:
    from patron.kit.crypto import FieldCipher
    from patron.messaging import delivery

    keys = settings.keys()
    cipher = FieldCipher(keys["data_key"], keys["index_key"], settings.previous_keys())
    return delivery.Sender.from_settings(settings, cipher)


messages_app = typer.Typer(help="Messages to members.", no_args_is_help=True)


@messages_app.command("consume")
def messages_consume(
    consumer: Annotated[
        str | None, typer.Option(help="This consumer's name in the group (default: host-pid)")
    ] = None,
    until_empty: Annotated[
        bool, typer.Option(help="Stop when a read finds nothing instead of waiting for more")
    ] = False,
    batch: Annotated[int, typer.Option(min=1, max=5000, help="Entries read at once")] = 500,
) -> None:
    """Send the messages the messages job published to the Redis stream (needs
    PATRON_MESSAGE_BROKER_URL). Run as many as the providers' rates allow; SIGTERM finishes the
    batch in hand and stops."""
    import signal
    import socket
    import threading

    from patron.db import Database, utcnow
    from patron.kit.timeutil import business_tz
    from patron.messaging import broker

    settings = _migrated_settings()
    queue = broker.from_settings(settings)
    if queue is None:
        console.print(
            "[red]PATRON_MESSAGE_BROKER_URL is not set: the messages job sends itself.[/]"
        )
        raise typer.Exit(2)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    name = consumer or f"{socket.gethostname()}-{os.getpid()}"
    total = broker.run_consumer(
        Database(settings.database_url),
        _message_sender(settings),
        queue,
        name,
        now=utcnow,
        tz=business_tz(settings.business_timezone),
        stop=stop,
        until_empty=until_empty,
        count=batch,
    )
    console.print(
        f"messages consume: sent {total.sent}, retried {total.retried}, dead {total.dead}, "
        f"suppressed {total.suppressed}, stale {total.stale}"
    )
