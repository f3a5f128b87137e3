"""Built-in personas: named segment definitions every program has (docs/segments.md lists
their rules). A rule tree uses them as ``{"field": "persona", "values": [...]}``; they are
ordinary rule trees themselves, so they can also be copied and adapted as saved segments."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final


@dataclass(frozen=True, slots=True)
class Persona:
    code: str
    name: str  # English message id (translated where shown)
    description: str  # English message id
    rule: dict[str, Any]


PERSONAS: Final[dict[str, Persona]] = {
    p.code: p
    for p in (
        Persona(
            "high_frequency",
            "High-frequency buyers",
            "Six purchases or more in the last 180 days.",
            {"op": "and", "rules": [{"field": "order_count", "min": 6, "window_days": 180}]},
        ),
        Persona(
            "brand_loyal",
            "Brand-loyal members",
            "Four purchases or more in the last 365 days, at least one of them in the last "
            "90 days: they keep coming back.",
            {
                "op": "and",
                "rules": [
                    {"field": "order_count", "min": 4, "window_days": 365},
                    {"field": "order_count", "min": 1, "window_days": 90},
                ],
            },
        ),
        Persona(
            "promotion_sensitive",
            "Promotion-sensitive members",
            "At least three purchases in the last 180 days, and at least 60 percent of them "
            "with a discount or coupon.",
            {
                "op": "and",
                "rules": [
                    {"field": "order_count", "min": 3, "window_days": 180},
                    {"field": "discounted_pct", "min": 60, "window_days": 180},
                ],
            },
        ),
    )
}
