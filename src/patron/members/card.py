"""The member card's QR token: short-lived and signed, so a screenshot stops working.

The portal shows a fresh token every minute; the clerk desk resolves it back to the member. The
token carries the member's internal row id (not the member number) and an expiry, signed with
HMAC-SHA256 (truncated to 96 bits) under the server's token key: it is not encrypted, but it
cannot be forged, altered or extended, and it stops working about two minutes after it was shown.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
from datetime import datetime
from typing import Final

from sqlalchemy.orm import Session

from patron.errors import NotFound, Unauthorized
from patron.members.models import Member

PREFIX: Final = "PC1"
ROTATE_SECONDS: Final = 60
# A token is accepted until the end of the minute after the one it was shown in, so a code
# shown at 10:00:59 still scans at 10:01:30, and a screenshot is useless two minutes later.
GRACE_SECONDS: Final = 60
_MAC_BYTES: Final = 12


def _mac(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, b"member-card:" + payload, hashlib.sha256).digest()[:_MAC_BYTES]


def issue(member_id: int, key: bytes, now: datetime) -> str:
    window_end = (int(now.timestamp()) // ROTATE_SECONDS + 1) * ROTATE_SECONDS
    payload = struct.pack(">QI", member_id, window_end + GRACE_SECONDS)
    raw = payload + _mac(key, payload)
    return PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def looks_like_token(text: str) -> bool:
    return text.strip().startswith(PREFIX) and len(text.strip()) > len(PREFIX) + 20


def resolve(session: Session, token: str, key: bytes, now: datetime) -> Member:
    """The member a card token belongs to; expired or forged tokens are refused."""
    invalid = Unauthorized(
        "card_token_invalid", "This member code is not valid; ask the member to refresh it."
    )
    text = token.strip()
    if not text.startswith(PREFIX):
        raise invalid
    body = text[len(PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (ValueError, TypeError) as exc:
        raise invalid from exc
    if len(raw) != 12 + _MAC_BYTES:
        raise invalid
    payload, mac = raw[:12], raw[12:]
    if not hmac.compare_digest(mac, _mac(key, payload)):
        raise invalid
    member_id, expires = struct.unpack(">QI", payload)
    if int(now.timestamp()) >= expires:
        raise Unauthorized(
            "card_token_expired", "This member code has expired; ask the member to refresh it."
        )
    member = session.get(Member, member_id)
    if member is None or member.status != "active":
        raise NotFound("member_not_found", "No active member has this code.")
    return member
