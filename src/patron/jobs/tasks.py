"""The jobs the embedded scheduler runs, built from the app's state."""

from __future__ import annotations

from patron.config import Settings
from patron.db import Database
from patron.jobs.scheduler import Task
from patron.kit.clock import Clock
from patron.kit.crypto import FieldCipher
from patron.kit.timeutil import business_tz


def default_tasks(
    db: Database, cipher: FieldCipher, clock: Clock, settings: Settings
) -> list[Task]:
    from patron.analytics import jobs as analytics_jobs
    from patron.campaigns import jobs as campaign_jobs
    from patron.coupons import jobs as coupon_jobs
    from patron.ledger import jobs as ledger_jobs
    from patron.mall import jobs as mall_jobs
    from patron.webhooks import service as webhooks

    tz = business_tz(settings.business_timezone)
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
        # Hourly check, one run per business day.
        Task(
            "member_scores",
            60 * 60,
            lambda: analytics_jobs.run_scores(db, clock.now(), tz, force=False),
        ),
        Task(
            "mall_unclaimed", 60 * 60, lambda: mall_jobs.run_release_unclaimed(db, clock.now(), tz)
        ),
        Task("mall_markdowns", 60 * 60, lambda: mall_jobs.run_markdowns(db, clock.now(), tz)),
        Task("expire_coupons", 60 * 60, lambda: coupon_jobs.run_expire(db, clock.now())),
        Task("coupon_packs", 60 * 60, lambda: coupon_jobs.run_auto(db, clock.now(), tz)),
        Task("campaign_budgets", 5 * 60, lambda: campaign_jobs.run_budget_alerts(db, clock.now())),
        Task(
            "referrals",
            15 * 60,
            lambda: campaign_jobs.run_referrals(db, cipher, clock.now(), tz),
        ),
    ]
