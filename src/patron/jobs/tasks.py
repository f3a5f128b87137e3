"""The jobs the embedded scheduler runs, built from the app's state."""

from __future__ import annotations

from datetime import timedelta

from patron.config import Settings
from patron.db import Database
from patron.jobs.scheduler import Task
from patron.kit.clock import Clock
from patron.kit.crypto import FieldCipher
from patron.kit.timeutil import business_tz


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

    return [
        Task(
            "webhooks",
            10,
            lambda: webhooks.deliver_due(
                db, cipher, clock.now(), allowed=settings.webhook_allowed_networks
            ),
        ),
        Task("release_pending", 15 * 60, lambda: ledger_jobs.run_release(db, clock.now(), tz)),
        Task("expire_points", 60 * 60, lambda: ledger_jobs.run_expire(db, clock.now())),
        # Members whose evaluation date has come (an evaluated member gets its next date, so a
        # run finds only those due since the last); downgrades happen here.
        Task("tiers", 60 * 60, lambda: run_tiers(db, clock.now(), tz)),
        # Expiry notices for points and coupons: one event per member and day / per coupon.
        Task("points_reminders", 60 * 60, points_reminders),
        Task("coupon_reminders", 60 * 60, coupon_reminders),
        # Hourly check, one run per business day.
        Task(
            "member_scores",
            60 * 60,
            lambda: analytics_jobs.run_scores(db, clock.now(), tz, force=False, read_db=read_db),
        ),
        Task("analytics_alerts", 60 * 60, lambda: analytics_jobs.run_alerts(db, clock.now(), tz)),
        Task(
            "mall_unclaimed", 60 * 60, lambda: mall_jobs.run_release_unclaimed(db, clock.now(), tz)
        ),
        Task("mall_markdowns", 60 * 60, lambda: mall_jobs.run_markdowns(db, clock.now(), tz)),
        Task("mall_replenish", 60 * 60, lambda: mall_jobs.run_replenish(db, clock.now(), tz)),
        Task("expire_coupons", 60 * 60, lambda: coupon_jobs.run_expire(db, clock.now())),
        Task("coupon_packs", 60 * 60, lambda: coupon_jobs.run_auto(db, clock.now(), tz)),
        Task("campaign_budgets", 5 * 60, lambda: campaign_jobs.run_budget_alerts(db, clock.now())),
        Task("sla_breaches", 60, lambda: service_jobs.run_breaches(db, clock.now())),
        # Hourly check; a round goes out every interval_days (service settings).
        Task(
            "nps_surveys",
            60 * 60,
            lambda: service_jobs.run_nps_surveys(
                db, clock.now(), base_url=settings.public_base_url
            ),
        ),
        Task("risk_flags", 60 * 60, lambda: risk_jobs.run(db, cipher, clock.now())),
        Task(
            "retention",
            60 * 60,
            lambda: retention.run(
                db, clock.now(), timedelta(hours=settings.idempotency_retention_hours)
            ),
        ),
        Task(
            "referrals",
            15 * 60,
            lambda: campaign_jobs.run_referrals(db, cipher, clock.now(), tz),
        ),
        # Rule tags: after orders every minute (those members only), all members hourly.
        Task(
            "tags_after_orders", 60, lambda: segment_jobs.run_tags_after_orders(db, clock.now(), tz)
        ),
        Task("tags", 60 * 60, lambda: segment_jobs.run_tags(db, clock.now(), tz)),
        # Lifecycle stages: only changes are written, so a repeat within the day is cheap.
        Task(
            "lifecycle_stages", 24 * 60 * 60, lambda: segment_jobs.run_stages(db, clock.now(), tz)
        ),
        Task("recall_packs", 60 * 60, lambda: campaign_jobs.run_recall(db, clock.now(), tz)),
        Task(
            "milestone_coupons",
            60 * 60,
            lambda: campaign_jobs.run_milestone_coupons(db, clock.now(), tz),
        ),
        # Journeys enter and move members; welcome messages go out within the hour.
        Task("journeys", 60 * 60, lambda: journeys.run_job(db, clock.now(), tz)),
        Task("messages", 30, send_messages),
    ]
