"""Form plumbing for the configuration pages: operator text → the settings models' values, and
the models' ``ValidationError`` → a message next to the form field that caused it.

Operators type friendly units (yuan, per cent, ×1.5); the models hold integers (fen, basis
points). Every conversion goes through ``Decimal`` on the typed text, never through a float.
Validation itself is the settings model's own (the one the REST API uses), so the console
accepts exactly what the API accepts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from patron.web.i18n import N_
from patron.web.pages import money, parse_day

T = TypeVar("T", bound=BaseModel)
Loc = tuple[str | int, ...]
Kind = Literal["int", "money", "percent", "factor", "text", "date", "flag", "choice", "list"]
BP = 10_000

_INT = re.compile(r"^-?\d{1,18}$")
_DECIMAL = {  # kind → (pattern, message when the text does not match)
    "money": (
        re.compile(r"^-?\d{1,13}(\.\d{1,2})?$"),
        N_("Enter an amount in yuan with at most 2 decimals."),
    ),
    "percent": (
        re.compile(r"^-?\d{1,9}(\.\d{1,2})?$"),
        N_("Enter a percentage with at most 2 decimals."),
    ),
    "factor": (
        re.compile(r"^-?\d{1,9}(\.\d{1,4})?$"),
        N_("Enter a multiplier such as 1.5 (at most 4 decimals)."),
    ),
}
#: discriminator tags pydantic puts into the location of a tagged-union member's error
UNION_TAGS = frozenset({"date_range", "monthly", "weekly"})


# ---- values shown in the inputs -------------------------------------------------------------


def yuan_text(fen: int | None) -> str:
    """300 00 fen → "300.00" (the value of a money input; no currency sign, no separators)."""
    if fen is None:
        return ""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"


def _scaled_text(value: int, scale: int) -> str:
    whole, frac = divmod(abs(value), scale)
    digits = len(str(scale)) - 1
    text = f"{whole}" + (f".{frac:0{digits}d}".rstrip("0") if frac else "")
    return ("-" if value < 0 else "") + text


def percent_text(bp: int | None) -> str:
    """9250 → "92.5" (per cent, for an input)."""
    return "" if bp is None else _scaled_text(bp, 100)


def factor_text(bp: int | None) -> str:
    """15000 → "1.5" (a multiplier, for an input)."""
    return "" if bp is None else _scaled_text(bp, BP)


def bound_text(kind: Kind, value: Any) -> str:
    """A model bound in the unit the operator typed: fen → ¥, basis points → % or ×."""
    if not isinstance(value, int) or isinstance(value, bool):
        return str(value)
    if kind == "money":
        return money(value)
    if kind == "percent":
        return percent_text(value) + "%"
    if kind == "factor":
        return "×" + factor_text(value)
    return f"{value:,}"


# ---- the draft: parse, then validate with the model ------------------------------------------


@dataclass
class DraftForm:
    """One submitted settings form. ``raw`` keeps what was typed (to show it again), ``data``
    the converted values in the model's shape, ``errors`` form field → message (already in the
    viewer's language; ``%`` doubled because templates pass it through gettext again)."""

    raw: Mapping[str, str]
    tr: Callable[[str], str]
    data: dict[Any, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    fields: dict[Loc, tuple[str, Kind]] = field(default_factory=dict)

    # -- reading inputs

    def get(self, name: str) -> str:
        return self.raw.get(name, "").strip()

    def error(self, name: str, message: str, **values: Any) -> None:
        if name not in self.errors:
            text = self.tr(message).format(**values) if values else self.tr(message)
            self.errors[name] = text.replace("%", "%%")

    def put(self, loc: Loc, value: Any) -> None:
        node = self.data
        for key in loc[:-1]:
            node = node.setdefault(key, {})
        node[loc[-1]] = value

    def bind(self, name: str, loc: Loc, kind: Kind) -> None:
        """Errors the model reports at ``loc`` are shown next to the field ``name``."""
        self.fields[loc] = (name, kind)

    def integer(self, name: str, loc: Loc, *, optional: bool = False) -> int | None:
        self.bind(name, loc, "int")
        text = self.get(name).replace(",", "")
        if not text:
            if optional:
                self.put(loc, None)
            else:
                self.error(name, N_("Required."))
            return None
        if not _INT.match(text):
            self.error(name, N_("Enter a whole number."))
            return None
        self.put(loc, int(text))
        return int(text)

    def scaled(
        self,
        name: str,
        loc: Loc,
        kind: Literal["money", "percent", "factor"],
        *,
        optional: bool = False,
    ) -> int | None:
        """Yuan → fen, per cent → basis points, ×factor → basis points; exact, via Decimal."""
        self.bind(name, loc, kind)
        text = self.get(name).replace(",", "").removeprefix("¥").removeprefix("×")
        if not text:
            if optional:
                self.put(loc, None)
            else:
                self.error(name, N_("Required."))
            return None
        pattern, message = _DECIMAL[kind]
        if not pattern.match(text):
            self.error(name, message)
            return None
        unit = {"money": 100, "percent": 100, "factor": BP}[kind]
        value = int(Decimal(text) * unit)  # exact: at most as many decimals as the unit has
        self.put(loc, value)
        return value

    def text(self, name: str, loc: Loc) -> str:
        self.bind(name, loc, "text")
        value = self.get(name)
        self.put(loc, value)
        return value

    def flag(self, name: str, loc: Loc) -> bool:
        self.bind(name, loc, "flag")
        value = self.raw.get(name) in ("on", "true", "1")
        self.put(loc, value)
        return value

    def choice(self, name: str, loc: Loc, options: tuple[str, ...]) -> str | None:
        self.bind(name, loc, "choice")
        value = self.get(name)
        if value not in options:
            self.error(name, N_("Choose one of the options."))
            return None
        self.put(loc, value)
        return value

    def day(self, name: str, loc: Loc, *, optional: bool = False) -> date | None:
        self.bind(name, loc, "date")
        text = self.get(name)
        if not text:
            if optional:
                self.put(loc, None)
            else:
                self.error(name, N_("Required."))
            return None
        try:
            value = parse_day(text)
        except ValueError:
            self.error(name, N_("Enter a date as YYYY-MM-DD."))
            return None
        self.put(loc, value)
        return value

    def numbers(self, name: str, loc: Loc) -> list[int] | None:
        """ "8, 18" → [8, 18] (days of the month, weekdays)."""
        self.bind(name, loc, "list")
        parts = [p.strip() for p in self.get(name).replace("，", ",").split(",") if p.strip()]
        if not parts:
            self.error(name, N_("Required."))
            return None
        if not all(p.isdecimal() and len(p) <= 3 for p in parts):
            self.error(name, N_("Enter numbers separated by commas."))
            return None
        values = [int(p) for p in parts]
        self.put(loc, values)
        return values

    # -- validating

    def validate(
        self, model: type[T], locate: Callable[[DraftForm, Loc], str | None] | None = None
    ) -> T | None:
        """The model built from the draft, or None with ``errors`` filled in.

        ``locate(form, loc)`` places the model's own cross-field errors (thresholds that do not
        increase, overlapping windows…): it records an error and returns the field, or None.
        """
        try:
            value = model.model_validate(_materialize(self.data))
        except ValidationError as exc:
            for detail in exc.errors():
                self._place(detail, locate)
            if not self.errors:  # never let a refusal pass silently
                self.error("form", N_("These settings are not valid."))
            return None
        return None if self.errors else value

    def _place(
        self, detail: ErrorDetails, locate: Callable[[DraftForm, Loc], str | None] | None
    ) -> None:
        loc = tuple(p for p in detail["loc"] if p not in UNION_TAGS)
        found = self.fields.get(loc)
        cross_field = detail["type"] in ("value_error", "assertion_error")
        if cross_field and locate is not None and locate(self, loc):
            return  # a model validator: the section knows which field breaks it
        trimmed = loc
        while found is None and trimmed:
            trimmed = trimmed[:-1]
            found = self.fields.get(trimmed)
        if found is None:
            if locate is None or locate(self, loc) is None:
                self.error("form", N_("These settings are not valid."))
            return
        name, kind = found
        if name in self.errors:
            return  # the parse error already says what is wrong
        self._message(name, kind, detail)

    def _message(self, name: str, kind: Kind, detail: ErrorDetails) -> None:
        ctx = detail.get("ctx") or {}
        error_type = detail["type"]
        if error_type in _BOUNDS:
            key, message = _BOUNDS[error_type]
            self.error(name, message, limit=bound_text(kind, ctx.get(key)))
        elif error_type in _LENGTHS:
            key, message = _LENGTHS[error_type]
            self.error(name, message, limit=ctx.get(key))
        else:
            self.error(name, _OTHER.get(error_type, N_("This value is not valid.")))


_BOUNDS = {  # pydantic error type → (its context key, message)
    "greater_than_equal": ("ge", N_("Must be at least {limit}.")),
    "greater_than": ("gt", N_("Must be more than {limit}.")),
    "less_than_equal": ("le", N_("Must be at most {limit}.")),
    "less_than": ("lt", N_("Must be less than {limit}.")),
}
_LENGTHS = {
    "string_too_long": ("max_length", N_("At most {limit} characters.")),
    "too_short": ("min_length", N_("Enter at least {limit} values.")),
    "too_long": ("max_length", N_("Enter at most {limit} values.")),
}
_OTHER = {
    "missing": N_("Required."),
    "string_too_short": N_("Required."),
    "string_pattern_mismatch": N_("Use lower-case letters, digits, _ or -; start with a letter."),
    "literal_error": N_("Choose one of the options."),
    "enum": N_("Choose one of the options."),
    "union_tag_invalid": N_("Choose one of the options."),
}


def _materialize(node: Any) -> Any:
    """Dicts keyed 0..n-1 (rows of a form) become lists, in row order."""
    if isinstance(node, dict):
        items = {k: _materialize(v) for k, v in node.items()}
        if items and all(isinstance(k, int) for k in items):
            return [items[k] for k in sorted(items)]
        return items
    return node


def rows(raw: Mapping[str, str], prefix: str) -> list[int]:
    """Row numbers present in the form for fields named ``<prefix>-<n>-<field>``."""
    found: set[int] = set()
    pattern = re.compile(rf"^{re.escape(prefix)}-(\d{{1,3}})-")
    for key in raw:
        m = pattern.match(key)
        if m:
            found.add(int(m.group(1)))
    return sorted(found)
