"""Data-key rotation (SQLite and PostgreSQL): while processes read the old and the new key,
``keys.rotate`` re-encrypts every phone, email and webhook secret in batches; afterwards the
new key alone reads everything, lookups by phone still work, and a second run changes nothing."""

from __future__ import annotations

import os
from zoneinfo import ZoneInfo

import pytest
from cryptography.exceptions import InvalidTag

from patron.auth.principal import Principal
from patron.kit.crypto import FieldCipher
from patron.members import service as members
from patron.members.schemas import MemberCreate
from patron.privacy import keys

OLD, NEW, INDEX = os.urandom(32), os.urandom(32), os.urandom(32)


def test_a_cipher_reads_old_and_new_keys_and_writes_the_new_one() -> None:
    old = FieldCipher(OLD, INDEX)
    both = FieldCipher(NEW, INDEX, (OLD,))
    new_only = FieldCipher(NEW, INDEX)
    blob = old.encrypt("+8613900000001", "member.phone")
    assert both.decrypt(blob, "member.phone") == "+8613900000001"
    assert not both.is_current(blob)
    fresh = both.encrypt("+8613900000001", "member.phone")
    assert both.is_current(fresh) and new_only.decrypt(fresh, "member.phone") == "+8613900000001"
    with pytest.raises((ValueError, InvalidTag)):
        new_only.decrypt(blob, "member.phone")
    legacy = b"\x01" + blob[5:]  # a ciphertext from before key ids is read with any key held
    assert both.decrypt(legacy, "member.phone") == "+8613900000001"


def test_rotate_reencrypts_every_field_in_batches(database, clock) -> None:
    old = FieldCipher(OLD, INDEX)
    with database.unit_of_work() as s:
        for n in range(25):
            members.register(
                s,
                Principal.system("tests"),
                old,
                MemberCreate(
                    phone=f"1390000{n:04d}",
                    channel="web",
                    email=f"m{n}@example.com" if n % 2 else None,
                ),
                now=clock.now(),
                tz=ZoneInfo("Asia/Shanghai"),
            )
    both = FieldCipher(NEW, INDEX, (OLD,))
    assert keys.remaining(database, both) == 25 + 12
    report = keys.rotate(database, both, batch=10)
    assert report.members == 25 and report.left == 0
    again = keys.rotate(database, both, batch=10)
    assert again.members == 0 and again.left == 0
    new_only = FieldCipher(NEW, INDEX)
    with database.unit_of_work() as s:
        found = members.find_by_phone(s, new_only, "13900000007")
        assert found is not None
        assert members.decrypt_phone(found, new_only) == "+8613900000007"
        assert members.decrypt_email(found, new_only) == "m7@example.com"
