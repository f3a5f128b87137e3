"""Journey definitions, pure: triggers, steps and the checks made at save time (a condition
may only jump forward, so a journey cannot loop). No I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final, Literal

TRIGGERS: Final = (
    "registration",
    "first_order",
    "birthday",
    "points_expiring",
    "dormant",
    "tier_upgrade",
    "after_service",
)
Trigger = Literal[
    "registration",
    "first_order",
    "birthday",
    "points_expiring",
    "dormant",
    "tier_upgrade",
    "after_service",
]
#: Parameters each trigger accepts, with their defaults and bounds.
TRIGGER_PARAMS: Final[dict[str, dict[str, tuple[int, int, int]]]] = {
    "registration": {"within_hours": (24, 1, 24 * 7)},
    "first_order": {"within_hours": (24, 1, 24 * 7)},
    "birthday": {},
    "points_expiring": {"days_before": (14, 1, 90)},
    "dormant": {},
    "tier_upgrade": {"within_hours": (24, 1, 24 * 7)},
    "after_service": {"hours_after": (24, 1, 24 * 14)},
}
KINDS: Final = ("wait", "condition", "send", "coupon", "points", "tag")
MAX_STEPS: Final = 30
MAX_WAIT_HOURS: Final = 24 * 365
MAX_POINTS: Final = 100_000
_CODE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_TAG = re.compile(r"^[^\s,]{1,32}$")


class JourneyError(ValueError):
    def __init__(self, message: str, step: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.step = step  # 1-based, as people count


@dataclass(frozen=True, slots=True)
class Step:
    kind: str
    hours: int = 0  # wait
    segment: str = ""  # condition
    otherwise: int | None = None  # condition: index to jump to when not matched; None = exit
    template: str = ""  # send, coupon
    points: int = 0
    tag: str = ""

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind}
        if self.kind == "wait":
            d["hours"] = self.hours
        elif self.kind == "condition":
            d["segment"] = self.segment
            d["else"] = "exit" if self.otherwise is None else self.otherwise + 1
        elif self.kind in ("send", "coupon"):
            d["template"] = self.template
        elif self.kind == "points":
            d["points"] = self.points
        elif self.kind == "tag":
            d["tag"] = self.tag
        return d


def params_for(trigger: str, raw: dict[str, Any] | None) -> dict[str, int]:
    if trigger not in TRIGGERS:
        raise JourneyError(f"unknown trigger {trigger!r}; one of {', '.join(TRIGGERS)}")
    spec = TRIGGER_PARAMS[trigger]
    raw = raw or {}
    unknown = sorted(set(raw) - set(spec))
    if unknown:
        raise JourneyError(f"the {trigger} trigger has no setting {', '.join(unknown)}")
    out = {}
    for name, (default, lo, hi) in spec.items():
        value = raw.get(name, default)
        if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
            raise JourneyError(f"{name} must be a whole number from {lo} to {hi}")
        out[name] = value
    return out


def parse_steps(raw: list[dict[str, Any]]) -> list[Step]:
    """Steps from their stored form (``else`` counts steps from 1; ``"exit"`` ends)."""
    if not isinstance(raw, list) or not raw:
        raise JourneyError("a journey needs at least one step")
    if len(raw) > MAX_STEPS:
        raise JourneyError(f"a journey has at most {MAX_STEPS} steps")
    steps = [_step(i, item) for i, item in enumerate(raw)]
    check(steps)
    return steps


def _int(value: Any, lo: int, hi: int, what: str, i: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise JourneyError(f"{what} must be a whole number from {lo:,} to {hi:,}", i + 1)
    return value


def _step(i: int, item: Any) -> Step:
    if not isinstance(item, dict):
        raise JourneyError("each step is an object with a kind", i + 1)
    kind = item.get("kind")
    allowed = {
        "wait": {"hours", "days"},
        "condition": {"segment", "else"},
        "send": {"template"},
        "coupon": {"template"},
        "points": {"points"},
        "tag": {"tag"},
    }
    if kind not in allowed:
        raise JourneyError(f"the kind of a step is one of {', '.join(KINDS)}", i + 1)
    extra = sorted(set(item) - allowed[kind] - {"kind"})
    if extra:
        raise JourneyError(f"a {kind} step has no field {', '.join(extra)}", i + 1)
    if kind == "wait":
        hours = _int(item.get("hours", 0), 0, MAX_WAIT_HOURS, "hours", i)
        hours += 24 * _int(item.get("days", 0), 0, MAX_WAIT_HOURS // 24, "days", i)
        if hours <= 0:
            raise JourneyError("a wait lasts at least one hour", i + 1)
        return Step("wait", hours=hours)
    if kind == "condition":
        seg = item.get("segment")
        if not isinstance(seg, str) or not _CODE.match(seg):
            raise JourneyError("a condition names a saved segment by its code", i + 1)
        other = item.get("else", "exit")
        if other == "exit":
            return Step("condition", segment=seg)
        target = _int(other, 1, MAX_STEPS + 1, "the step to go to", i)
        return Step("condition", segment=seg, otherwise=target - 1)
    if kind in ("send", "coupon"):
        tpl = item.get("template")
        if not isinstance(tpl, str) or not _CODE.match(tpl):
            raise JourneyError(f"a {kind} step names a template by its code", i + 1)
        return Step(kind, template=tpl)
    if kind == "points":
        return Step("points", points=_int(item.get("points"), 1, MAX_POINTS, "points", i))
    tag = item.get("tag")
    if not isinstance(tag, str) or not _TAG.match(tag.strip()):
        raise JourneyError("a tag step names a tag (no spaces, at most 32 characters)", i + 1)
    return Step("tag", tag=tag.strip())


def check(steps: list[Step]) -> None:
    """A condition jumps forward only (to a later step or the end): a journey cannot loop."""
    for i, s in enumerate(steps):
        if s.kind == "condition" and s.otherwise is not None:
            if s.otherwise <= i:
                raise JourneyError(
                    f"step {i + 1} goes back to step {s.otherwise + 1}, which makes a loop; "
                    "a condition may only skip ahead",
                    i + 1,
                )
            if s.otherwise > len(steps):
                raise JourneyError(f"step {i + 1} goes to a step that does not exist", i + 1)


def next_index(steps: list[Step], i: int, matched: bool) -> int | None:
    """Where an entry goes after step i; None = it leaves the journey (exit)."""
    s = steps[i]
    if s.kind == "condition" and not matched:
        return s.otherwise
    return i + 1
