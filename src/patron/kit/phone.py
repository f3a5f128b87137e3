"""Mobile number normalisation: every accepted spelling of a number becomes one E.164 string."""

from __future__ import annotations

import phonenumbers
from phonenumbers import PhoneNumberType

from patron.errors import Invalid

DEFAULT_REGION = "CN"
_MOBILE = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}


def normalize_phone(raw: str, region: str = DEFAULT_REGION) -> str:
    """Return the E.164 form of a mobile number or raise ``Invalid('invalid_phone')``.

    ``+86 138 0013 8000``, ``008613800138000`` and ``13800138000`` all give ``+8613800138000``.
    """
    text = raw.strip()
    if not text or len(text) > 32:
        raise Invalid("invalid_phone", "Enter a mobile phone number, e.g. 13800138000.")
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise Invalid("invalid_phone", "This is not a phone number.") from exc
    if not phonenumbers.is_valid_number(number):
        raise Invalid("invalid_phone", "This phone number is not valid.")
    if phonenumbers.number_type(number) not in _MOBILE:
        raise Invalid("invalid_phone", "Use a mobile number; landlines cannot receive codes.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mask_phone(e164: str) -> str:
    """``+8613800138000`` → ``138****8000`` (national digits, middle four hidden)."""
    digits = e164[3:] if e164.startswith("+86") else e164.lstrip("+")
    if len(digits) < 7:
        return "*" * len(digits)
    return f"{digits[:3]}****{digits[-4:]}"


def display_phone(e164: str) -> str:
    """National form for people: ``13800138000`` for China, E.164 otherwise."""
    return e164[3:] if e164.startswith("+86") else e164
