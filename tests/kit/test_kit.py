"""Pure helpers: phone numbers, field encryption, card numbers."""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidTag
from hypothesis import given
from hypothesis import strategies as st

from patron.errors import Invalid
from patron.kit.crypto import FieldCipher, mask_email
from patron.kit.ids import format_member_no, luhn_valid, new_member_no
from patron.kit.phone import display_phone, mask_phone, normalize_phone


@pytest.mark.parametrize(
    "spelling", ["+86 138 0013 8000", "008613800138000", "13800138000", " 138-0013-8000 "]
)
def test_spellings_of_one_number_normalise_to_one_value(spelling):
    assert normalize_phone(spelling) == "+8613800138000"


@pytest.mark.parametrize(
    "bad", ["", "12345", "abc", "1380013800", "138001380001234", "010 6552 9988", "+1"]
)
def test_invalid_and_landline_numbers_are_refused(bad):
    with pytest.raises(Invalid) as exc:
        normalize_phone(bad)
    assert exc.value.code == "invalid_phone"


def test_masking_and_display():
    assert mask_phone("+8613800138000") == "138****8000"
    assert display_phone("+8613800138000") == "13800138000"
    assert mask_email("zhang.wei@example.com") == "z***@example.com"


CIPHER = FieldCipher(b"k" * 32, b"x" * 32)


@given(st.text(max_size=200))
def test_encryption_round_trips_and_hides_the_value(text):
    blob = CIPHER.encrypt(text, "member.phone")
    assert CIPHER.decrypt(blob, "member.phone") == text
    if len(text) >= 4:
        assert text.encode() not in blob


def test_ciphertext_is_randomised_bound_to_its_column_and_tamper_evident():
    a = CIPHER.encrypt("+8613800138000", "member.phone")
    b = CIPHER.encrypt("+8613800138000", "member.phone")
    assert a != b  # random nonce
    with pytest.raises(InvalidTag):
        CIPHER.decrypt(a, "member.email")  # moved to another column
    tampered = a[:-1] + bytes([a[-1] ^ 1])
    with pytest.raises(InvalidTag):
        CIPHER.decrypt(tampered, "member.phone")
    with pytest.raises(InvalidTag):
        FieldCipher(b"z" * 32, b"x" * 32).decrypt(a, "member.phone")  # another key


def test_blind_index_is_deterministic_and_keyed():
    i1 = CIPHER.blind_index("+8613800138000", "member.phone")
    assert i1 == CIPHER.blind_index("+8613800138000", "member.phone")
    assert i1 != CIPHER.blind_index("+8613800138001", "member.phone")
    assert i1 != FieldCipher(b"k" * 32, b"y" * 32).blind_index("+8613800138000", "member.phone")
    assert i1 != CIPHER.blind_index("+8613800138000", "member.email")
    assert "13800138000" not in i1


def test_member_numbers_carry_a_check_digit():
    numbers = {new_member_no() for _ in range(500)}
    assert len(numbers) == 500
    for n in numbers:
        assert len(n) == 10
        assert n[0] != "0"
        assert luhn_valid(n)
        # Any single-digit typo is caught.
        typo = n[:3] + str((int(n[3]) + 1) % 10) + n[4:]
        assert not luhn_valid(typo)
    assert format_member_no("1234567890") == "1234 5678 90"
