"""How a code reaches the phone. A real SMS provider implements ``SmsChannel``; the demo channel
logs the message and keeps the last few for the demo page (never used in production)."""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from patron.kit.phone import mask_phone

log = logging.getLogger("patron.sms")


class SmsChannel(Protocol):
    def send(self, phone_e164: str, text: str, *, now: datetime) -> None:
        """Deliver ``text`` to the phone, or raise; called inside the request."""


@dataclass(frozen=True, slots=True)
class SentSms:
    phone: str
    text: str
    at: datetime


class DemoSmsChannel:
    """Writes each message to the log and keeps the last ``keep`` for ``/portal/demo/sms``."""

    def __init__(self, keep: int = 20) -> None:
        self._sent: deque[SentSms] = deque(maxlen=keep)
        self._lock = threading.Lock()

    def send(self, phone_e164: str, text: str, *, now: datetime) -> None:
        log.info("demo SMS to %s: %s", mask_phone(phone_e164), text)
        with self._lock:
            self._sent.appendleft(SentSms(phone_e164, text, now))

    def recent(self) -> list[SentSms]:
        with self._lock:
            return list(self._sent)

    def last_to(self, phone_e164: str) -> SentSms | None:
        return next((m for m in self.recent() if m.phone == phone_e164), None)
