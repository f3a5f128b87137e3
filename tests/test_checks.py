"""`patron check` runs every domain's reconciliation and reports them together."""

from __future__ import annotations

from typing import Any

import pytest

from patron import checks


def test_every_registered_check_resolves_to_a_function() -> None:
    for ref in checks.DOMAIN_CHECKS:
        assert callable(checks._load(ref)), ref


def _one(session: Any, *, now: Any, member_id: Any) -> list[str]:
    return [f"one:{member_id}"]


def _two(session: Any, *, now: Any, member_id: Any) -> list[str]:
    return ["two"]


def test_run_all_reports_every_domain_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        checks, "DOMAIN_CHECKS", ("tests.test_checks:_one", "tests.test_checks:_two")
    )
    assert checks.run_all(None, member_id=5) == ["one:5", "two"]  # type: ignore[arg-type]
