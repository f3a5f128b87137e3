"""Idempotency keys: the first request with a key does the work; retries replay its response.

The key row is inserted in the request's own transaction, before the effect, and committed with
it. A concurrent duplicate blocks on the unique index until the first transaction ends, then
finds the committed row and replays it; if the first request failed, nothing was committed and
the retry runs normally.

Stored responses hold what the caller was sent — unmasked phones and emails for a caller allowed
to see them — so they are kept encrypted with the member columns' cipher, bound to their row
(caller and key), and kept for the retention period only.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from patron.errors import Conflict, Invalid
from patron.idempotency.models import IdempotencyKey
from patron.kit.crypto import FieldCipher

HEADER = "Idempotency-Key"
_VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
# Marks a sealed body (base64 of the cipher's output) in the text column. Rows stored before
# bodies were sealed have no mark and are read as they are until the retention purges them.
_SEALED = "sealed:"


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: bytes
    content_type: str


class Replay(Exception):
    def __init__(self, stored: StoredResponse) -> None:
        super().__init__("replay")
        self.stored = stored


def request_hash(method: str, path: str, query: str, body: bytes) -> str:
    h = hashlib.sha256()
    for part in (method.encode(), path.encode(), query.encode(), body):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


def validate_key(key: str) -> None:
    if not _VALID_KEY.match(key):
        raise Invalid(
            "invalid_idempotency_key",
            "Idempotency-Key must be 1-255 visible ASCII characters.",
        )


def claim(
    session: Session,
    cipher: FieldCipher,
    principal: str,
    key: str,
    req_hash: str,
    now: datetime,
) -> int:
    """Reserve ``key`` for this request or raise ``Replay``/``Conflict``. Returns the row id."""
    validate_key(key)
    existing = _find(session, principal, key)
    if existing is not None:
        _resolve(cipher, existing, req_hash)
    row = IdempotencyKey(principal=principal, key=key, request_hash=req_hash, created_at=now)
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        # Another request with this key committed first. Nothing else was written yet in this
        # transaction, so rolling it back loses nothing.
        session.rollback()
        existing = _find(session, principal, key)
        if existing is None:  # pragma: no cover - the winner rolled back in between
            raise Conflict(
                "idempotency_key_in_use", "A request with this Idempotency-Key is in progress."
            ) from None
        _resolve(cipher, existing, req_hash)
    return row.id


def _find(session: Session, principal: str, key: str) -> IdempotencyKey | None:
    return session.scalar(
        select(IdempotencyKey).where(
            IdempotencyKey.principal == principal, IdempotencyKey.key == key
        )
    )


def _context(row: IdempotencyKey) -> str:
    # Bound to the row: a sealed body copied to another caller's or key's row does not open.
    return f"idempotency_keys.response_body\x00{row.principal}\x00{row.key}"


def seal(cipher: FieldCipher, row: IdempotencyKey, body: bytes) -> str:
    text = body.decode("utf-8", errors="replace")
    return _SEALED + base64.b64encode(cipher.encrypt(text, _context(row))).decode("ascii")


def unseal(cipher: FieldCipher, row: IdempotencyKey) -> bytes:
    stored = row.response_body or ""
    if not stored.startswith(_SEALED):
        return stored.encode()
    blob = base64.b64decode(stored[len(_SEALED) :])
    return cipher.decrypt(blob, _context(row)).encode()


def _resolve(cipher: FieldCipher, existing: IdempotencyKey, req_hash: str) -> None:
    if existing.request_hash != req_hash:
        raise Conflict(
            "idempotency_key_reused",
            "This Idempotency-Key was already used for a different request; use a new key.",
        )
    if existing.status_code is None:
        raise Conflict(
            "idempotency_key_in_use", "A request with this Idempotency-Key is in progress."
        )
    raise Replay(
        StoredResponse(
            existing.status_code,
            unseal(cipher, existing),
            existing.content_type or "application/json",
        )
    )


def store_response(
    session: Session,
    cipher: FieldCipher,
    row_id: int,
    status_code: int,
    body: bytes,
    content_type: str,
) -> None:
    row = session.get(IdempotencyKey, row_id)
    if row is None:  # pragma: no cover
        return
    row.status_code = status_code
    row.response_body = seal(cipher, row, body)
    row.content_type = content_type
    session.flush()


def purge(session: Session, now: datetime, retention: timedelta) -> int:
    result = session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.created_at < now - retention)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
