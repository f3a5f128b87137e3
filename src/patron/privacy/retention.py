"""Retention: technical records that can hold a trace of a person are deleted when they have
served their purpose (sign-in codes, webhook delivery attempts, idempotency records). One
transaction per kind; running it twice changes nothing more."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete

from patron.db import Database
from patron.idempotency import service as idempotency
from patron.otp.models import OtpCode
from patron.privacy.erasure import settings
from patron.webhooks.models import WebhookDelivery


def run(db: Database, now: datetime, idempotency_retention: timedelta) -> dict[str, int]:
    with db.unit_of_work() as session:
        s = settings(session)
        otp = session.execute(
            delete(OtpCode).where(OtpCode.created_at < now - timedelta(days=s.otp_retention_days))
        )
        deliveries = session.execute(
            delete(WebhookDelivery).where(
                WebhookDelivery.status.in_(("delivered", "dead")),
                WebhookDelivery.next_attempt_at < now - timedelta(days=s.delivery_retention_days),
            )
        )
        keys = idempotency.purge(session, now, idempotency_retention)
    return {
        "otp_codes": int(getattr(otp, "rowcount", 0) or 0),
        "deliveries": int(getattr(deliveries, "rowcount", 0) or 0),
        "idempotency_keys": keys,
    }
