"""Webhooks: endpoints, the event outbox, signed delivery with retries, and the delivery log.

Signature: ``X-Patron-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``.
Receivers recompute it over the raw body and reject stale timestamps (replays).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patron.audit import service as audit
from patron.auth.principal import Principal
from patron.db import Database
from patron.errors import Invalid, NotFound
from patron.kit.crypto import FieldCipher
from patron.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent

EVENT_TYPES: Final = (
    "order.recorded",
    "order.returned",
    "points.earned",
    "points.spent",
    "points.clawed_back",
    "tier.changed",
)
SECRET_CTX = "webhook.secret"
# Delay before attempt n+1 after n failures; after the last one the delivery is dead.
BACKOFF: Final = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=12),
)
MAX_ATTEMPTS: Final = len(BACKOFF) + 1
TIMEOUT_SECONDS: Final = 10.0


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, now: int, tolerance: int = 300) -> bool:
    """What a receiver does (also used by the tests)."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        ts = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - ts) > tolerance:
        return False
    expected = sign(secret, ts, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


# ---- endpoints -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreatedEndpoint:
    endpoint: WebhookEndpoint
    secret: str


def create_endpoint(
    session: Session,
    actor: Principal,
    cipher: FieldCipher,
    *,
    url: str,
    events: list[str],
    description: str,
    now: datetime,
) -> CreatedEndpoint:
    session.info.pop(_ENDPOINTS, None)
    if not (url.startswith("https://") or url.startswith("http://")):
        raise Invalid("invalid_url", "The webhook URL must start with https:// or http://.")
    unknown = sorted(set(events) - set(EVENT_TYPES))
    if unknown or not events:
        raise Invalid(
            "unknown_event",
            f"Subscribe to one or more of: {', '.join(EVENT_TYPES)}.",
            details={"unknown": unknown},
        )
    secret = "whsec_" + secrets.token_urlsafe(24)
    ep = WebhookEndpoint(
        url=url,
        description=description,
        secret_enc=cipher.encrypt(secret, SECRET_CTX),
        events=sorted(set(events)),
        is_active=True,
        created_at=now,
    )
    session.add(ep)
    session.flush()
    audit.record(
        session,
        actor,
        "webhook.create",
        "webhook",
        str(ep.id),
        None,
        {"url": url, "events": ep.events},
        at=now,
    )
    return CreatedEndpoint(ep, secret)


def list_endpoints(session: Session) -> list[WebhookEndpoint]:
    return list(session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)))


def get_endpoint(session: Session, endpoint_id: int) -> WebhookEndpoint:
    ep = session.get(WebhookEndpoint, endpoint_id)
    if ep is None:
        raise NotFound("webhook_not_found", f"No webhook endpoint {endpoint_id}.")
    return ep


def deactivate_endpoint(
    session: Session, actor: Principal, endpoint_id: int, now: datetime
) -> WebhookEndpoint:
    session.info.pop(_ENDPOINTS, None)
    ep = get_endpoint(session, endpoint_id)
    if ep.is_active:
        ep.is_active = False
        session.flush()
        audit.record(
            session,
            actor,
            "webhook.deactivate",
            "webhook",
            str(ep.id),
            {"active": True},
            {"active": False},
            at=now,
        )
    return ep


def deliveries(
    session: Session, endpoint_id: int, *, limit: int, offset: int
) -> tuple[list[tuple[WebhookDelivery, WebhookEvent]], int]:
    get_endpoint(session, endpoint_id)
    total = session.scalar(
        select(func.count())
        .select_from(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint_id)
    )
    rows = session.execute(
        select(WebhookDelivery, WebhookEvent)
        .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
        .where(WebhookDelivery.endpoint_id == endpoint_id)
        .order_by(WebhookDelivery.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return [(d, e) for d, e in rows], int(total or 0)


# ---- the outbox ------------------------------------------------------------------------------


_ENDPOINTS = "patron.webhooks.active_endpoints"


def emit(session: Session, event_type: str, payload: dict[str, Any], now: datetime) -> None:
    """Record an event and a pending delivery per subscribed endpoint, in the caller's
    transaction: if the change rolls back, so does its event."""
    if event_type not in EVENT_TYPES:  # pragma: no cover - programming error
        raise ValueError(event_type)
    active = session.info.get(_ENDPOINTS)
    if active is None:  # one read per transaction; endpoint changes drop it
        active = session.info[_ENDPOINTS] = list(
            session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.is_active))
        )
    endpoints = [ep for ep in active if event_type in ep.events]
    if not endpoints:
        return
    event = WebhookEvent(event_type=event_type, payload=payload, created_at=now)
    session.add(event)
    session.flush()
    for ep in endpoints:
        session.add(
            WebhookDelivery(
                endpoint_id=ep.id,
                event_id=event.id,
                status="pending",
                attempts=0,
                next_attempt_at=now,
            )
        )
    session.flush()


# ---- delivery --------------------------------------------------------------------------------


@dataclass
class DeliveryReport:
    delivered: int = 0
    failed: int = 0
    dead: int = 0


def deliver_due(
    db: Database,
    cipher: FieldCipher,
    now: datetime,
    *,
    client: httpx.Client | None = None,
    limit: int = 100,
) -> DeliveryReport:
    """Send due deliveries once each. Safe to run from several workers: on PostgreSQL each
    claims its rows with SKIP LOCKED; the HTTP call happens outside any transaction."""
    report = DeliveryReport()
    own = client is None
    http = client or httpx.Client(timeout=TIMEOUT_SECONDS, follow_redirects=False)
    try:
        with db.unit_of_work() as session:
            q = (
                select(WebhookDelivery.id)
                .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
                .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
                .limit(limit)
            )
            if db.dialect == "postgresql":
                q = q.with_for_update(skip_locked=True)
            ids = list(session.scalars(q))
            # Claim: push next_attempt_at forward so a concurrent run skips these meanwhile.
            jobs = []
            for d_id in ids:
                d = session.get(WebhookDelivery, d_id)
                if d is None:  # pragma: no cover
                    continue
                ep = session.get(WebhookEndpoint, d.endpoint_id)
                ev = session.get(WebhookEvent, d.event_id)
                if ep is None or ev is None or not ep.is_active:
                    d.status = "dead"
                    d.last_error = "endpoint removed or inactive"
                    continue
                d.next_attempt_at = now + timedelta(seconds=TIMEOUT_SECONDS * 3)
                jobs.append((d.id, ep.url, cipher.decrypt(ep.secret_enc, SECRET_CTX), ev))
            payloads = [
                (d_id, url, secret, ev.id, ev.event_type, _body(ev))
                for d_id, url, secret, ev in jobs
            ]
        for d_id, url, secret, event_id, event_type, body in payloads:
            code, error = _post(http, url, secret, event_id, event_type, body, now)
            with db.unit_of_work() as session:
                d = session.get(WebhookDelivery, d_id)
                if d is None:  # pragma: no cover
                    continue
                d.attempts += 1
                d.last_attempt_at = now
                d.last_status_code = code
                d.last_error = error
                if code is not None and 200 <= code < 300:
                    d.status = "delivered"
                    d.delivered_at = now
                    report.delivered += 1
                elif d.attempts >= MAX_ATTEMPTS:
                    d.status = "dead"
                    report.dead += 1
                else:
                    d.next_attempt_at = now + BACKOFF[d.attempts - 1]
                    report.failed += 1
    finally:
        if own:
            http.close()
    return report


def _body(ev: WebhookEvent) -> bytes:
    doc = {
        "id": ev.id,
        "type": ev.event_type,
        "created_at": ev.created_at.isoformat(),
        "data": ev.payload,
    }
    return json.dumps(doc, ensure_ascii=False, sort_keys=True).encode()


def _post(
    http: httpx.Client,
    url: str,
    secret: str,
    event_id: int,
    event_type: str,
    body: bytes,
    now: datetime,
) -> tuple[int | None, str | None]:
    ts = int(now.timestamp())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Patron-Webhooks/1",
        "X-Patron-Event": event_type,
        "X-Patron-Event-Id": str(event_id),
        "X-Patron-Signature": sign(secret, ts, body),
    }
    try:
        resp = http.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {str(exc)[:200]}"
    if 200 <= resp.status_code < 300:
        return resp.status_code, None
    return resp.status_code, resp.text[:200]
