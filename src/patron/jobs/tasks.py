"""The jobs the embedded scheduler runs, built from the app's state."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Final

from patron.config import Settings
from patron.db import Database
from patron.jobs.scheduler import Task
from patron.kit.clock import Clock
from patron.kit.crypto import FieldCipher
from patron.kit.timeutil import business_tz

#: Every job the scheduler runs and its interval in seconds. The console and ``patron doctor``
#: read it too, to show a job that never ran and to judge one that is behind (jobs/domain.py).
SCHEDULE: Final[dict[str, int]] = {
    "webhooks": 10,
    "release_pending": 15 * 60,
    "expire_points": 60 * 60,
    # Members whose evaluation date has come (an evaluated member gets its next date, so a
    # run finds only those due since the last); downgrades happen here.
    "tiers": 60 * 60,
    # Expiry notices for points and coupons: one event per member and day / per coupon.
    "points_reminders": 60 * 60,
    "coupon_reminders": 60 * 60,
    "member_scores": 60 * 60,  # hourly check, one run per business day
    "analytics_alerts": 60 * 60,
    "mall_unclaimed": 60 * 60,
    "mall_markdowns": 60 * 60,
    "mall_replenish": 60 * 60,
    "expire_coupons": 60 * 60,
    "coupon_packs": 60 * 60,
    "campaign_budgets": 5 * 60,
    "sla_breaches": 60,
    "nps_surveys": 60 * 60,  # hourly check; a round goes out every interval_days
    "risk_flags": 60 * 60,
    "retention": 60 * 60,
    "referrals": 15 * 60,
    # Rule tags: after orders every minute (those members only), all members hourly.
    "tags_after_orders": 60,
    "tags": 60 * 60,
    # Lifecycle stages: only changes are written, so a repeat within the day is cheap.
    "lifecycle_stages": 24 * 60 * 60,
    "recall_packs": 60 * 60,
    "milestone_coupons": 60 * 60,
    # Journeys enter and move members; welcome messages go out within the hour.
    "journeys": 60 * 60,
    "messages": 30,
}


def default_tasks(
    db: Database,
    cipher: FieldCipher,
    clock: Clock,
    settings: Settings,
    read_db: Database | None = None,
) -> list[Task]:
    """``read_db``, the read replica when one is set up, serves the scores job's reads."""
    from patron.analytics import jobs as analytics_jobs
    from patron.campaigns import jobs as campaign_jobs
    from patron.coupons import jobs as coupon_jobs
    from patron.journeys import runner as journeys
    from patron.ledger import jobs as ledger_jobs
    from patron.mall import jobs as mall_jobs
    from patron.messaging import broker, delivery
    from patron.privacy import retention
    from patron.risk import jobs as risk_jobs
    from patron.segments import jobs as segment_jobs
    from patron.service import jobs as service_jobs
    from patron.tiers.jobs import run_tiers
    from patron.webhooks import service as webhooks

    tz = business_tz(settings.business_timezone)
    sender = delivery.Sender.from_settings(settings, cipher)
    queue = broker.from_settings(settings)

    def points_reminders() -> object:
        from patron.ledger import service as ledger

        with db.unit_of_work() as session:
            days = ledger.get_points_settings(session).reminder_days
            return ledger_jobs.record_reminders(session, clock.now(), days, tz)

    def coupon_reminders() -> object:
        with db.unit_of_work() as session:
            return coupon_jobs.record_reminders(session, clock.now(), tz)

    def send_messages() -> object:
        # With a broker the job publishes and `patron messages consume` processes send.
        if queue is not None:
            return broker.publish_all(
                db,
                sender,
                queue,
                now=clock.now(),
                tz=tz,
                max_backlog=settings.message_broker_backlog,
            )
        return delivery.drain(db, sender, now=clock.now(), tz=tz)

    runs: dict[str, Callable[[], object]] = {
        "webhooks": lambda: webhooks.deliver_due(
            db, cipher, clock.now(), allowed=settings.webhook_allowed_networks
        ),
        "release_pending": lambda: ledger_jobs.run_release(db, clock.now(), tz),
        "expire_points": lambda: ledger_jobs.run_expire(db, clock.now()),
        "tiers": lambda: run_tiers(db, clock.now(), tz),
        "points_reminders": points_reminders,
        "coupon_reminders": coupon_reminders,
        "member_scores": lambda: analytics_jobs.run_scores(
            db, clock.now(), tz, force=False, read_db=read_db
        ),
        "analytics_alerts": lambda: analytics_jobs.run_alerts(db, clock.now(), tz),
        "mall_unclaimed": lambda: mall_jobs.run_release_unclaimed(db, clock.now(), tz),
        "mall_markdowns": lambda: mall_jobs.run_markdowns(db, clock.now(), tz),
        "mall_replenish": lambda: mall_jobs.run_replenish(db, clock.now(), tz),
        "expire_coupons": lambda: coupon_jobs.run_expire(db, clock.now()),
        "coupon_packs": lambda: coupon_jobs.run_auto(db, clock.now(), tz),
        "campaign_budgets": lambda: campaign_jobs.run_budget_alerts(db, clock.now()),
        "sla_breaches": lambda: service_jobs.run_breaches(db, clock.now()),
        "nps_surveys": lambda: service_jobs.run_nps_surveys(
            db, clock.now(), base_url=settings.public_base_url
        ),
        "risk_flags": lambda: risk_jobs.run(db, cipher, clock.now()),
        "retention": lambda: retention.run(
            db, clock.now(), timedelta(hours=settings.idempotency_retention_hours)
        ),
        "referrals": lambda: campaign_jobs.run_referrals(db, cipher, clock.now(), tz),
        "tags_after_orders": lambda: segment_jobs.run_tags_after_orders(db, clock.now(), tz),
        "tags": lambda: segment_jobs.run_tags(db, clock.now(), tz),
        "lifecycle_stages": lambda: segment_jobs.run_stages(db, clock.now(), tz),
        "recall_packs": lambda: campaign_jobs.run_recall(db, clock.now(), tz),
        "milestone_coupons": lambda: campaign_jobs.run_milestone_coupons(db, clock.now(), tz),
        "journeys": lambda: journeys.run_job(db, clock.now(), tz),
        "messages": send_messages,
    }
    return [Task(name, every, runs[name]) for name, every in SCHEDULE.items()]
