"""Sending N emails through the queue to a local SMTP sink (aiosmtpd).

    python benchmarks/email_send.py --emails 20000 [--batch 500] [--sqlite]
        [--broker redis://127.0.0.1:6379/0 --consumers 2]

Creates a scratch database (PostgreSQL by default, PATRON_BENCH_PG; or a SQLite file), N
members with an encrypted email and email consent, queues one campaign message each, then
drains the queue with the SMTP channel into an SMTP server in a separate process. Prints
messages per second and checks that every message arrived exactly once (by its
X-Patron-Message header).

With ``--broker`` the messages go through a Redis stream (messaging/broker.py): this process
publishes while ``--consumers`` processes send, as `patron messages consume` does.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import secrets
import socket
import tempfile
import threading
import time
from collections import Counter
from contextlib import ExitStack
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from typing import Any
from zoneinfo import ZoneInfo

from aiosmtpd.controller import Controller
from benchmarks._common import scratch_database
from sqlalchemy import insert

from patron.auth.principal import Principal
from patron.db import Database
from patron.kit.crypto import FieldCipher
from patron.members.models import ConsentEvent, Member, MemberConsent
from patron.members.service import EMAIL_CTX
from patron.messaging import broker, delivery
from patron.messaging import service as messaging
from patron.messaging.channels import SmtpEmailChannel
from patron.messaging.domain import SECTION, MessagingSettings
from patron.migrate import upgrade
from patron.program import service as program

NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
TZ = ZoneInfo("Asia/Shanghai")


class Sink:
    """Writes the X-Patron-Message header of each mail it receives, one a line."""

    def __init__(self, out: Any) -> None:
        self.out = out
        self.lock = threading.Lock()
        self.parser = BytesHeaderParser()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: ARG002
        msg_id = self.parser.parsebytes(envelope.content)["X-Patron-Message"]
        with self.lock:
            self.out.write(f"{msg_id}\n")
            self.out.flush()
        return "250 OK"


def serve_sink(port: int, path: str, stop: Any) -> None:
    """The SMTP server, in its own process (it would otherwise share the sender's CPU time)."""
    with open(path, "a") as out:
        controller = Controller(Sink(out), hostname="127.0.0.1", port=port)
        controller.start()
        stop.wait()
        controller.stop()


def fill(db: Database, cipher: FieldCipher, n: int) -> list[int]:
    rows = [
        {
            "id": i,
            "member_no": f"E{i:09d}",
            "phone_enc": b"\x00",
            "phone_index": f"p{i}",
            "email_enc": cipher.encrypt(f"m{i}@example.com", EMAIL_CTX),
            "email_index": f"e{i}",
            "preferred_channel": "email",
            "member_type": "regular",
            "status": "active",
            "registration_channel": "web",
            "created_at": NOW,
            "updated_at": NOW,
        }
        for i in range(1, n + 1)
    ]
    with db.unit_of_work() as s:
        s.execute(insert(Member), rows)
        s.execute(
            insert(MemberConsent),
            [
                {
                    "member_id": i,
                    "channel": "email",
                    "granted": True,
                    "updated_at": NOW,
                    "source": "bench",
                }
                for i in range(1, n + 1)
            ],
        )
        s.execute(
            insert(ConsentEvent),
            [
                {"member_id": i, "channel": "email", "granted": True, "at": NOW, "source": "bench"}
                for i in range(1, n + 1)
            ],
        )
        actor = Principal.system("bench")
        program.put_section(
            s,
            actor,
            SECTION,
            MessagingSettings(rate_per_minute={"email": 10**9}),
            now=NOW,
        )
        messaging.put_template(
            s,
            actor,
            "news",
            name="News",
            texts={
                "zh-CN": {
                    "subject": "新品",
                    "body": "{{name}}，新品上市：https://shop.example.com/new",
                }
            },
            provider_codes={},
            now=NOW,
        )
    return list(range(1, n + 1))


def consume(url: str, keys: tuple[bytes, bytes, bytes], port: int, stream: str, stop: Any) -> None:
    """One consumer process: sends what the stream names until told to stop."""
    db = Database(url)
    sender = _sender(keys, port)
    queue = broker.RedisQueue.from_url(BROKER_URL[0], stream=stream)
    broker.run_consumer(
        db, sender, queue, f"bench-{os.getpid()}", now=lambda: NOW, tz=TZ, stop=stop
    )
    db.engine.dispose()


BROKER_URL = [""]


def _sender(keys: tuple[bytes, bytes, bytes], port: int) -> delivery.Sender:
    return delivery.Sender(
        channels={"email": SmtpEmailChannel("127.0.0.1", port, sender="shop@example.com")},
        cipher=FieldCipher(keys[0], keys[1]),
        link_key=keys[2],
        base_url="https://members.example.com",
    )


def via_broker(
    db: Database, url: str, keys: tuple[bytes, bytes, bytes], port: int, consumers: int, batch: int
) -> tuple[delivery.SendReport, float]:
    stream = f"patron-bench:{secrets.token_hex(6)}"
    queue = broker.RedisQueue.from_url(BROKER_URL[0], stream=stream)
    queue.ensure_group()
    ctx = multiprocessing.get_context("fork")
    stop = ctx.Event()
    procs = [
        ctx.Process(target=consume, args=(url, keys, port, stream, stop)) for _ in range(consumers)
    ]
    sender = _sender(keys, port)
    total = delivery.SendReport()
    t = time.perf_counter()
    for p in procs:
        p.start()
    try:
        while True:
            r = broker.publish_all(db, sender, queue, now=NOW, tz=TZ, limit=batch)
            total.add(r)
            if r.published == 0 and queue.backlog() == 0:
                break
            time.sleep(0.02)
    finally:
        stop.set()
        for p in procs:
            p.join()
        elapsed = time.perf_counter() - t
        queue.client.delete(stream)
    with db.unit_of_work() as s:
        from sqlalchemy import func, select

        from patron.messaging.models import Message

        total.sent = int(s.scalar(select(func.count()).where(Message.status == "sent")) or 0)
    return total, elapsed


def _wait_for(port: int) -> None:
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the SMTP sink did not start")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--emails", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--sqlite", action="store_true")
    ap.add_argument("--broker", help="a Redis URL: send through a stream and consumer processes")
    ap.add_argument("--consumers", type=int, default=2)
    args = ap.parse_args()
    BROKER_URL[0] = args.broker or ""
    with ExitStack() as stack:
        if args.sqlite:
            path = os.path.join(stack.enter_context(tempfile.TemporaryDirectory()), "b.db")
            url = f"sqlite:///{path}"
            upgrade(url)
        else:
            url = stack.enter_context(scratch_database())
        db = Database(url)
        keys = (secrets.token_bytes(32), secrets.token_bytes(32), secrets.token_bytes(32))
        cipher = FieldCipher(keys[0], keys[1])
        ids = fill(db, cipher, args.emails)
        t = time.perf_counter()
        with db.unit_of_work() as s:
            queued = messaging.send_campaign(
                s,
                Principal.system("bench"),
                campaign_code="launch",
                template_code="news",
                member_ids=ids,
                now=NOW,
            )
        enqueue_s = time.perf_counter() - t
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        received_path = os.path.join(stack.enter_context(tempfile.TemporaryDirectory()), "ids")
        stop = multiprocessing.Event()
        sink = multiprocessing.Process(target=serve_sink, args=(port, received_path, stop))
        sink.start()
        _wait_for(port)
        try:
            sender = _sender(keys, port)
            if args.broker:
                db.engine.dispose()  # the consumers fork: no pooled connection crosses
                report, send_s = via_broker(db, url, keys, port, args.consumers, args.batch)
            else:
                t = time.perf_counter()
                report = delivery.drain(db, sender, now=NOW, tz=TZ, limit=args.batch)
                send_s = time.perf_counter() - t
            again = delivery.drain(db, sender, now=NOW, tz=TZ, limit=args.batch)
        finally:
            stop.set()
            sink.join()
        with open(received_path) as fh:
            ids_seen = Counter(line.strip() for line in fh if line.strip())
        db.engine.dispose()
    twice = sum(1 for c in ids_seen.values() if c > 1)
    print(
        json.dumps(
            {
                "database": "sqlite" if args.sqlite else "postgresql",
                "via": f"redis stream, {args.consumers} consumers" if args.broker else "table",
                "emails": args.emails,
                "queued": queued,
                "enqueue_s": round(enqueue_s, 2),
                "sent": report.sent,
                "send_s": round(send_s, 2),
                "messages_per_s": round(report.sent / send_s, 1) if send_s else None,
                "received": sum(ids_seen.values()),
                "distinct_received": len(ids_seen),
                "received_twice": twice,
                "second_drain_sent": again.sent,
            }
        )
    )


if __name__ == "__main__":
    main()
