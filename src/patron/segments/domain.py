"""The segment rule tree (validated) and the lifecycle settings. Pure: no I/O.

A tree is a group ``{"op": "and"|"or", "rules": [...]}`` whose rules are groups or conditions
``{"field": ..., ...}``. ``compile.py`` turns it into one SQL select of member ids.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)

from patron.members.domain import ContactChannel

LIFECYCLE_SECTION: Final = "lifecycle"
MAX_DEPTH: Final = 5
MAX_CONDITIONS: Final = 50

Stage = Literal["new", "active", "dormant", "churned"]
STAGES: Final[tuple[Stage, ...]] = ("new", "active", "dormant", "churned")
Names = Annotated[list[Annotated[str, Field(min_length=1, max_length=64)]], Field(min_length=1)]
Count = Annotated[int, Field(ge=0, le=10**12)]


class LifecycleSettings(BaseModel):
    """Program section ``lifecycle``: day thresholds of the stages (seed: 30 / 3 / 6 months)."""

    model_config = ConfigDict(extra="forbid")

    new_days: int = Field(default=30, ge=1, le=3650)  # registered this recently: new
    active_days: int = Field(default=90, ge=1, le=3650)  # a purchase this recently: active
    churned_days: int = Field(default=180, ge=1, le=3650)  # no purchase this long: churned

    @model_validator(mode="after")
    def _ordered(self) -> LifecycleSettings:
        if self.active_days >= self.churned_days:
            raise ValueError("active_days must be smaller than churned_days")
        return self


class _Cond(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Range(_Cond):
    """Inclusive bounds; at least one."""

    min: Count | None = None
    max: Count | None = None

    @model_validator(mode="after")
    def _bounds(self) -> _Range:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is greater than max")
        return self


class TierCond(_Cond):
    field: Literal["tier"]
    op: Literal["in", "not_in"] = "in"
    values: Names


class TagCond(_Cond):
    field: Literal["tag"]
    op: Literal["any", "all", "none"] = "any"
    values: Names


class PlaceCond(_Cond):
    field: Literal["city", "region"]
    op: Literal["in", "not_in"] = "in"
    values: Names


class RegisteredCond(_Cond):
    """Registration date in the business timezone, inclusive bounds."""

    field: Literal["registered"]
    on_or_after: date | None = None
    on_or_before: date | None = None

    @model_validator(mode="after")
    def _bounds(self) -> RegisteredCond:
        if self.on_or_after is None and self.on_or_before is None:
            raise ValueError("give on_or_after, on_or_before or both")
        if self.on_or_after and self.on_or_before and self.on_or_after > self.on_or_before:
            raise ValueError("on_or_after is later than on_or_before")
        return self


class PointsCond(_Range):
    field: Literal["points_balance"]


class LifecycleCond(_Cond):
    field: Literal["lifecycle"]
    values: Annotated[list[Stage], Field(min_length=1)]


class RecencyCond(_Range):
    """Days since the last purchase; members who never bought do not match."""

    field: Literal["last_purchase_days"]


class OrderCountCond(_Range):
    """Purchases (not fully returned) in the last ``window_days``, or ever."""

    field: Literal["order_count"]
    window_days: Annotated[int, Field(ge=1, le=3650)] | None = None


class SpendCond(_Range):
    """Net spend in fen (total less refunds) in the last ``window_days``, or ever."""

    field: Literal["spend_fen"]
    window_days: Annotated[int, Field(ge=1, le=3650)] | None = None


class ConsentCond(_Cond):
    """Granted (or not) for a channel; a member who never answered has not granted."""

    field: Literal["consent"]
    channel: ContactChannel
    granted: bool = True


Window = Annotated[int, Field(ge=1, le=3650)]
RfmSegment = Literal[
    "champions",
    "loyal",
    "potential_loyalists",
    "new",
    "promising",
    "need_attention",
    "about_to_sleep",
    "at_risk",
    "cant_lose",
    "hibernating",
]
Persona = Literal["high_frequency", "brand_loyal", "promotion_sensitive"]
Code = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")]
Codes = Annotated[list[Code], Field(min_length=1)]


class RfmScoreCond(_Range):
    """An RFM score (1–5) from the last run of the member scores job; members without scores
    (no purchase, or the job has not run) do not match."""

    field: Literal["rfm_score"]
    score: Literal["r", "f", "m"]
    min: Annotated[int, Field(ge=1, le=5)] | None = None
    max: Annotated[int, Field(ge=1, le=5)] | None = None


class RfmSegmentCond(_Cond):
    """The named RFM segment of the last scores run."""

    field: Literal["rfm_segment"]
    values: Annotated[list[RfmSegment], Field(min_length=1)]


class PurchaseCond(_Cond):
    """Bought (in the categories, at the stores, in the last ``window_days``, each optional);
    with ``min``/``max``: net spend in fen on those purchases within the bounds."""

    field: Literal["purchase"]
    categories: Names | None = None
    stores: Names | None = None
    window_days: Window | None = None
    min: Count | None = None
    max: Count | None = None

    @model_validator(mode="after")
    def _bounds(self) -> PurchaseCond:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is greater than max")
        return self


class AvgOrderCond(_Range):
    """Average net amount of a purchase in fen (in the window, or ever); never bought: no."""

    field: Literal["avg_order_fen"]
    window_days: Window | None = None


class DiscountShareCond(_Range):
    """Percentage (0–100) of the purchases with a discount, in the window or ever."""

    field: Literal["discounted_pct"]
    min: Annotated[int, Field(ge=0, le=100)] | None = None
    max: Annotated[int, Field(ge=0, le=100)] | None = None
    window_days: Window | None = None


class CampaignCond(_Cond):
    """Took part in any (or none) of the campaigns, optionally in the last ``window_days``."""

    field: Literal["campaign"]
    op: Literal["any", "none"] = "any"
    values: Codes
    window_days: Window | None = None


class ListCond(_Cond):
    """On (or not on) one of the static lists imported from a file."""

    field: Literal["list"]
    op: Literal["in", "not_in"] = "in"
    values: Codes


class PersonaCond(_Cond):
    """In one of the built-in personas (``segments.personas``)."""

    field: Literal["persona"]
    values: Annotated[list[Persona], Field(min_length=1)]


#: Recommendations kept per member by the scores job (``analytics.recommend.K``).
MAX_RECOMMENDED: Final = 10


class RecommendedCond(_Cond):
    """The member's stored top ``top`` product recommendations (nightly scores job) include
    one of the SKUs or a product of one of the categories; members the job has not scored do
    not match. The codes must exist in the catalogue (``service.check_references``)."""

    field: Literal["recommended"]
    skus: Names | None = None
    categories: Names | None = None
    top: Annotated[int, Field(ge=1, le=MAX_RECOMMENDED)] = 3

    @model_validator(mode="after")
    def _something(self) -> RecommendedCond:
        if not self.skus and not self.categories:
            raise ValueError("give skus, categories or both")
        return self


Condition = Annotated[
    TierCond
    | TagCond
    | PlaceCond
    | RegisteredCond
    | PointsCond
    | LifecycleCond
    | RecencyCond
    | OrderCountCond
    | SpendCond
    | ConsentCond
    | RfmScoreCond
    | RfmSegmentCond
    | PurchaseCond
    | AvgOrderCond
    | DiscountShareCond
    | CampaignCond
    | ListCond
    | PersonaCond
    | RecommendedCond,
    Field(discriminator="field"),
]


def _kind(v: Any) -> str:
    if isinstance(v, dict):
        return "group" if "rules" in v or ("op" in v and "field" not in v) else "condition"
    return "group" if isinstance(v, Group) else "condition"


class Group(BaseModel):
    model_config = ConfigDict(extra="forbid")

    op: Literal["and", "or"]
    rules: Annotated[list[Node], Field(min_length=1, max_length=MAX_CONDITIONS)]


Node = Annotated[
    Annotated[Group, Tag("group")] | Annotated[Condition, Tag("condition")],
    Discriminator(_kind),
]
Group.model_rebuild()


class SegmentRuleError(ValueError):
    """A tree that does not validate: ``path`` locates the bad node (``rules/1/min``)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


_TAGS = {"group", "condition"}


def _path(loc: tuple[int | str, ...]) -> str:
    # Drop the union tags pydantic adds ("group", "tier", ...): keep list indices and the
    # names of fields that exist in the JSON.
    out = [str(p) for p in loc if isinstance(p, int) or (p not in _TAGS and _is_field(p))]
    return "/".join(out)


_FIELDS = {
    name
    for model in (
        Group,
        TierCond,
        TagCond,
        PlaceCond,
        RegisteredCond,
        PointsCond,
        LifecycleCond,
        RecencyCond,
        OrderCountCond,
        SpendCond,
        ConsentCond,
        RfmScoreCond,
        RfmSegmentCond,
        PurchaseCond,
        AvgOrderCond,
        DiscountShareCond,
        CampaignCond,
        ListCond,
        PersonaCond,
        RecommendedCond,
    )
    for name in model.model_fields
}


def _is_field(part: str) -> bool:
    return part in _FIELDS


def _stats(g: Group, depth: int = 1) -> tuple[int, int]:
    conds, deepest = 0, depth
    for r in g.rules:
        if isinstance(r, Group):
            c, d = _stats(r, depth + 1)
            conds, deepest = conds + c, max(deepest, d)
        else:
            conds += 1
    return conds, deepest


def parse_rule(raw: Any) -> Group:
    """Validate a tree; a bare condition at the top is wrapped in an AND group."""
    if isinstance(raw, dict) and "field" in raw:
        raw = {"op": "and", "rules": [raw]}
    try:
        rule = Group.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        path = _path(tuple(err["loc"]))
        if err["type"] == "union_tag_invalid":
            path = f"{path}/field".lstrip("/")
        elif err["type"] == "extra_forbidden" and not path.endswith(str(err["loc"][-1])):
            path = f"{path}/{err['loc'][-1]}".lstrip("/")
        raise SegmentRuleError(path, str(err["msg"])) from None
    conds, depth = _stats(rule)
    if depth > MAX_DEPTH:
        raise SegmentRuleError("", f"groups nest at most {MAX_DEPTH} deep")
    if conds > MAX_CONDITIONS:
        raise SegmentRuleError("", f"a segment has at most {MAX_CONDITIONS} conditions")
    return rule
