"""Personal data at rest: AES-GCM encryption plus a keyed blind index for exact lookups.

The blind index is an HMAC-SHA256 of the normalised value, so equal values can be found
without storing them; the ciphertext carries a random nonce and is bound to its column (AAD).
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = b"\x01"  # nonce + sealed, under the one data key of the time
_KEYED = b"\x02"  # key id (4 bytes) + nonce + sealed: several keys can be read at once


def key_id(key: bytes) -> bytes:
    """A key's public fingerprint, stored with each ciphertext to find its key on reading."""
    return hashlib.sha256(b"patron-data-key\x00" + key).digest()[:4]


class FieldCipher:
    """Encrypts with the current data key; decrypts with it or any ``previous`` key, so a key
    can be rotated while the service runs (``patron keys rotate`` re-encrypts in batches)."""

    def __init__(self, data_key: bytes, index_key: bytes, previous: tuple[bytes, ...] = ()) -> None:
        self._aead = AESGCM(data_key)
        self._id = key_id(data_key)
        self._readers = {key_id(k): AESGCM(k) for k in (*previous, data_key)}
        self._index_key = index_key

    def encrypt(self, plaintext: str, context: str) -> bytes:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return _KEYED + self._id + nonce + sealed

    def decrypt(self, blob: bytes, context: str) -> str:
        if blob[:1] == _KEYED:
            aead = self._readers.get(blob[1:5])
            if aead is None:  # under a data key this process does not hold
                raise InvalidTag
            return aead.decrypt(blob[5:17], blob[17:], context.encode()).decode()
        if not blob or blob[:1] != _VERSION:
            raise ValueError("unknown ciphertext version")
        nonce, sealed = blob[1:13], blob[13:]
        for aead in self._readers.values():  # before key ids: try each key held
            try:
                return aead.decrypt(nonce, sealed, context.encode()).decode()
            except InvalidTag:
                continue
        raise InvalidTag

    def is_current(self, blob: bytes) -> bool:
        """Whether ``blob`` is already under the current data key."""
        return blob[:1] == _KEYED and blob[1:5] == self._id

    def blind_index(self, value: str, context: str) -> str:
        mac = hmac.new(self._index_key, f"{context}\x00{value}".encode(), hashlib.sha256)
        return mac.hexdigest()


def mask_email(email: str) -> str:
    """``zhang.wei@example.com`` → ``z***@example.com``."""
    local, _, domain = email.partition("@")
    if not domain:
        return "***"
    return f"{local[:1]}***@{domain}"


def sha256_hex(data: str) -> str:
    return hashlib.sha256(data.encode()).hexdigest()
