"""The journey editor's form: one row a step, its kind picked from a list and its values from
pickers (saved segments, message and coupon templates) or number inputs, and back.

A row's inputs are named ``s<i>.<name>`` (``s0.kind``, ``s0.amount``…), ``rows`` says how many
there are. No keyword is typed: the page works the same in every language. The checks made here
answer translatable messages with the row they concern; the service checks again at save.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from patron.journeys import domain as jdomain
from patron.web.i18n import N_

KIND_LABELS: Final = {
    "send": N_("Send a message"),
    "wait": N_("Wait"),
    "condition": N_("Check a segment"),
    "coupon": N_("Give a coupon"),
    "points": N_("Give points"),
    "tag": N_("Add a tag"),
}
UNIT_LABELS: Final = {"days": N_("days"), "hours": N_("hours")}
FIELDS: Final = ("kind", "amount", "unit", "segment", "otherwise", "template", "points", "tag")


@dataclass(frozen=True, slots=True)
class Row:
    kind: str = ""  # "" until one is picked
    amount: str = ""  # wait
    unit: str = "days"
    segment: str = ""  # condition
    otherwise: str = "exit"  # condition: "exit" or the number of the step to go to
    template: str = ""  # send: message template; coupon: coupon template
    points: str = ""
    tag: str = ""


@dataclass(frozen=True, slots=True)
class FormError(Exception):
    """A message id with its values, and the 1-based row it concerns (None: the whole form)."""

    message: str
    values: Mapping[str, Any]
    row: int | None = None


def rows_from_steps(steps: list[dict[str, Any]]) -> list[Row]:
    out = []
    for s in jdomain.parse_steps(steps):
        if s.kind == "wait":
            days = s.hours % 24 == 0
            amount = str(s.hours // 24 if days else s.hours)
            out.append(Row("wait", amount=amount, unit="days" if days else "hours"))
        elif s.kind == "condition":
            other = "exit" if s.otherwise is None else str(s.otherwise + 1)
            out.append(Row("condition", segment=s.segment, otherwise=other))
        elif s.kind in ("send", "coupon"):
            out.append(Row(s.kind, template=s.template))
        elif s.kind == "points":
            out.append(Row("points", points=str(s.points)))
        else:
            out.append(Row("tag", tag=s.tag))
    return out


def rows_from_form(form: Mapping[str, Any]) -> list[Row]:
    try:
        n = int(str(form.get("rows", "0")))
    except ValueError:
        n = 0
    rows = []
    for i in range(max(0, min(n, jdomain.MAX_STEPS + 1))):
        values = {f: str(form.get(f"s{i}.{f}", "")).strip()[:100] for f in FIELDS}
        values["unit"] = values["unit"] if values["unit"] in UNIT_LABELS else "days"
        values["otherwise"] = values["otherwise"] or "exit"
        if values["kind"] not in KIND_LABELS:
            values["kind"] = ""
        rows.append(Row(**values))
    return rows


def apply(rows: list[Row], action: str) -> list[Row]:
    """``add``: a new empty row; ``remove:<i>``: drop row i; ``up:<i>``: swap it with the one
    above. A condition keeps the step number it goes to (the check at save says if it no longer
    fits)."""
    rows = list(rows)
    if action == "add" and len(rows) < jdomain.MAX_STEPS:
        rows.append(Row())
    elif ":" in action:
        verb, _, at = action.partition(":")
        if at.isdigit() and int(at) < len(rows):
            i = int(at)
            if verb == "remove":
                del rows[i]
            elif verb == "up" and i > 0:
                rows[i - 1], rows[i] = rows[i], rows[i - 1]
    return rows or [Row()]


def _whole(text: str, lo: int, hi: int, row: int, message: str) -> int:
    if not text.isdigit() or not lo <= int(text) <= hi:
        raise FormError(message, {"n": row, "lo": f"{lo:,}", "hi": f"{hi:,}"}, row)
    return int(text)


def steps_from_rows(rows: list[Row]) -> list[dict[str, Any]]:
    """The steps in their stored form, or a FormError naming the first row at fault."""
    if not rows or all(r.kind == "" for r in rows):
        raise FormError(N_("Add at least one step."), {})
    out: list[dict[str, Any]] = []
    for n, r in enumerate(rows, 1):
        if r.kind == "":
            raise FormError(N_("Step %(n)s: choose what it does, or remove it."), {"n": n}, n)
        if r.kind == "wait":
            unit_max = jdomain.MAX_WAIT_HOURS // (24 if r.unit == "days" else 1)
            amount = _whole(
                r.amount,
                1,
                unit_max,
                n,
                N_("Step %(n)s: wait a whole number from %(lo)s to %(hi)s."),
            )
            out.append({"kind": "wait", r.unit: amount})
        elif r.kind == "condition":
            if not r.segment:
                raise FormError(N_("Step %(n)s: choose a segment."), {"n": n}, n)
            if r.otherwise == "exit":
                out.append({"kind": "condition", "segment": r.segment, "else": "exit"})
                continue
            target = _whole(
                r.otherwise,
                1,
                jdomain.MAX_STEPS + 1,
                n,
                N_("Step %(n)s: choose the step to go to."),
            )
            if target <= n:
                raise FormError(
                    N_(
                        "Step %(n)s goes back to step %(to)s, which would make a loop: a check"
                        " may only skip ahead."
                    ),
                    {"n": n, "to": target},
                    n,
                )
            if target > len(rows):
                raise FormError(
                    N_("Step %(n)s goes to step %(to)s, which does not exist."),
                    {"n": n, "to": target},
                    n,
                )
            out.append({"kind": "condition", "segment": r.segment, "else": target})
        elif r.kind in ("send", "coupon"):
            if not r.template:
                message = (
                    N_("Step %(n)s: choose a message template.")
                    if r.kind == "send"
                    else N_("Step %(n)s: choose a coupon template.")
                )
                raise FormError(message, {"n": n}, n)
            out.append({"kind": r.kind, "template": r.template})
        elif r.kind == "points":
            points = _whole(
                r.points,
                1,
                jdomain.MAX_POINTS,
                n,
                N_("Step %(n)s: give a whole number of points from %(lo)s to %(hi)s."),
            )
            out.append({"kind": "points", "points": points})
        else:
            tag = r.tag.strip()
            if not tag or any(c.isspace() or c == "," for c in tag) or len(tag) > 32:
                raise FormError(
                    N_(
                        "Step %(n)s: a tag is one word without spaces or commas, at most 32"
                        " characters."
                    ),
                    {"n": n},
                    n,
                )
            out.append({"kind": "tag", "tag": tag})
    return out


def go_to_choices(rows: list[Row], index: int) -> list[str]:
    """The steps a condition in row ``index`` (0-based) may go to: the later ones, and the
    value it has if that is no longer one of them (so the check at save can say why)."""
    choices = [str(k) for k in range(index + 2, len(rows) + 1)]
    current = rows[index].otherwise
    if current != "exit" and current not in choices:
        choices.append(current)
    return choices
