"""Webhooks: endpoints, the event outbox, signed delivery with retries, and the delivery log.

Signature: ``X-Patron-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``.
Receivers recompute it over the raw body and reject stale timestamps (replays).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patron.audit import service as audit
from patron.auth.principal import Principal
from patron.db import Database
from patron.errors import Conflict, Invalid, NotFound
from patron.kit.crypto import FieldCipher
from patron.webhooks import egress
from patron.webhooks import events as event_log
from patron.webhooks.egress import Network, Resolver
from patron.webhooks.events import EVENT_TYPES
from patron.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent

__all__ = ["EVENT_TYPES", "deliver_due", "emit", "sign", "verify"]
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
    allowed: Sequence[Network] = (),
    resolver: Resolver | None = None,
) -> CreatedEndpoint:
    event_log.forget_endpoints(session)
    if not (url.startswith("https://") or url.startswith("http://")):
        raise Invalid("invalid_url", "The webhook URL must start with https:// or http://.")
    try:
        egress.check_new_endpoint(url, allowed, resolver)
    except egress.RefusedDestination as exc:
        if exc.kind == "invalid_url":
            raise Invalid(
                "invalid_url",
                "The webhook URL must be an http:// or https:// address with a host name and "
                "no user name or password in it.",
            ) from exc
        raise Invalid(
            "webhook_destination_refused",
            "Webhooks are only sent to public internet addresses; this URL names or resolves "
            "to a private, loopback, link-local or reserved address. An operator can allow a "
            "network with the PATRON_WEBHOOK_ALLOWED_NETWORKS setting.",
        ) from exc
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
    event_log.forget_endpoints(session)
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


# ---- the outbox (see events.py) --------------------------------------------------------------

emit = event_log.emit

# ---- delivery --------------------------------------------------------------------------------


@dataclass
class DeliveryReport:
    delivered: int = 0
    failed: int = 0
    dead: int = 0


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one attempt leaves in the log: status, timing and an error class — never the
    receiver's reply (it could be an internal page the URL was pointed at)."""

    status_code: int | None
    error: str | None
    duration_ms: int | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def deliver_due(
    db: Database,
    cipher: FieldCipher,
    now: datetime,
    *,
    allowed: Sequence[Network] = (),
    client: httpx.Client | None = None,
    resolver: Resolver | None = None,
    limit: int = 100,
) -> DeliveryReport:
    """Send due deliveries once each. Safe to run from several workers: on PostgreSQL each
    claims its rows with SKIP LOCKED; the HTTP call happens outside any transaction.

    ``allowed`` are the networks an operator lets webhooks reach besides public addresses
    (``PATRON_WEBHOOK_ALLOWED_NETWORKS``); every delivery checks its destination again."""
    report = DeliveryReport()
    own = client is None
    # No kept-alive connections: a pooled TLS connection to an address would otherwise carry a
    # request for another name on that address without verifying the certificate for it.
    http = client or httpx.Client(
        timeout=TIMEOUT_SECONDS,
        follow_redirects=False,
        limits=httpx.Limits(max_keepalive_connections=0),
    )
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
                    d.last_error = "endpoint_inactive"
                    continue
                d.next_attempt_at = now + timedelta(seconds=TIMEOUT_SECONDS * 3)
                jobs.append((d.id, ep.url, cipher.decrypt(ep.secret_enc, SECRET_CTX), ev))
            payloads = [
                (d_id, url, secret, ev.id, ev.event_type, _body(ev))
                for d_id, url, secret, ev in jobs
            ]
        for d_id, url, secret, event_id, event_type, body in payloads:
            attempt = _post(http, url, secret, event_id, event_type, body, now, allowed, resolver)
            with db.unit_of_work() as session:
                d = session.get(WebhookDelivery, d_id)
                if d is None:  # pragma: no cover
                    continue
                d.attempts += 1
                d.last_attempt_at = now
                d.last_status_code = attempt.status_code
                d.last_error = attempt.error
                d.last_duration_ms = attempt.duration_ms
                if attempt.ok:
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
    return json.dumps(event_log.document(ev), ensure_ascii=False, sort_keys=True).encode()


def _post(
    http: httpx.Client,
    url: str,
    secret: str,
    event_id: int,
    event_type: str,
    body: bytes,
    now: datetime,
    allowed: Sequence[Network],
    resolver: Resolver | None,
) -> Attempt:
    try:
        target = egress.resolve(url, allowed, resolver)
    except egress.RefusedDestination as exc:
        return Attempt(None, exc.kind, None)
    pinned_url, host_header, extensions = target.pinned()
    ts = int(now.timestamp())
    headers = {
        **host_header,
        "Content-Type": "application/json",
        "User-Agent": "Patron-Webhooks/1",
        "X-Patron-Event": event_type,
        "X-Patron-Event-Id": str(event_id),
        "X-Patron-Signature": sign(secret, ts, body),
    }
    started = time.monotonic()
    try:
        request = http.build_request(
            "POST", pinned_url, content=body, headers=headers, extensions=extensions
        )
        # The reply is not read: only its status matters (and a large body costs nothing).
        response = http.send(request, stream=True, follow_redirects=False)
        response.close()
    except httpx.TimeoutException:
        return Attempt(None, "timeout", _ms(started))
    except httpx.ConnectError:
        return Attempt(None, "connect_error", _ms(started))
    except httpx.HTTPError:
        return Attempt(None, "transport_error", _ms(started))
    code = response.status_code
    if 200 <= code < 300:
        return Attempt(code, None, _ms(started))
    # Redirects are not followed: the next hop would escape the destination check.
    return Attempt(code, "redirect" if 300 <= code < 400 else "http_status", _ms(started))


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


# ---- resend ----------------------------------------------------------------------------------


def resend(
    session: Session, actor: Principal, delivery_id: int, now: datetime
) -> tuple[WebhookDelivery, WebhookEvent]:
    """Queue one delivery again now, with a fresh set of attempts (audited)."""
    d = session.get(WebhookDelivery, delivery_id)
    if d is None:
        raise NotFound("delivery_not_found", f"No webhook delivery {delivery_id}.")
    ep = get_endpoint(session, d.endpoint_id)
    if not ep.is_active:
        raise Conflict(
            "webhook_inactive",
            "This endpoint no longer receives deliveries; subscribe it again to resend.",
        )
    before = {"status": d.status, "attempts": d.attempts}
    d.status = "pending"
    d.attempts = 0
    d.next_attempt_at = now
    d.delivered_at = None
    session.flush()
    audit.record(
        session,
        actor,
        "webhook.resend",
        "webhook",
        str(ep.id),
        before,
        {"status": "pending", "delivery_id": d.id, "event_id": d.event_id},
        at=now,
    )
    ev = session.get(WebhookEvent, d.event_id)
    assert ev is not None  # the foreign key holds it
    return d, ev
