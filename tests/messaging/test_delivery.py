"""The queue and the sender on SQLite and PostgreSQL: consent at send time, caps, quiet hours,
retries and dead letters, links that track and unsubscribe."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from patron.members.models import ConsentEvent, Member, MemberConsent
from patron.messaging import service
from patron.messaging.channels import SmtpEmailChannel
from patron.messaging.delivery import drain, send_due
from patron.messaging.models import Message
from tests.messaging.conftest import BASE, free_port

TZ = ZoneInfo("Asia/Shanghai")


def _ids(database: Any, *member_nos: str) -> list[int]:
    with database.unit_of_work() as s:
        return [s.scalar(select(Member.id).where(Member.member_no == no)) for no in member_nos]


def _queue(database: Any, clock: Any, tpl: str, member_ids: list[int], key: str = "c1") -> int:
    with database.unit_of_work() as s:
        drafts = [service.Draft(m, f"test:{key}:{m}") for m in member_ids]
        return service.enqueue(
            s, tpl, drafts, source_kind="campaign", source_code=key, now=clock.now()
        )


def _messages(database: Any) -> list[Message]:
    with database.unit_of_work() as s:
        rows = list(s.scalars(select(Message).order_by(Message.id)))
        s.expunge_all()
        return rows


def _part(mail: Any, kind: str) -> str:
    [part] = [p for p in mail.walk() if p.get_content_type() == kind]
    return str(part.get_payload(decode=True).decode())


def _settings(client: Any, auth_headers: Any, **changes: Any) -> None:
    h = auth_headers("admin", fresh=True)
    cur = client.get("/api/v1/messaging/settings", headers=h).json()
    resp = client.put("/api/v1/messaging/settings", json={**cur, **changes}, headers=h)
    assert resp.status_code == 200, resp.text


def test_an_email_goes_once_with_tracked_links_and_the_consent_it_relied_on(
    database, clock, smtp, email_sender, template, emailable
):
    sink, _ = smtp
    template()
    no = emailable()
    [mid] = _ids(database, no)
    assert _queue(database, clock, "hello", [mid]) == 1
    assert _queue(database, clock, "hello", [mid]) == 0  # the same key queues nothing twice
    report = drain(database, email_sender, now=clock.now(), tz=TZ)
    assert report.sent == 1
    assert drain(database, email_sender, now=clock.now(), tz=TZ).sent == 0
    assert len(sink.received) == 1
    mail = sink.received[0]
    text = _part(mail, "text/plain")
    assert mail["To"] == "m0@example.com"
    assert "https://shop.example.com/new" not in text  # rewritten to a signed short link
    assert f"{BASE}/m/c/" in text and f"{BASE}/m/u/" in text
    assert mail["List-Unsubscribe"].startswith(f"<{BASE}/m/u/")
    [msg] = _messages(database)
    assert msg.status == "sent" and msg.channel == "email"
    with database.unit_of_work() as s:
        event_id = s.scalar(
            select(ConsentEvent.id).where(
                ConsentEvent.member_id == mid, ConsentEvent.channel == "email"
            )
        )
    assert msg.consent_event_id == event_id and msg.consent_at is not None


def test_consent_withdrawn_after_enqueue_means_not_sent(
    database, clock, client, auth_headers, smtp, email_sender, template, emailable
):
    sink, _ = smtp
    template()
    no = emailable()
    [mid] = _ids(database, no)
    _queue(database, clock, "hello", [mid])
    resp = client.put(
        f"/api/v1/members/{no}/consents", json={"email": False}, headers=auth_headers("admin")
    )
    assert resp.status_code == 200, resp.text
    report = drain(database, email_sender, now=clock.now(), tz=TZ)
    assert report.sent == 0 and report.suppressed == 1
    assert sink.received == []
    [msg] = _messages(database)
    assert (msg.status, msg.last_error) == ("suppressed", "no_consent")


def test_the_preferred_channel_falls_back_to_one_with_consent(
    database, clock, smtp, email_sender, template, make_member
):
    sink, _ = smtp
    template()
    # Prefers SMS but consented to email only; this deployment has email only.
    no = make_member(email="fb@example.com", preferred_channel="sms", consents={"email": True})
    _queue(database, clock, "hello", _ids(database, no))
    assert drain(database, email_sender, now=clock.now(), tz=TZ).sent == 1
    assert [m["To"] for m in sink.received] == ["fb@example.com"]


def test_over_the_daily_cap_is_deferred_or_dropped_as_configured(
    database, clock, client, auth_headers, smtp, email_sender, template, emailable
):
    sink, _ = smtp
    template()
    _settings(client, auth_headers, daily_cap=1, weekly_cap=0, over_cap="defer")
    [a] = _ids(database, emailable())
    _queue(database, clock, "hello", [a], key="c1")
    _queue(database, clock, "hello", [a], key="c2")
    r = drain(database, email_sender, now=clock.now(), tz=TZ)
    assert (r.sent, r.deferred) == (1, 1)
    deferred = [m for m in _messages(database) if m.status == "queued"]
    assert len(deferred) == 1 and deferred[0].deferrals == 1
    # 08:00 the next business day (after the quiet hours end).
    assert deferred[0].next_attempt_at.astimezone(TZ).strftime("%d %H:%M") == "02 08:00"
    clock.set(deferred[0].next_attempt_at)
    assert drain(database, email_sender, now=clock.now(), tz=TZ).sent == 1
    assert len(sink.received) == 2

    _settings(client, auth_headers, over_cap="drop")
    _queue(database, clock, "hello", [a], key="c3")
    r = drain(database, email_sender, now=clock.now(), tz=TZ)
    assert (r.sent, r.dropped) == (0, 1)
    assert _messages(database)[-1].status == "dropped"
    assert len(sink.received) == 2


def test_quiet_hours_hold_messages_until_morning(
    database, clock, smtp, email_sender, template, emailable
):
    sink, _ = smtp
    template()
    _queue(database, clock, "hello", _ids(database, emailable()))
    night = clock.now().replace(hour=14)  # 22:00 in Shanghai
    r = send_due(database, email_sender, now=night, tz=TZ)
    assert r.quiet and r.sent == 0 and sink.received == []
    morning = night + timedelta(hours=10)  # 08:00
    assert send_due(database, email_sender, now=morning, tz=TZ).sent == 1


def test_a_failing_provider_is_retried_with_backoff_then_dead_lettered(
    database, clock, client, auth_headers, template, emailable, make_sender, smtp
):
    sink, port = smtp
    template()
    _settings(client, auth_headers, max_attempts=3, daily_cap=0, weekly_cap=0)
    [mid] = _ids(database, emailable())
    _queue(database, clock, "hello", [mid])
    broken = make_sender({"email": SmtpEmailChannel("127.0.0.1", free_port(), sender="x@e.com")})
    r = send_due(database, broken, now=clock.now(), tz=TZ)
    assert r.retried == 1
    [msg] = _messages(database)
    assert (msg.status, msg.attempts, msg.last_error) == ("queued", 1, "connect_error")
    assert msg.next_attempt_at == clock.now() + timedelta(minutes=1)
    # Not due before the backoff has passed.
    assert send_due(database, broken, now=clock.now(), tz=TZ).retried == 0
    clock.advance(timedelta(minutes=1))
    assert send_due(database, broken, now=clock.now(), tz=TZ).retried == 1
    clock.advance(timedelta(minutes=5))
    assert send_due(database, broken, now=clock.now(), tz=TZ).dead == 1
    [msg] = _messages(database)
    assert (msg.status, msg.attempts) == ("dead", 3)
    # Visible to staff, and a retry with a working provider sends it once.
    h = auth_headers("admin", fresh=True)
    dead = client.get("/api/v1/messaging/dead-letters", headers=h).json()
    assert [d["id"] for d in dead] == [msg.id]
    resp = client.post(f"/api/v1/messaging/messages/{msg.id}/retry", headers=h)
    assert resp.status_code == 200, resp.text
    again = client.post(f"/api/v1/messaging/messages/{msg.id}/retry", headers=h)
    assert again.status_code == 409
    working = make_sender({"email": SmtpEmailChannel("127.0.0.1", port, sender="x@e.com")})
    assert drain(database, working, now=clock.now(), tz=TZ).sent == 1
    assert len(sink.received) == 1


def test_clicks_are_counted_and_unsubscribe_withdraws_that_channel(
    database, clock, client, auth_headers, smtp, email_sender, template, emailable
):
    sink, _ = smtp
    template()
    no = emailable(sms=True)
    _queue(database, clock, "hello", _ids(database, no))
    drain(database, email_sender, now=clock.now(), tz=TZ)
    text = _part(sink.received[0], "text/plain")
    click = next(w for w in text.split() if "/m/c/" in w).removeprefix(BASE)
    unsub = next(w for w in text.split() if "/m/u/" in w).removeprefix(BASE)
    resp = client.get(click, follow_redirects=False)
    assert resp.status_code == 302 and resp.headers["location"] == "https://shop.example.com/new"
    client.get(click, follow_redirects=False)
    assert client.get(click[:-3] + "xyz", follow_redirects=False).status_code == 404  # forged
    page = client.get(unsub)
    assert page.status_code == 200 and "不再通过电子邮件接收营销信息" in page.text
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    done = client.post(unsub, data={"csrf_token": token})
    assert done.status_code == 200 and 'id="unsubscribed"' in done.text
    [msg] = _messages(database)
    assert msg.clicks == 2 and msg.clicked_at is not None and msg.unsubscribed_at is not None
    with database.unit_of_work() as s:
        consents = dict(
            s.execute(
                select(MemberConsent.channel, MemberConsent.granted)
                .join(Member, Member.id == MemberConsent.member_id)
                .where(Member.member_no == no)
            ).all()
        )
    assert consents == {"email": False, "sms": True}
    report = client.get(
        "/api/v1/messaging/report?kind=campaign", headers=auth_headers("admin")
    ).json()
    assert report[0]["clicked"] == 1 and report[0]["unsubscribed"] == 1 and report[0]["sent"] == 1


def test_opening_an_email_loads_its_image_and_counts_as_opened(
    database, clock, client, auth_headers, smtp, email_sender, template, emailable
):
    sink, _ = smtp
    template(body="{{name}}, <b>new</b> & more:\nhttps://shop.example.com/new\n\nSee you")
    no = emailable()
    _queue(database, clock, "hello", _ids(database, no))
    drain(database, email_sender, now=clock.now(), tz=TZ)
    mail = sink.received[0]
    assert mail.get_content_type() == "multipart/alternative"
    page = _part(mail, "text/html")
    # The text is escaped, its (short) link is an anchor, and the opening image comes last.
    assert "&lt;b&gt;new&lt;/b&gt; &amp; more" in page and "<b>" not in page
    assert f'<a href="{BASE}/m/c/' in page and page.count("<p>") == 3
    pixel = page.split('<img src="')[1].split('"')[0]
    assert pixel.startswith(f"{BASE}/m/o/")
    [msg] = _messages(database)
    assert msg.opened_at is None and msg.status == "sent"
    later = clock.now() + timedelta(minutes=3)
    clock.set(later)
    resp = client.get(pixel.removeprefix(BASE))
    assert resp.status_code == 200 and resp.headers["content-type"] == "image/gif"
    assert resp.content.startswith(b"GIF89a") and "no-store" in resp.headers["cache-control"]
    clock.set(later + timedelta(minutes=3))
    assert client.get(pixel.removeprefix(BASE)).status_code == 200  # opened again: first kept
    [msg] = _messages(database)
    assert msg.status == "delivered" and msg.opened_at == later and msg.clicks == 0
    # A forged token, or another message part's token, opens nothing.
    assert client.get(pixel.removeprefix(BASE)[:-3] + "xyz").status_code == 404
    unsub = next(w for w in _part(mail, "text/plain").split() if "/m/u/" in w)
    assert client.get("/m/o/" + unsub.rsplit("/", 1)[1]).status_code == 404
    report = client.get(
        "/api/v1/messaging/report?kind=campaign", headers=auth_headers("admin")
    ).json()
    assert report[0]["opened"] == 1 and report[0]["clicked"] == 0


def test_without_open_tracking_an_email_is_plain_text(
    database, clock, client, auth_headers, smtp, email_sender, template, emailable
):
    sink, _ = smtp
    _settings(client, auth_headers, track_opens=False)
    template()
    _queue(database, clock, "hello", _ids(database, emailable()))
    drain(database, email_sender, now=clock.now(), tz=TZ)
    mail = sink.received[0]
    assert mail.get_content_type() == "text/plain" and "/m/o/" not in mail.as_string()


class _Recorder:
    """A channel that accepts everything and answers a provider id."""

    name = "sms"

    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send_batch(self, messages: Any) -> list[Any]:
        self.sent.extend(messages)
        return [f"prov-{m.message_id}" for m in messages]


def test_signed_delivery_reports_mark_messages_delivered(
    database, clock, template, make_member, make_sender
):
    import json
    import time

    from fastapi.testclient import TestClient

    from patron.app import create_app
    from patron.webhooks.service import sign
    from tests.conftest import make_settings

    app = create_app(
        make_settings(database, messaging_callback_secret="cb-secret"), database, clock
    )
    template()
    no = make_member(consents={"sms": True})
    _queue(database, clock, "hello", _ids(database, no))
    channel = _Recorder()
    assert drain(database, make_sender({"sms": channel}), now=clock.now(), tz=TZ).sent == 1
    [msg] = _messages(database)
    assert channel.sent[0].address == "+8613900000000" and msg.provider_id == f"prov-{msg.id}"
    body = json.dumps([{"provider_id": msg.provider_id, "status": "delivered"}]).encode()
    with TestClient(app) as c:
        url = "/api/v1/messaging/callbacks/sms"
        forged = c.post(url, content=body, headers={"X-Patron-Signature": "t=1,v1=00"})
        assert forged.status_code == 401
        assert _messages(database)[0].status == "sent"
        signed = sign("cb-secret", int(time.time()), body)
        ok = c.post(url, content=body, headers={"X-Patron-Signature": signed})
        assert ok.status_code == 200 and ok.json() == {"updated": 1}
    [msg] = _messages(database)
    assert msg.status == "delivered" and msg.delivered_at is not None
    assert msg.opened_at is None
    # A read receipt: the message is opened once, and the delivery report counts it.
    from patron.messaging import service as messaging

    with database.unit_of_work() as s:
        [before] = messaging.report(s, kind="campaign")
    assert (before.delivered, before.opened) == (1, 0)
    opened = json.dumps([{"provider_id": msg.provider_id, "status": "opened"}]).encode()
    with TestClient(app) as c:
        for _ in range(2):
            signed = sign("cb-secret", int(time.time()), opened)
            ok = c.post(url, content=opened, headers={"X-Patron-Signature": signed})
            assert ok.status_code == 200 and ok.json() == {"updated": 1}
    [again] = _messages(database)
    assert again.status == "delivered" and again.opened_at is not None
    with database.unit_of_work() as s:
        [after] = messaging.report(s, kind="campaign")
    assert (after.delivered, after.opened, after.clicked) == (1, 1, 0)


def test_unknown_template_variables_are_refused_at_save(client, auth_headers):
    resp = client.put(
        "/api/v1/message-templates/bad",
        json={"name": "Bad", "texts": {"en": {"body": "Hi {{nickname}} {{name}}"}}},
        headers=auth_headers("admin"),
    )
    assert resp.status_code == 422
    err = resp.json()["error"]
    assert err["code"] == "message_template_variable" and err["details"]["unknown"] == ["nickname"]
    assert client.get("/api/v1/message-templates", headers=auth_headers("admin")).json() == []


def test_workers_sharing_the_queue_send_each_message_once(
    database, clock, template, make_member, make_sender
):
    """PostgreSQL: several senders claim with SKIP LOCKED; none sends a message another took."""
    import threading

    import pytest

    if database.dialect != "postgresql":
        pytest.skip("concurrent workers share the queue on PostgreSQL")
    template()
    nos = [make_member(consents={"sms": True}) for _ in range(30)]
    _queue(database, clock, "hello", _ids(database, *nos))
    channel = _Recorder()
    lock = threading.Lock()
    original = channel.send_batch

    def send_batch(messages: Any) -> list[Any]:
        with lock:
            return original(messages)

    channel.send_batch = send_batch  # type: ignore[method-assign]
    sender = make_sender({"sms": channel})
    barrier = threading.Barrier(3)

    def work() -> None:
        barrier.wait()
        while send_due(database, sender, now=clock.now(), tz=TZ, limit=4).sent:
            pass

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [m.message_id for m in channel.sent]
    assert len(ids) == 30 and len(set(ids)) == 30
    assert {m.status for m in _messages(database)} == {"sent"}
