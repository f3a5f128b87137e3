from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from patron.kit.ids import MEMBER_NO_PATTERN
from patron.service.domain import Category, Priority


class TicketIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    member_no: str = Field(pattern=MEMBER_NO_PATTERN)
    category: Category
    priority: Priority = "normal"
    subject: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=4000)
    store_code: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,32}$")
    #: a missing-points dispute's order, as ``source:external_id``
    order: str | None = Field(default=None, min_length=3, max_length=97)


class ReplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    body: str = Field(min_length=1, max_length=4000)


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    assignee: str | None = Field(default=None, max_length=64)


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    resolution: str = Field(min_length=1, max_length=4000)
    #: points to credit for a missing-points dispute, through the adjustment (approval) flow
    correction_points: int = Field(default=0, ge=0, le=10_000_000)


class TimelineOut(BaseModel):
    at: datetime
    kind: str
    actor: str
    body: str
    data: dict[str, Any]


class TicketOut(BaseModel):
    ticket_no: str
    member_no: str
    category: str
    priority: str
    status: str
    channel: str
    queue: str
    tier: str
    store_code: str | None
    subject: str
    body: str
    assignee: str | None
    created_at: datetime
    response_due_at: datetime
    first_response_at: datetime | None
    breached_at: datetime | None
    resolved_at: datetime | None
    resolution: str | None
    order: str | None
    adjustment_id: int | None
    timeline: list[TimelineOut] | None = None


class TicketPage(BaseModel):
    items: list[TicketOut]
    total: int


class ArticleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=20_000)
    keywords: str = Field(default="", max_length=300)
    published: bool = True


class ArticleOut(BaseModel):
    slug: str
    locale: str
    title: str
    body: str
    keywords: str
    published: bool
    updated_at: datetime


class NpsRowOut(BaseModel):
    key: str | None
    answers: int
    promoters: int
    passives: int
    detractors: int
    nps: int
    satisfaction: float | None


class NpsOut(BaseModel):
    by: str
    nps: int | None
    rows: list[NpsRowOut]
