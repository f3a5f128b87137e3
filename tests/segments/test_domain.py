"""The rule tree's validation and its compilation, without a database."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from patron.segments.compile import compile_rule
from patron.segments.domain import (
    MAX_CONDITIONS,
    MAX_DEPTH,
    LifecycleSettings,
    SegmentRuleError,
    parse_rule,
)

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _sql(raw: object, dialect=postgresql.dialect()) -> str:
    stmt = compile_rule(
        parse_rule(raw), now=NOW, tz=ZoneInfo("Asia/Shanghai"), lifecycle=LifecycleSettings()
    )
    return str(stmt.compile(dialect=dialect))


def _err(raw: object) -> SegmentRuleError:
    with pytest.raises(SegmentRuleError) as info:
        parse_rule(raw)
    return info.value


def test_a_bare_condition_becomes_an_and_group() -> None:
    rule = parse_rule({"field": "tier", "values": ["gold"]})
    assert rule.op == "and" and len(rule.rules) == 1


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        ({"op": "xor", "rules": [{"field": "tier", "values": ["a"]}]}, "op"),
        ({"op": "and", "rules": []}, "rules"),
        ({"op": "and", "rules": [{"field": "shoe_size"}]}, "rules/0/field"),
        ({"op": "and", "rules": [{"field": "tier", "values": []}]}, "rules/0/values"),
        ({"op": "and", "rules": [{"field": "points_balance"}]}, "rules/0"),
        ({"op": "and", "rules": [{"field": "spend_fen", "min": 1.5}]}, "rules/0/min"),
        ({"op": "and", "rules": [{"field": "order_count", "min": -1}]}, "rules/0/min"),
        ({"op": "and", "rules": [{"field": "consent", "channel": "fax"}]}, "rules/0/channel"),
        (
            {"op": "and", "rules": [{"field": "lifecycle", "values": ["asleep"]}]},
            "rules/0/values/0",
        ),
        (
            {
                "op": "or",
                "rules": [{"op": "and", "rules": [{"field": "tier", "values": ["a"], "x": 1}]}],
            },
            "rules/0/rules/0/x",
        ),
        (
            {"op": "and", "rules": [{"field": "registered", "on_or_after": "2026-02-30"}]},
            "rules/0/on_or_after",
        ),
    ],
)
def test_bad_trees_name_the_bad_node(raw: object, path: str) -> None:
    assert _err(raw).path == path


def test_size_limits() -> None:
    deep: dict[str, object] = {"field": "tier", "values": ["a"]}
    for _ in range(MAX_DEPTH + 1):
        deep = {"op": "and", "rules": [deep]}
    assert "nest" in _err(deep).message
    wide = {
        "op": "or",
        "rules": [{"op": "and", "rules": [{"field": "tier", "values": ["a"]}] * 30}] * 2,
    }
    assert str(MAX_CONDITIONS) in _err(wide).message


def test_lifecycle_settings_are_ordered() -> None:
    with pytest.raises(ValueError, match="smaller"):
        LifecycleSettings(active_days=200, churned_days=180)


def test_one_select_of_member_ids() -> None:
    tree = {
        "op": "or",
        "rules": [
            {"field": "tag", "op": "all", "values": ["vip", "baby"]},
            {
                "op": "and",
                "rules": [
                    {"field": "lifecycle", "values": ["dormant"]},
                    {"field": "spend_fen", "min": 50000, "window_days": 90},
                    {"field": "consent", "channel": "sms"},
                ],
            },
        ],
    }
    for dialect in (postgresql.dialect(), sqlite.dialect()):
        sql = _sql(tree, dialect)
        assert sql.startswith("SELECT members.id \nFROM members \nWHERE")
        assert sql.count("EXISTS") == 3  # two tags, one consent
        assert (
            " OR " in sql and "CASE" in sql and "sum(orders.total_fen - orders.refunded_fen)" in sql
        )


def test_not_in_keeps_members_without_a_value() -> None:
    sql = _sql({"field": "city", "op": "not_in", "values": ["Shanghai"]})
    assert "members.city IS NULL OR" in sql
