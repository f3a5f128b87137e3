"""Configuration pages without a browser (SQLite and PostgreSQL): each section saves valid input
through the same service as the API, audits it, refuses bad input next to the field with 422
and changes nothing; the earning preview runs the real rules engine over the unsaved draft."""

from __future__ import annotations

import html
import re
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from patron.audit.models import AuditRecord
from patron.kit.timeutil import business_tz
from patron.ledger import service as ledger
from patron.orders import service as orders
from patron.orders.pricing import PricingSettings
from patron.program.models import ProgramSetting
from patron.rules.definitions import EarningRules
from patron.rules.domain import preview_earning
from patron.tiers.domain import TierLadder
from patron.web.console.config import expiry_values, ladder_values, pricing_values
from patron.web.console.config_earning import rules_values

PASSWORD = "config-test-pass-1"


def _csrf(text: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', text)
    assert found, text[:500]
    return found.group(1)


def _sign_in(client: Any, database: Any, clock: Any, role: str) -> str:
    from patron.auth import service as auth_service
    from patron.auth.principal import Principal

    with database.unit_of_work() as s:
        auth_service.create_staff(
            s,
            Principal.system("tests"),
            username=f"{role}-cfg",
            display_name=role,
            role=role,
            password=PASSWORD,
            now=clock.now(),
        )
    client.headers["Accept-Language"] = "en"  # messages asserted below are the English ones
    form = client.get("/console/login")
    r = client.post(
        "/console/login",
        data={"username": f"{role}-cfg", "password": PASSWORD, "csrf_token": _csrf(form.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303
    return _csrf(client.get("/console/config").text)


@pytest.fixture
def operator(client: Any, database: Any, clock: Any) -> str:
    """Signs the client in as an operator; returns the session's CSRF token."""
    return _sign_in(client, database, clock, "operator")


def _error(text: str, field: str) -> str:
    found = re.search(rf'data-error-for="{re.escape(field)}">([^<]*)<', text)
    assert found, f"no error next to {field}"
    return html.unescape(found.group(1))


def _errors(text: str) -> set[str]:
    return set(re.findall(r'data-error-for="([^"]+)"', text))


def _settings_rows(database: Any) -> tuple[int, int]:
    with database.unit_of_work() as s:
        rows = s.scalar(select(func.count()).select_from(ProgramSetting))
        audits = s.scalar(
            select(func.count())
            .select_from(AuditRecord)
            .where(AuditRecord.action == "settings.update")
        )
    return int(rows or 0), int(audits or 0)


def _audited(database: Any, key: str) -> AuditRecord:
    with database.unit_of_work() as s:
        record = s.scalars(
            select(AuditRecord).where(
                AuditRecord.action == "settings.update", AuditRecord.entity_id == key
            )
        ).one()
        s.expunge(record)
    return record


def test_only_roles_that_configure_the_program_see_the_pages(client, database, clock):
    _sign_in(client, database, clock, "clerk")
    for path in ("/console/config", "/console/config/tiers", "/console/config/earning"):
        assert client.get(path).status_code == 403
    client.cookies.clear()
    _sign_in(client, database, clock, "operator")
    for path in ("", "/tiers", "/earning", "/points", "/expiry"):
        r = client.get("/console/config" + path)
        assert r.status_code == 200, path
        assert 'data-nav="config" aria-current="page"' in r.text or 'aria-current="page"' in r.text


def test_the_pages_and_their_errors_read_in_chinese(client, database, operator):
    client.headers["Accept-Language"] = "zh-CN"
    for path, word in (
        ("", "等级与权益"),
        ("/tiers", "晋升所需成长值"),
        ("/earning", "品类系数"),
        ("/points", "积分最多抵扣"),
        ("/expiry", "积分何时过期"),
    ):
        r = client.get("/console/config" + path)
        assert r.status_code == 200, path
        assert word in r.text, path
    values = pricing_values(PricingSettings()) | {"csrf_token": operator, "share": "101"}
    r = client.post("/console/config/points", data=values)
    assert _error(r.text, "share") == "不能大于 100%。"
    assert "多得 20% 积分" in client.get("/console/config/tiers").text
    assert _settings_rows(database) == (0, 0)


def test_tier_ladder_saves_through_the_service_and_is_audited(
    client, database, operator, auth_headers
):
    values = ladder_values(TierLadder()) | {"csrf_token": operator}
    values |= {"tier-2-threshold": "6000", "tier-2-multiplier": "1.5", "tier-2-discount": "88.5"}
    values["tier-3-free_orders"] = "2"
    r = client.post("/console/config/tiers", data=values, follow_redirects=False)
    assert r.status_code == 303, _errors(r.text)
    ladder = client.get("/api/v1/tiers", headers=auth_headers("admin")).json()
    gold = ladder["tiers"][2]
    assert gold["threshold"] == 6000
    assert gold["benefits"]["points_multiplier_bp"] == 15000
    assert gold["benefits"]["discount_bp"] == 8850
    assert ladder["tiers"][3]["benefits"]["free_orders_per_year"] == 2
    record = _audited(database, "tiers")
    assert record.actor_label.startswith("operator")
    assert record.after["tiers"][2]["threshold"] == 6000
    page = client.get("/console/config/tiers")
    assert 'value="6000"' in page.text
    assert "Settings saved." in page.text or "设置已保存" in page.text


def test_a_threshold_that_does_not_increase_is_refused_next_to_it(client, database, operator):
    values = ladder_values(TierLadder()) | {"csrf_token": operator, "tier-2-threshold": "900"}
    r = client.post("/console/config/tiers", data=values)
    assert r.status_code == 422
    assert _errors(r.text) == {"tier-2-threshold"}
    assert "1,000" in _error(r.text, "tier-2-threshold")
    assert 'value="900"' in r.text  # what the operator typed is shown again
    assert _settings_rows(database) == (0, 0)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"tier-1-threshold": "lots"}, "tier-1-threshold"),
        ({"tier-1-multiplier": "0.8"}, "tier-1-multiplier"),
        ({"tier-0-threshold": "10"}, "tier-0-threshold"),
        ({"tier-3-code": "silver"}, "tier-3-code"),
        ({"tier-3-retention": "30000"}, "tier-3-retention"),
        ({"tier-1-remove": "on", "tier-2-remove": "on"}, "form"),
    ],
)
def test_bad_ladders_are_refused_and_change_nothing(client, database, operator, changes, field):
    values = ladder_values(TierLadder()) | {"csrf_token": operator} | changes
    r = client.post("/console/config/tiers", data=values)
    assert r.status_code == 422
    assert field in _errors(r.text)
    assert _settings_rows(database) == (0, 0)


def _rules_form(csrf: str, rules: EarningRules | None = None, **changes: str) -> dict[str, str]:
    values = rules_values(rules or EarningRules()) | {"csrf_token": csrf, "action": "save"}
    values |= {"preview_tier": "gold", "preview_amount": "300.00", "preview_category": "beauty"}
    values["preview_at"] = "2026-03-01T12:00"
    return values | changes


def test_earning_rules_save_and_the_api_returns_them(client, database, operator, auth_headers):
    data = _rules_form(
        operator,
        **{
            "base_per": "0.50",
            "cat-0-code": "beauty",
            "cat-0-factor": "1.5",
            "win-0-id": "member_day",
            "win-0-name": "Member day",
            "win-0-kind": "monthly",
            "win-0-days": "5, 20",
            "win-0-multiplier": "2",
            "wel_min": "10.05",
            "daily_cap": "5000",
            "fp_budget": "100000",
        },
    )
    r = client.post("/console/config/earning", data=data, follow_redirects=False)
    assert r.status_code == 303, _errors(r.text)
    saved = EarningRules.model_validate(
        client.get("/api/v1/rules/earning", headers=auth_headers("admin")).json()
    )
    assert saved.base.per_fen == 50
    assert saved.category_coefficients == {"beauty": 15000}
    assert saved.windows[0].id == "member_day"
    assert saved.windows[0].days == (5, 20)  # type: ignore[union-attr]
    assert saved.welcome.min_paid_fen == 1005
    assert saved.daily_cap_points == 5000
    assert saved.first_purchase.budget_points == 100000
    assert _audited(database, "earning").after["category_coefficients"] == {"beauty": 15000}
    page = client.get("/console/config/earning")
    assert 'value="1.5"' in page.text
    assert 'value="0.50"' in page.text


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"base_points": "-1"}, "base_points", "1"),
        ({"base_per": "1.005"}, "base_per", "2"),
        ({"wel_points": "lots"}, "wel_points", ""),
        ({"cat-0-code": "beauty", "cat-0-factor": "abc"}, "cat-0-factor", ""),
        ({"cat-0-code": "beauty", "cat-0-factor": "11"}, "cat-0-factor", "×10"),
        ({"cat-0-code": "bad code", "cat-0-factor": "1.2"}, "cat-0-code", ""),
        ({"fp_bonus": "-5"}, "fp_bonus", "0%"),
        (
            {"win-0-id": "d", "win-0-kind": "date_range", "win-0-start": "2026-03-09"}
            | {"win-0-end": "2026-03-02", "win-0-multiplier": "2"},
            "win-0-end",
            "",
        ),
        (
            {"win-0-id": "base", "win-0-kind": "weekly", "win-0-days": "6"}
            | {"win-0-multiplier": "2"},
            "win-0-id",
            "",
        ),
    ],
)
def test_bad_earning_rules_are_refused_next_to_the_field(
    client, database, operator, changes, field, words
):
    r = client.post("/console/config/earning", data=_rules_form(operator, **changes))
    assert r.status_code == 422
    assert field in _errors(r.text), _errors(r.text)
    assert words in _error(r.text, field)
    assert _settings_rows(database) == (0, 0)


def test_points_value_and_share_save_and_are_validated(client, database, operator, auth_headers):
    values = pricing_values(PricingSettings()) | {"csrf_token": operator}
    for changes, field in (
        ({"share": "150"}, "share"),
        ({"unit_value": "1.234"}, "unit_value"),
        ({"points_per_unit": "ten"}, "points_per_unit"),
    ):
        r = client.post("/console/config/points", data=values | changes)
        assert r.status_code == 422
        assert _errors(r.text) == {field}
    assert "100%" in _error(
        client.post("/console/config/points", data=values | {"share": "100.5"}).text, "share"
    )
    assert _settings_rows(database) == (0, 0)
    good = values | {"share": "30", "unit_value": "0.50", "points_per_unit": "100"}
    saved = client.post("/console/config/points", data=good, follow_redirects=False)
    assert saved.status_code == 303
    pricing = client.get("/api/v1/rules/pricing", headers=auth_headers("admin")).json()
    assert pricing["max_points_share_bp"] == 3000
    assert pricing["unit_fen"] == 50
    assert _audited(database, orders.PRICING_SECTION).after["max_points_share_bp"] == 3000


def test_expiry_policy_saves_and_is_validated(client, database, operator, auth_headers):
    values = expiry_values(ledger.PointsSettings()) | {"csrf_token": operator}
    r = client.post("/console/config/expiry", data=values | {"kind": "sometimes"})
    assert r.status_code == 422
    assert _errors(r.text) == {"kind"}
    r = client.post("/console/config/expiry", data=values | {"reminder_days": "0"})
    assert _errors(r.text) == {"reminder_days"}
    assert _settings_rows(database) == (0, 0)
    good = values | {"kind": "end_of_year", "n": "1", "reminder_days": "14"}
    saved = client.post("/console/config/expiry", data=good, follow_redirects=False)
    assert saved.status_code == 303
    saved = client.get("/api/v1/points/settings", headers=auth_headers("admin")).json()
    assert saved["expiry"] == {"kind": "end_of_year", "n": 1}
    assert saved["reminder_days"] == 14
    assert _audited(database, ledger.SECTION).after["expiry"]["kind"] == "end_of_year"


def _engine(rules: EarningRules, tier: str, amount_fen: int, category: str, at: str) -> int:
    ladder = TierLadder()
    multiplier = ladder.get(tier).benefits.points_multiplier_bp
    tz = business_tz("Asia/Shanghai")
    return preview_earning(
        rules,
        amount_fen=amount_fen,
        category=category,
        at=datetime.fromisoformat(at).replace(tzinfo=tz),
        tz=tz,
        tier_code=tier,
        tier_multiplier_bp=multiplier,
    ).points


DRAFT = {
    "cat-0-code": "beauty",
    "cat-0-factor": "1.5",
    "win-0-id": "member_day",
    "win-0-name": "Member day",
    "win-0-kind": "monthly",
    "win-0-days": "5",
    "win-0-multiplier": "2",
}


@pytest.mark.parametrize(
    ("tier", "amount", "category", "at", "combine"),
    [
        ("gold", "300.00", "food", "2026-03-02T12:00", "highest"),  # tier multiplier only
        ("silver", "300.00", "beauty", "2026-03-02T12:00", "highest"),  # + category coefficient
        ("gold", "300.00", "beauty", "2026-03-05T12:00", "highest"),  # double window wins
        ("diamond", "123.45", "beauty", "2026-03-05T23:30", "multiply"),  # all multiply
    ],
)
def test_the_preview_runs_the_engine_over_the_draft_and_writes_nothing(
    client, database, operator, tier, amount, category, at, combine
):
    data = _rules_form(operator, **DRAFT, combine=combine) | {
        "preview_tier": tier,
        "preview_amount": amount,
        "preview_category": category,
        "preview_at": at,
    }
    draft = EarningRules.model_validate(
        {
            "category_coefficients": {"beauty": 15000},
            "combine": combine,
            "windows": [{"kind": "monthly", "id": "member_day", "name": "Member day", "days": [5]}],
        }
    )
    amount_fen = int(amount.replace(".", ""))
    expected = _engine(draft, tier, amount_fen, category, at)
    r = client.post("/console/config/earning/preview", data=data, headers={"HX-Request": "true"})
    assert r.status_code == 200, r.text
    assert f'data-points="{expected}"' in r.text
    assert "<html" not in r.text  # only the box, for htmx to swap
    # Without JavaScript, the same button posts the page back with the preview filled in.
    full = client.post("/console/config/earning", data=data | {"action": "preview"})
    assert full.status_code == 200
    assert f'data-points="{expected}"' in full.text
    assert 'value="1.5"' in full.text  # the draft stays in the form, unsaved
    assert _settings_rows(database) == (0, 0)


def test_the_preview_defaults_to_gold_300_on_beauty_on_the_next_member_day(client, operator):
    data = _rules_form(operator, **DRAFT)
    saved = client.post("/console/config/earning", data=data, follow_redirects=False)
    assert saved.status_code == 303
    page = client.get("/console/config/earning").text
    assert 'value="2026-03-05T12:00"' in page  # the clock is at 2026-03-01; member day the 5th
    assert 'value="300.00"' in page
    expected = _engine(
        EarningRules.model_validate(
            {
                "category_coefficients": {"beauty": 15000},
                "windows": [{"kind": "monthly", "id": "member_day", "days": [5]}],
            }
        ),
        "gold",
        30000,
        "beauty",
        "2026-03-05T12:00",
    )
    assert f'data-points="{expected}"' in page
    assert expected == 900  # 300 × 1.5 × 2 (the window beats gold's ×1.4)


def test_a_preview_of_an_invalid_draft_lists_the_problems(client, database, operator):
    data = _rules_form(operator, base_points="-3") | {"preview_amount": "3.333"}
    data["preview_category"] = "美妆"
    r = client.post("/console/config/earning/preview", data=data, headers={"HX-Request": "true"})
    assert r.status_code == 422
    assert 'href="#f-base_points"' in r.text
    assert 'href="#f-preview_amount"' in r.text
    assert 'href="#f-preview_category"' in r.text
    assert "data-points" not in r.text
    assert _settings_rows(database) == (0, 0)


def test_a_save_made_after_the_page_was_opened_is_not_overwritten(client, database, operator):
    page = client.get("/console/config/points").text
    opened = re.search(r'name="version" value="(\d+)"', page)
    assert opened and opened.group(1) == "0"
    values = pricing_values(PricingSettings()) | {"csrf_token": operator, "version": "0"}
    # Someone else saves first (the same form, opened at the same time) …
    first = client.post("/console/config/points", data=values | {"share": "40"})
    assert first.status_code == 200  # followed the redirect back to the page
    assert "Last saved" in first.text
    # … so this stale form is refused instead of silently undoing their change.
    r = client.post("/console/config/points", data=values | {"share": "20"})
    assert r.status_code == 409
    assert "after you opened this page" in _error(r.text, "form")
    assert 'value="20"' in r.text
    with database.unit_of_work() as s:
        assert orders.pricing_settings(s).max_points_share_bp == 4000
    assert _settings_rows(database) == (1, 1)
    overview = client.get("/console/config").text
    assert "version 1" in overview


@pytest.mark.parametrize(
    ("kind", "typed", "stored"),
    [
        ("money", "19.99", 1999),  # 19.99 * 100 is 1998.9999… as a float
        ("money", "0.07", 7),
        ("money", "¥1,234,567.8", 123456780),
        ("percent", "92.5", 9250),
        ("percent", "0.01", 1),
        ("factor", "1.4", 14000),
        ("factor", "×1.0001", 10001),
    ],
)
def test_operator_numbers_convert_exactly(kind, typed, stored):
    from patron.web.console.config_forms import DraftForm, factor_text, percent_text, yuan_text

    form = DraftForm(raw={"x": typed}, tr=str)
    assert form.scaled("x", ("x",), kind) == stored
    assert not form.errors
    shown = {"money": yuan_text, "percent": percent_text, "factor": factor_text}[kind](stored)
    assert DraftForm(raw={"x": shown}, tr=str).scaled("x", ("x",), kind) == stored
