from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

RULE_DOC = (
    'A rule tree: {"op": "and"|"or", "rules": [...]} of groups and conditions '
    '{"field": ...}; see docs/segments.md. Validated by the server (422 segment_rule_invalid '
    "with details.path of the bad node)."
)


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule: dict[str, Any] = Field(description=RULE_DOC)


class PreviewOut(BaseModel):
    count: int
    sample: list[str] = Field(description="Up to 20 member numbers, lowest first")


class SegmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")
    name: str = Field(min_length=1, max_length=100)
    rule: dict[str, Any] = Field(description=RULE_DOC)


class SegmentChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=100)
    rule: dict[str, Any] | None = Field(default=None, description=RULE_DOC)


class SegmentOut(BaseModel):
    code: str
    name: str
    rule: dict[str, Any]
    version: int
    created_by: str
    created_at: datetime
    updated_at: datetime
    count: int | None = Field(default=None, description="Members it selects now (on GET one)")
