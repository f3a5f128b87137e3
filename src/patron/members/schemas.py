from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from patron.members.domain import (
    STORE_CODE_PATTERN,
    Channel,
    ContactChannel,
    Gender,
    MemberStatus,
    MemberType,
)

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Place = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
StoreCode = Annotated[str, StringConstraints(pattern=STORE_CODE_PATTERN)]
MemberNo = Annotated[str, StringConstraints(pattern=r"^[0-9]{10}$")]
Phone = Annotated[str, StringConstraints(min_length=1, max_length=32)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class Consents(BaseModel):
    """Marketing consent per contact channel; omitted channels are left unchanged."""

    model_config = ConfigDict(extra="forbid")
    sms: bool | None = None
    email: bool | None = None
    push: bool | None = None
    wechat: bool | None = None


class MemberCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "phone": "13800138000",
                    "channel": "store",
                    "store_code": "SH001",
                    "name": "张伟",
                    "birthday": "1990-05-20",
                    "gender": "male",
                    "city": "上海",
                    "region": "East China",
                    "preferred_channel": "sms",
                    "member_type": "regular",
                    "consents": {"sms": True, "email": False},
                }
            ]
        },
    )

    phone: Phone
    channel: Channel
    store_code: StoreCode | None = None
    referrer_staff_id: int | None = Field(default=None, ge=1, le=2_147_483_647)
    referrer_member_no: MemberNo | None = None
    name: Name | None = None
    email: EmailStr | None = Field(default=None, max_length=254)
    birthday: date | None = None
    gender: Gender | None = None
    city: Place | None = None
    region: Place | None = None
    preferred_channel: ContactChannel | None = None
    member_type: MemberType = "regular"
    consents: Consents = Field(default_factory=Consents)


class MemberUpdate(BaseModel):
    """Profile fields only; tier, points and status are never writable here. A new ``phone``
    needs members:pii and a ``reason`` (kept in the audit trail)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"name": "张伟", "city": "杭州", "email": "zw@example.com"},
                {"phone": "13900139000", "reason": "lost her old SIM; ID checked at store SH001"},
            ]
        },
    )

    phone: Phone | None = None
    name: Name | None = None
    email: EmailStr | None = Field(default=None, max_length=254)
    birthday: date | None = None
    gender: Gender | None = None
    city: Place | None = None
    region: Place | None = None
    preferred_channel: ContactChannel | None = None
    member_type: MemberType | None = None
    reason: Reason | None = None


class ConsentOut(BaseModel):
    channel: ContactChannel
    granted: bool
    updated_at: datetime
    source: str


class Registration(BaseModel):
    channel: Channel
    store_code: str | None
    referrer_staff_id: int | None
    referrer_member_no: str | None


class MemberOut(BaseModel):
    member_no: str
    card_number: str = Field(description="member_no grouped for printing: 1234 5678 90")
    phone: str = Field(description="masked (138****8000) unless the caller may see personal data")
    email: str | None
    name: str | None
    birthday: date | None
    gender: Gender | None
    city: str | None
    region: str | None
    preferred_channel: ContactChannel | None
    member_type: MemberType
    status: MemberStatus
    registration: Registration
    consents: list[ConsentOut]
    tags: list[str]
    profile_complete: bool
    created_at: datetime
    updated_at: datetime


class MemberSummary(BaseModel):
    member_no: str
    phone: str
    name: str | None
    member_type: MemberType
    status: MemberStatus
    tags: list[str]
    created_at: datetime


class MemberPage(BaseModel):
    items: list[MemberSummary]
    total: int
    limit: int
    offset: int


class TagIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"tag": "VIP沙龙"}]})
    tag: Annotated[str, StringConstraints(min_length=1, max_length=32)]
