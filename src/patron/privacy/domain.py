"""Privacy settings and pure rules: the erasure deadline, what an erasure redacts."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field

SECTION: Final = "privacy"
#: audit fields that hold a person's data; an erasure replaces their values
PERSONAL_FIELDS: Final = frozenset(
    {"phone", "email", "name", "birthday", "gender", "city", "region"}
)
REDACTED: Final = "—"


class PrivacySettings(BaseModel):
    """Program section ``privacy``: the erasure deadline, retention of technical records and
    the documents the join form links to."""

    model_config = ConfigDict(extra="forbid")

    #: an erasure request is answered within this many days (PIPL asks for a prompt answer)
    erasure_days: int = Field(default=15, ge=1, le=90)
    #: sign-in codes (hashes and their phone index) are kept this long, then deleted
    otp_retention_days: int = Field(default=30, ge=1, le=3650)
    #: webhook delivery attempts (their response excerpts) are kept this long
    delivery_retention_days: int = Field(default=90, ge=1, le=3650)
    #: the operator's own documents (https://…); empty: the portal's built-in pages
    terms_url: str = Field(default="", max_length=300, pattern=r"^(https://\S+)?$")
    privacy_url: str = Field(default="", max_length=300, pattern=r"^(https://\S+)?$")


def deadline(requested_at: datetime, s: PrivacySettings) -> datetime:
    return requested_at + timedelta(days=s.erasure_days)


def redact(data: dict[str, Any] | None) -> dict[str, Any] | None:
    """An audit snapshot with personal values replaced (keys kept: what changed stays known)."""
    if data is None:
        return None
    return {k: (REDACTED if k in PERSONAL_FIELDS and v is not None else v) for k, v in data.items()}
