"""Fixtures of messaging tests: a real SMTP server (aiosmtpd) that keeps what it receives,
members with consents, templates, and a sender built like the app's."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message as EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from patron.kit.crypto import FieldCipher
from patron.messaging.channels import Channel, SmtpEmailChannel
from patron.messaging.delivery import Sender

BASE = "https://members.example.com"


@dataclass
class Sink:
    received: list[EmailMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.received.append(message_from_bytes(envelope.content))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[Sink, int]]:
    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


@pytest.fixture
def make_sender(app: Any) -> Callable[..., Sender]:
    def make(channels: dict[str, Channel]) -> Sender:
        cipher: FieldCipher = app.state.cipher
        return Sender(
            channels=channels,
            cipher=cipher,
            link_key=app.state.keys["token_key"],
            base_url=BASE,
        )

    return make


@pytest.fixture
def email_sender(smtp: tuple[Sink, int], make_sender: Callable[..., Sender]) -> Sender:
    _, port = smtp
    return make_sender({"email": SmtpEmailChannel("127.0.0.1", port, sender="shop@example.com")})


@pytest.fixture
def template(client: Any, auth_headers: Any) -> Callable[..., dict[str, Any]]:
    def make(code: str = "hello", body: str = "{{name}}, see https://shop.example.com/new") -> Any:
        resp = client.put(
            f"/api/v1/message-templates/{code}",
            json={
                "name": "Hello",
                "texts": {
                    "zh-CN": {"subject": "你好", "body": body},
                    "en": {"subject": "Hello", "body": body},
                },
            },
            headers=auth_headers("admin"),
        )
        assert resp.status_code == 200, resp.text
        return resp.json()

    return make


@pytest.fixture
def emailable(make_member: Callable[..., str]) -> Callable[..., str]:
    counter = iter(range(1000))

    def make(**consents: bool) -> str:
        n = next(counter)
        return make_member(
            email=f"m{n}@example.com",
            name=f"Member {n}",
            preferred_channel="email",
            consents={"email": True, **consents},
        )

    return make
