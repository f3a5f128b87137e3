from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from patron.auth.permissions import Role

Username = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{2,63}$")]
Password = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class TokenRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"username": "admin", "password": "a long passphrase"}]},
    )
    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: Password


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    role: Role


class MeOut(BaseModel):
    kind: str
    id: int | None
    label: str
    role: str | None
    permissions: list[str]


class StaffCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "username": "li.na",
                    "display_name": "李娜",
                    "role": "clerk",
                    "password": "correct horse battery",
                }
            ]
        },
    )
    username: Username
    display_name: Label
    role: Role
    password: Password


class StaffUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    display_name: Label | None = None
    role: Role | None = None
    is_active: bool | None = None
    password: Password | None = None


class StaffOut(BaseModel):
    id: int
    username: str
    display_name: str
    role: Role
    is_active: bool
    last_login_at: datetime | None
    created_at: datetime


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "POS Shanghai", "scopes": ["members:read"]}]},
    )
    name: Label
    scopes: list[Annotated[str, StringConstraints(max_length=32)]] = Field(max_length=20)


class ApiKeyOut(BaseModel):
    id: int
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The secret; shown only in this response. Send it as X-API-Key.")
