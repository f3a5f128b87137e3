"""Data-key rotation without downtime: every process reads the old and the new key and writes
with the new one; this re-encrypts what is still under an old key, a batch per short
transaction (no long locks), each row updated only if it did not change meanwhile.
Idempotency records are not rewritten: they are deleted within their retention time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import and_, select, update
from sqlalchemy.orm import Session

from patron.db import Database
from patron.kit.crypto import FieldCipher
from patron.members.models import Member
from patron.members.service import EMAIL_CTX, PHONE_CTX
from patron.webhooks.models import WebhookEndpoint
from patron.webhooks.service import SECRET_CTX


@dataclass
class RotationReport:
    members: int = 0
    webhooks: int = 0
    left: int = 0


def _members_batch(
    session: Session, cipher: FieldCipher, after: int, batch: int
) -> tuple[int, int]:
    rows = session.execute(
        select(Member.id, Member.phone_enc, Member.email_enc)
        .where(Member.id > after)
        .order_by(Member.id)
        .limit(batch)
    ).all()
    changed = 0
    for mid, phone, email in rows:
        values = {}
        if not cipher.is_current(phone):
            values["phone_enc"] = cipher.encrypt(cipher.decrypt(phone, PHONE_CTX), PHONE_CTX)
        if email is not None and not cipher.is_current(email):
            values["email_enc"] = cipher.encrypt(cipher.decrypt(email, EMAIL_CTX), EMAIL_CTX)
        if not values:
            continue
        # only if the row still holds what was read (a concurrent change wrote the new key)
        same = and_(
            Member.phone_enc == phone,
            Member.email_enc == email if email is not None else Member.email_enc.is_(None),
        )
        res = session.execute(update(Member).where(Member.id == mid, same).values(**values))
        changed += int(getattr(res, "rowcount", 0) or 0)
    return (int(rows[-1][0]) if rows else after), changed if rows else -1


def rotate(
    db: Database,
    cipher: FieldCipher,
    *,
    batch: int = 1000,
    progress: Callable[[int], None] | None = None,
) -> RotationReport:
    report = RotationReport()
    after = 0
    while True:
        with db.unit_of_work() as session:
            after, changed = _members_batch(session, cipher, after, batch)
        if changed < 0:
            break
        report.members += changed
        if progress:
            progress(changed)
    with db.unit_of_work() as session:
        for ep_id, secret in session.execute(
            select(WebhookEndpoint.id, WebhookEndpoint.secret_enc)
        ).all():
            if cipher.is_current(secret):
                continue
            fresh = cipher.encrypt(cipher.decrypt(secret, SECRET_CTX), SECRET_CTX)
            session.execute(
                update(WebhookEndpoint)
                .where(WebhookEndpoint.id == ep_id, WebhookEndpoint.secret_enc == secret)
                .values(secret_enc=fresh)
            )
            report.webhooks += 1
    report.left = remaining(db, cipher)
    return report


def remaining(db: Database, cipher: FieldCipher) -> int:
    """Fields still under another key than the current one (0 when rotation is done)."""
    left = 0
    with db.unit_of_work() as session:
        for phone, email in session.execute(select(Member.phone_enc, Member.email_enc)):
            left += not cipher.is_current(phone)
            left += email is not None and not cipher.is_current(email)
        for (secret,) in session.execute(select(WebhookEndpoint.secret_enc)):
            left += not cipher.is_current(secret)
    return left
