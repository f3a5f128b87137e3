"""The segment builder's form: a rule tree as named inputs, and back.

A node's inputs are named by its path: the top group is ``r``, its rules ``r.0``, ``r.1``, a
nested rule ``r.1.0``. A group has ``<path>:op``; a condition ``<path>:field`` and one input
per parameter (``<path>:min``…). Amounts are entered in yuan and stored in fen. No JSON goes
through the page; the server rebuilds the tree from the inputs on every change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from patron.analytics.rfm import SEGMENTS as RFM_SEGMENTS
from patron.segments.personas import PERSONAS
from patron.web.i18n import N_

ROOT: Final = "r"


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    label: str  # message id
    kind: str  # list | choices | select | int | yuan | date
    options: tuple[tuple[str, str], ...] = ()


STAGES: Final = (
    ("new", N_("New")),
    ("active", N_("Active")),
    ("dormant", N_("Dormant")),
    ("churned", N_("Churned")),
)
CHANNELS: Final = (
    ("sms", N_("SMS")),
    ("email", N_("Email")),
    ("push", N_("App push")),
    ("wechat", N_("WeChat")),
)
IN_OPS: Final = (("in", N_("is one of")), ("not_in", N_("is none of")))
WINDOW: Final = Param("window_days", N_("Within the last … days (empty: ever)"), "int")


def _range(label_min: str, label_max: str, kind: str = "int") -> tuple[Param, Param]:
    return Param("min", label_min, kind), Param("max", label_max, kind)


FIELDS: Final[dict[str, tuple[str, tuple[Param, ...]]]] = {
    "tier": (
        N_("Tier"),
        (
            Param("op", N_("Test"), "select", IN_OPS),
            Param("values", N_("Tier codes, comma-separated"), "list"),
        ),
    ),
    "tag": (
        N_("Tags"),
        (
            Param(
                "op",
                N_("Test"),
                "select",
                (("any", N_("has any of")), ("all", N_("has all of")), ("none", N_("has none of"))),
            ),
            Param("values", N_("Tags, comma-separated"), "list"),
        ),
    ),
    "city": (
        N_("City"),
        (
            Param("op", N_("Test"), "select", IN_OPS),
            Param("values", N_("Cities, comma-separated"), "list"),
        ),
    ),
    "region": (
        N_("Region"),
        (
            Param("op", N_("Test"), "select", IN_OPS),
            Param("values", N_("Regions, comma-separated"), "list"),
        ),
    ),
    "registered": (
        N_("Registration date"),
        (
            Param("on_or_after", N_("On or after"), "date"),
            Param("on_or_before", N_("On or before"), "date"),
        ),
    ),
    "points_balance": (
        N_("Points balance"),
        _range(N_("At least (points)"), N_("At most (points)")),
    ),
    "lifecycle": (N_("Lifecycle stage"), (Param("values", N_("Stages"), "choices", STAGES),)),
    "last_purchase_days": (
        N_("Days since the last purchase"),
        _range(N_("At least (days)"), N_("At most (days)")),
    ),
    "order_count": (N_("Number of purchases"), (*_range(N_("At least"), N_("At most")), WINDOW)),
    "spend_fen": (
        N_("Net spend"),
        (*_range(N_("At least (¥)"), N_("At most (¥)"), "yuan"), WINDOW),
    ),
    "avg_order_fen": (
        N_("Average order value"),
        (*_range(N_("At least (¥)"), N_("At most (¥)"), "yuan"), WINDOW),
    ),
    "purchase": (
        N_("Purchases by category, store and amount"),
        (
            Param("categories", N_("Category codes, comma-separated (empty: any)"), "list"),
            Param("stores", N_("Store codes, comma-separated (empty: any)"), "list"),
            *_range(
                N_("Spent at least (¥; empty: bought at all)"), N_("Spent at most (¥)"), "yuan"
            ),
            WINDOW,
        ),
    ),
    "discounted_pct": (
        N_("Share of purchases with a discount"),
        (*_range(N_("At least (percent)"), N_("At most (percent)")), WINDOW),
    ),
    "consent": (
        N_("Marketing consent"),
        (
            Param("channel", N_("Channel"), "select", CHANNELS),
            Param(
                "granted",
                N_("Test"),
                "select",
                (("true", N_("granted")), ("false", N_("not granted"))),
            ),
        ),
    ),
    "rfm_score": (
        N_("RFM score"),
        (
            Param(
                "score",
                N_("Score"),
                "select",
                (("r", N_("Recency")), ("f", N_("Frequency")), ("m", N_("Monetary"))),
            ),
            *_range(N_("At least (1–5)"), N_("At most (1–5)")),
        ),
    ),
    "rfm_segment": (
        N_("RFM segment"),
        (
            Param(
                "values",
                N_("Segments"),
                "choices",
                tuple((k, en) for k, (en, _zh) in RFM_SEGMENTS.items()),
            ),
        ),
    ),
    "campaign": (
        N_("Campaign participation"),
        (
            Param(
                "op",
                N_("Test"),
                "select",
                (("any", N_("took part in any of")), ("none", N_("took part in none of"))),
            ),
            Param("values", N_("Campaign codes, comma-separated"), "list"),
            WINDOW,
        ),
    ),
    "list": (
        N_("Static list"),
        (
            Param(
                "op",
                N_("Test"),
                "select",
                (("in", N_("is on one of")), ("not_in", N_("is on none of"))),
            ),
            Param("values", N_("List codes, comma-separated"), "list"),
        ),
    ),
    "persona": (
        N_("Persona"),
        (
            Param(
                "values",
                N_("Personas"),
                "choices",
                tuple((p.code, p.name) for p in PERSONAS.values()),
            ),
        ),
    ),
    "recommended": (
        N_("Recommended products"),
        (
            Param("skus", N_("Product SKUs, comma-separated"), "list"),
            Param("categories", N_("Or product categories, comma-separated"), "list"),
            Param("top", N_("Among the member's top … recommendations (1–10)"), "int"),
        ),
    ),
}
DEFAULT: Final = {"field": "tier", "op": "in"}


def _split(text: str) -> list[str]:
    return [p.strip() for p in text.replace("，", ",").split(",") if p.strip()]


def _condition(path: str, field: str, get: Any, getlist: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"field": field}
    for p in FIELDS[field][1]:
        key = f"{path}:{p.name}"
        if p.kind == "choices":
            chosen = [v for v in getlist(key) if v]
            if chosen:
                out[p.name] = chosen
            continue
        raw = str(get(key) or "").strip()
        if not raw:
            continue
        try:
            if p.kind == "list":
                out[p.name] = _split(raw)
            elif p.kind == "int":
                out[p.name] = int(raw.replace(",", ""))
            elif p.kind == "yuan":
                out[p.name] = round(float(raw.replace(",", "")) * 100)
            elif p.name == "granted":
                out[p.name] = raw == "true"
            else:
                out[p.name] = raw
        except ValueError:
            # kept as typed: the tree then fails validation here and the input shows it again
            out[p.name] = raw
    return out


def tree_from_form(form: Any) -> dict[str, Any]:
    """Rebuild the tree from the inputs (a starlette FormData or a dict of lists)."""
    keys = list(form.keys())
    get = form.get
    getlist = form.getlist if hasattr(form, "getlist") else (lambda k: form.get(k) or [])

    def node(path: str) -> dict[str, Any]:
        field = get(f"{path}:field")
        if field in FIELDS:
            return _condition(path, str(field), get, getlist)
        children = sorted(
            {
                int(k[len(path) + 1 :].split(":")[0].split(".")[0])
                for k in keys
                if k.startswith(path + ".")
                and k[len(path) + 1 :].split(":")[0].split(".")[0].isdigit()
            }
        )
        op = get(f"{path}:op")
        return {
            "op": op if op in ("and", "or") else "and",
            "rules": [node(f"{path}.{i}") for i in children],
        }

    return node(ROOT)


def _at(
    tree: dict[str, Any], path: str
) -> tuple[dict[str, Any] | None, int | None, dict[str, Any]]:
    """(parent group, index in it, node) of ``path``."""
    parts = path.split(".")[1:]
    parent, index, cur = None, None, tree
    for p in parts:
        parent, index = cur, int(p)
        cur = cur["rules"][index]
    return parent, index, cur


def apply(tree: dict[str, Any], action: str) -> dict[str, Any]:
    """A builder button: ``add:<group>``, ``group:<group>``, ``remove:<node>``."""
    verb, _, path = action.partition(":")
    try:
        parent, index, cur = _at(tree, path)
    except (IndexError, KeyError, ValueError):
        return tree
    if verb == "add" and "rules" in cur:
        cur["rules"].append(dict(DEFAULT))
    elif verb == "group" and "rules" in cur:
        cur["rules"].append({"op": "or", "rules": [dict(DEFAULT)]})
    elif verb == "remove" and parent is not None and index is not None:
        del parent["rules"][index]
    return tree


def normalised(raw: Mapping[str, Any] | None) -> dict[str, Any]:
    """A stored tree as the builder shows it: always a group at the top."""
    if not raw:
        return {"op": "and", "rules": [dict(DEFAULT)]}
    if "field" in raw:
        return {"op": "and", "rules": [dict(raw)]}
    return dict(raw)


def shown(value: Any, kind: str) -> str:
    """A stored parameter as its input shows it."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if kind == "list":
        return ", ".join(value)
    if kind == "yuan":
        return f"{value / 100:g}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def conditions(tree: Mapping[str, Any]) -> int:
    return sum(conditions(r) if "rules" in r else 1 for r in tree.get("rules", []))


def error_node(path: str) -> str:
    """The API's error path (``rules/1/rules/0/min``) as the builder's node path (``r.1.0``)."""
    parts = path.split("/")
    out = [ROOT]
    i = 0
    while i + 1 < len(parts) and parts[i] == "rules" and parts[i + 1].isdigit():
        out.append(parts[i + 1])
        i += 2
    return ".".join(out)
