from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from patron.segments.domain import Stage

RULE_DOC = (
    'A rule tree: {"op": "and"|"or", "rules": [...]} of groups and conditions '
    '{"field": ...}; see docs/segments.md. Validated by the server (422 segment_rule_invalid '
    "with details.path of the bad node)."
)


class SegmentPreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule: dict[str, Any] = Field(description=RULE_DOC)


class SegmentPreviewOut(BaseModel):
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


class TagRuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=32)
    description: str = Field(default="", max_length=200)
    rule: dict[str, Any] = Field(description=RULE_DOC)
    on_order: bool = Field(
        default=True, description="Also recompute a member's tag shortly after their orders"
    )


class TagRuleChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(default=None, max_length=200)
    rule: dict[str, Any] | None = Field(default=None, description=RULE_DOC)
    on_order: bool | None = None


class TagRuleOut(BaseModel):
    name: str
    description: str
    rule: dict[str, Any]
    on_order: bool
    version: int
    created_by: str
    created_at: datetime
    updated_at: datetime
    computed_at: datetime | None = Field(description="The last full recompute")
    added_last: int = Field(description="Members who got the tag at the last recompute")
    removed_last: int = Field(description="Members who lost it at the last recompute")
    members: int | None = Field(default=None, description="Members holding the tag now")


class RecomputeOut(BaseModel):
    added: int
    removed: int


class TagHistoryOut(BaseModel):
    id: int
    member_no: str
    change: Literal["added", "removed"]
    source: Literal["job", "order", "manual"]
    at: datetime


class TransitionOut(BaseModel):
    month: str = Field(description="YYYY-MM")
    from_stage: Stage | None = Field(description="None: the member's first recorded stage")
    to_stage: Stage
    members: int


class StageCountsOut(BaseModel):
    counts: dict[str, int]


class SegmentVersionOut(BaseModel):
    version: int
    name: str
    rule: dict[str, Any]
    created_by: str
    created_at: datetime


class PersonaOut(BaseModel):
    code: str
    name: str
    description: str
    rule: dict[str, Any]


class StaticListIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    csv: str = Field(
        min_length=1,
        description="One member number or phone a line, in the first column; a header is skipped",
    )


class StaticListOut(BaseModel):
    code: str
    name: str
    members: int
    unknown: list[str] = Field(default_factory=list, description="Up to 100 lines not found")
    unknown_count: int = 0
    updated_at: datetime
