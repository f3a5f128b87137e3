"""Pure member rules: channels, types, consent channels, validation that needs no database."""

from __future__ import annotations

import re
from datetime import date
from typing import Final, Literal

from patron.auth.permissions import MEMBERS_PII
from patron.errors import Forbidden, Invalid

Channel = Literal["store", "kiosk", "web", "app", "mini_program", "partner"]
CHANNELS: Final = ("store", "kiosk", "web", "app", "mini_program", "partner")
# Channels where a physical store is part of the registration.
STORE_CHANNELS: Final = frozenset({"store", "kiosk"})

MemberType = Literal["regular", "vip", "enterprise", "student", "senior"]
MEMBER_TYPES: Final = ("regular", "vip", "enterprise", "student", "senior")

Gender = Literal["female", "male", "other", "undisclosed"]

ContactChannel = Literal["sms", "email", "push", "wechat"]
CONTACT_CHANNELS: Final = ("sms", "email", "push", "wechat")

MemberStatus = Literal["active", "frozen", "erased"]

TAG_PATTERN: Final = re.compile(r"^[\w\u4e00-\u9fff][\w\u4e00-\u9fff .&+-]{0,31}$")
STORE_CODE_PATTERN: Final = r"^[A-Za-z0-9_-]{1,32}$"
MIN_BIRTH_YEAR: Final = 1900


def validate_birthday(birthday: date | None, today: date) -> None:
    if birthday is None:
        return
    if birthday > today:
        raise Invalid(
            "birthday_in_future",
            "The birthday cannot be in the future.",
            details={"field": "birthday"},
        )
    if birthday.year < MIN_BIRTH_YEAR:
        raise Invalid(
            "birthday_out_of_range",
            f"The birthday must be after {MIN_BIRTH_YEAR}.",
            details={"field": "birthday"},
        )


def check_phone_change(permissions: frozenset[str], reason: str | None) -> None:
    """The one rule for moving a member to another phone number, whoever asks (API, console):
    the number is how the member signs in to the portal, so whoever changes it could take the
    account over. Only a role that may see personal data (members:pii) may, and must say why
    (the reason goes into the audit record)."""
    if MEMBERS_PII not in permissions:
        raise Forbidden(
            "forbidden",
            "Changing a member's phone number needs the members:pii permission; ask a "
            "manager, or let the member change it in the portal.",
            details={"permission": MEMBERS_PII, "field": "phone"},
        )
    if reason is None or not reason.strip():
        raise Invalid(
            "reason_required",
            "Give the reason for changing the phone number (it is kept in the audit trail).",
            details={"field": "reason"},
        )


def check_email_change(kind: str, permissions: frozenset[str], had_email: bool) -> None:
    """A member changes their own email in the portal, and a clerk may fill in a missing one at
    the counter; replacing or removing an address another party gave needs members:pii: without
    it staff cannot even see the address, and the email is where receipts and notices go."""
    if kind != "member" and had_email and MEMBERS_PII not in permissions:
        raise Forbidden(
            "forbidden",
            "Changing a member's email needs the members:pii permission; ask a manager, or let "
            "the member change it in the portal.",
            details={"permission": MEMBERS_PII, "field": "email"},
        )


def normalize_tag(name: str) -> str:
    tag = " ".join(name.split())
    if not TAG_PATTERN.match(tag):
        raise Invalid(
            "invalid_tag",
            "A tag is 1-32 letters, digits, spaces or . & + - _ and starts with a letter or digit.",
            details={"field": "tag"},
        )
    return tag


def normalize_email(email: str) -> str:
    """Emails compare case-insensitively for lookup; the domain part is always lower case."""
    return email.strip().lower()


def profile_complete(
    name: str | None,
    email: str | None,
    birthday: date | None,
    gender: str | None,
    city: str | None,
) -> bool:
    """What "a completed profile" means for the profile-completion bonus."""
    return all(v not in (None, "") for v in (name, email, birthday, gender, city))
