"""Scheduled campaign work: budget alerts (orders charge budgets without looking at alerts),
referrals (discover, reward after the qualifying order, claw back refunded ones), recall
packs for dormant members and the milestones' coupons."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from patron.auth.principal import Principal
from patron.campaigns import milestones, recall, referrals
from patron.campaigns import service as campaigns
from patron.db import Database
from patron.kit.crypto import FieldCipher
from patron.orders.service import make_ctx


def run_budget_alerts(db: Database, now: datetime) -> int:
    with db.unit_of_work() as session:
        return campaigns.run_budget_alerts(
            session, Principal.system("job:campaign_budgets"), now=now
        )


def run_referrals(db: Database, cipher: FieldCipher, now: datetime, tz: ZoneInfo) -> dict[str, int]:
    with db.unit_of_work() as session:
        ctx = make_ctx(session, Principal.system("job:referrals"), now, tz)
        return referrals.run_referrals(session, ctx, cipher)


def run_recall(db: Database, now: datetime, tz: ZoneInfo) -> recall.RecallReport:
    """Batches of ``batch`` members, one transaction each, until nobody is due."""
    total = recall.RecallReport(0, 0, 0)
    while True:
        with db.unit_of_work() as session:
            ctx = make_ctx(session, Principal.system("job:recall"), now, tz)
            done = recall.run(session, ctx)
        if not done.members:
            return total
        total = recall.RecallReport(
            total.members + done.members, total.points + done.points, total.coupons + done.coupons
        )


def run_milestone_coupons(db: Database, now: datetime, tz: ZoneInfo) -> dict[str, int]:
    with db.unit_of_work() as session:
        ctx = make_ctx(session, Principal.system("job:milestone_coupons"), now, tz)
        return milestones.issue_coupons(session, ctx)
