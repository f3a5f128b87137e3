"""Signed short links in messages: ``/m/c/<token>`` (a click on the message's n-th link),
``/m/u/<token>`` (unsubscribe from the channel the message went on) and ``/m/o/<token>`` (the
image an HTML email loads when it is opened). The token names the
message and the link and carries an HMAC, so nobody can forge a click or an unsubscribe for
another message, and it needs no table of its own."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

CLICK_PATH = "/m/c/"
UNSUBSCRIBE_PATH = "/m/u/"
OPEN_PATH = "/m/o/"
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def _b36(n: int) -> str:
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = _ALPHABET[r] + out
        if n == 0:
            return out


def _mac(key: bytes, message_id: int, part: str) -> str:
    digest = hmac.new(key, f"patron.link:{message_id}:{part}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:12]).decode()


def token(key: bytes, message_id: int, part: str) -> str:
    """``part`` is a link's position (``"0"``, ``"1"`` …), ``"u"`` for unsubscribe or ``"o"``
    for the opening image."""
    return f"{_b36(message_id)}.{part}.{_mac(key, message_id, part)}"


@dataclass(frozen=True, slots=True)
class LinkRef:
    message_id: int
    part: str


def read(key: bytes, raw: str) -> LinkRef | None:
    try:
        ident, part, mac = raw.split(".", 2)
        message_id = int(ident, 36)
    except ValueError:
        return None
    if not part or len(part) > 3 or message_id <= 0:
        return None
    if not hmac.compare_digest(mac, _mac(key, message_id, part)):
        return None
    return LinkRef(message_id, part)


def click_url(base: str, key: bytes, message_id: int, position: int) -> str:
    return base.rstrip("/") + CLICK_PATH + token(key, message_id, str(position))


def unsubscribe_url(base: str, key: bytes, message_id: int) -> str:
    return base.rstrip("/") + UNSUBSCRIBE_PATH + token(key, message_id, "u")


def open_url(base: str, key: bytes, message_id: int) -> str:
    return base.rstrip("/") + OPEN_PATH + token(key, message_id, "o")
