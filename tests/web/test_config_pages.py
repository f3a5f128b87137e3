"""Configuration pages without a browser (SQLite and PostgreSQL): each section saves valid input
through the same service as the API, audits it, refuses bad input next to the field with 422
and changes nothing; the earning preview runs the real rules engine over the unsaved draft."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import event, func, select

from patron.audit.models import AuditRecord
from patron.auth.principal import Principal
from patron.kit.timeutil import business_tz
from patron.ledger import flows
from patron.ledger import service as ledger
from patron.ledger.domain import MAX_EXPIRY_N, ExpiryPolicy, compute_expiry, earned_before
from patron.members.models import Member
from patron.orders import service as orders
from patron.orders.pricing import PricingSettings
from patron.program.models import ProgramSetting
from patron.rules.definitions import EarningRules
from patron.rules.domain import preview_earning
from patron.tiers import domain as tier_domain
from patron.tiers import service as tiers_service
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
    r = client.post("/console/config/expiry", data=values | {"daily_limit": "-1"})
    assert _errors(r.text) == {"daily_limit"}
    assert _settings_rows(database) == (0, 0)
    good = values | {"kind": "end_of_year", "n": "1", "reminder_days": "14"}
    good |= {"daily_limit": "30,000", "direct_earn_limit": "500"}
    saved = client.post("/console/config/expiry", data=good, follow_redirects=False)
    assert saved.status_code == 303
    saved = client.get("/api/v1/points/settings", headers=auth_headers("admin")).json()
    assert saved["expiry"] == {"kind": "end_of_year", "n": 1}
    assert saved["reminder_days"] == 14
    assert (saved["adjustment_daily_limit"], saved["direct_earn_limit"]) == (30_000, 500)
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


# ---- previews of the tier ladder, the points value and the expiry policy ---------------------

SH = business_tz("Asia/Shanghai")


@contextmanager
def _no_writes(database: Any) -> Iterator[list[str]]:
    """Every INSERT, UPDATE or DELETE sent to the database while the block runs."""
    seen: list[str] = []

    def spy(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            seen.append(statement)

    event.listen(database.engine, "before_cursor_execute", spy)
    try:
        yield seen
    finally:
        event.remove(database.engine, "before_cursor_execute", spy)


def _member_ids(database: Any, numbers: list[str]) -> list[int]:
    with database.unit_of_work() as s:
        found = {m.member_no: m.id for m in s.execute(select(Member.member_no, Member.id))}
    return [found[n] for n in numbers]


def _earn(database: Any, clock: Any, member_id: int, at: datetime, **kw: Any) -> None:
    """Points (and growth) earned at ``at``, through the ledger flow the API uses."""
    now = clock.now()
    clock.set(at)
    with database.unit_of_work() as s:
        ctx = ledger.Ctx(Principal.system("tests"), at, SH, ledger.get_points_settings(s))
        source = f"seed-{member_id}-{at.isoformat()}-{kw.get('points')}"
        flows.earn(s, ctx, member_id, source_type="test", source_id=source, **kw)
    clock.set(now)


def _preview(client: Any, path: str, data: dict[str, str]) -> Any:
    return client.post(f"/console/config/{path}/preview", data=data, headers={"HX-Request": "1"})


def _attr(text: str, selector: str, name: str) -> str:
    found = re.search(rf"<[^>]*{selector}[^>]*\b{name}=\"([^\"]*)\"", text)
    assert found, f"no {name} on {selector}"
    return found.group(1)


@pytest.fixture
def ladder_members(client, database, clock, make_member, operator):
    """Six members (clock: 2026-03-01 in Shanghai, growth window: the last 12 months):
    A Gold with 5,500 growth; B Silver with 1,200; C never earned (no tier row); D Gold from
    5,200 growth earned in January 2025 (none in the window); E held at Gold by an override,
    no growth; F Silver from 1,000 growth in January 2025 and 900 in the window."""
    a, b, c, d, e, f = _member_ids(database, [make_member() for _ in range(6)])
    long_ago = datetime(2025, 1, 15, 10, tzinfo=SH)
    recently = datetime(2026, 2, 10, 10, tzinfo=SH)
    _earn(database, clock, a, recently, points=1, growth_value=5_500)
    _earn(database, clock, b, recently, points=1, growth_value=1_200)
    _earn(database, clock, d, long_ago, points=1, growth_value=5_200)
    _earn(database, clock, f, long_ago, points=1, growth_value=1_000)
    _earn(database, clock, f, recently, points=1, growth_value=900)
    with database.unit_of_work() as s:
        ctx = ledger.Ctx(Principal.system("tests"), clock.now(), SH)
        tiers_service.override(s, ctx, e, tier_code="gold", reason="VIP", until=None)
    return {"a": a, "b": b, "c": c, "d": d, "e": e, "f": f}


def _tier_counts(text: str, code: str) -> tuple[str, str, str]:
    row = re.search(
        rf'<tr data-tier="{code}" data-now="(\d*)" data-saved="(\d*)" data-draft="(\d*)"', text
    )
    assert row, f"no row for {code}"
    return row.group(1), row.group(2), row.group(3)


def test_the_tier_preview_counts_members_per_tier_for_the_draft(
    client, database, operator, ladder_members
):
    values = ladder_values(TierLadder()) | {"csrf_token": operator}
    page = client.get("/console/config/tiers").text
    assert _attr(page, 'id="tiers-preview"', "data-members") == "6"
    # Draft: Silver is kept only at 1,000 (was 800); Gold needs 6,000 to reach and to keep.
    draft = values | {"tier-1-retention": "", "tier-2-threshold": "6000", "tier-2-retention": ""}
    with _no_writes(database) as writes:
        r = _preview(client, "tiers", draft)
    assert r.status_code == 200, r.text
    assert "<html" not in r.text
    assert writes == []
    # (now, after the next evaluation with the saved ladder, with the draft)
    assert _tier_counts(r.text, "regular") == ("1", "2", "3")  # C; + D; + F
    assert _tier_counts(r.text, "silver") == ("2", "2", "2")  # B, F; B, F; B, A
    assert _tier_counts(r.text, "gold") == ("3", "2", "1")  # A, D, E; A, E; E (held)
    assert _tier_counts(r.text, "diamond") == ("0", "0", "0")
    assert _attr(r.text, 'id="tiers-preview"', "data-down") == "3"  # A, D, F
    assert _attr(r.text, 'id="tiers-preview"', "data-down-saved") == "1"  # D
    assert "after 30 grace days): 3 with this draft, 1 with the saved ladder" in r.text
    # Without JavaScript the same button posts the page back, the draft still in the form.
    full = client.post("/console/config/tiers", data=draft | {"action": "preview"})
    assert full.status_code == 200
    assert _tier_counts(full.text, "gold") == ("3", "2", "1")
    assert 'value="6000"' in full.text
    assert _settings_rows(database) == (0, 0)


def test_the_tier_preview_says_where_holders_of_a_removed_tier_go(
    client, database, operator, ladder_members
):
    values = ladder_values(TierLadder()) | {"csrf_token": operator}
    with _no_writes(database) as writes:
        r = _preview(client, "tiers", values | {"tier-2-remove": "on"})
    assert r.status_code == 200, r.text
    assert writes == []
    assert _tier_counts(r.text, "gold") == ("3", "2", "")
    assert "removed by this draft" in r.text
    assert _attr(r.text, 'data-removed="gold"', "data-members") == "3"
    text = html.unescape(r.text)
    assert "This draft removes Gold, which 3 members hold now" in text
    assert "they count as Regular, the base tier" in text
    # A's 5,500 growth reaches Silver; D has none; E's override holds a tier that is gone.
    assert re.search(r'data-tier="silver" data-members="1">Silver 1<', r.text)
    assert re.search(r'data-tier="regular" data-members="2">Regular 2<', r.text)
    assert _tier_counts(r.text, "regular") == ("1", "2", "3")  # C, D, E
    assert _tier_counts(r.text, "silver") == ("2", "2", "3")  # B, F, A


def test_a_tier_preview_of_a_bad_ladder_lists_the_problems(client, database, operator):
    values = ladder_values(TierLadder()) | {"csrf_token": operator, "tier-2-threshold": "900"}
    with _no_writes(database) as writes:
        r = _preview(client, "tiers", values)
    assert r.status_code == 422
    assert 'href="#f-tier-2-threshold"' in r.text
    assert "data-members" not in r.text
    assert writes == []
    full = client.post("/console/config/tiers", data=values | {"action": "preview"})
    assert full.status_code == 422
    assert "1,000" in _error(full.text, "tier-2-threshold")
    assert _settings_rows(database) == (0, 0)


@pytest.fixture
def points_held(client, database, clock, make_member, operator):
    """12,345 points spendable (X), 1,000 pending for 7 days (Y), 300 past expiry (Z)."""
    x, y, z = _member_ids(database, [make_member() for _ in range(3)])
    _earn(database, clock, x, clock.now(), points=12_345)
    _earn(database, clock, y, clock.now(), points=1_000, pending_days=7)
    _earn(database, clock, z, datetime(2025, 2, 1, 10, tzinfo=SH), points=300)


def test_the_points_preview_works_examples_from_the_draft(client, database, operator, points_held):
    values = pricing_values(PricingSettings()) | {"csrf_token": operator}
    page = client.get("/console/config/points").text
    assert 'value="1000"' in page and 'value="300.00"' in page
    assert "1,000 points pay ¥10.00" in page
    # Draft: 100 points pay ¥0.50, points pay at most 30 % of an order.
    draft = values | {"unit_value": "0.50", "share": "30"}
    draft |= {"preview_points": "1000", "preview_order": "300.00"}
    with _no_writes(database) as writes:
        r = _preview(client, "points", draft)
    assert r.status_code == 200, r.text
    assert writes == []
    text = html.unescape(r.text)
    assert "1,000 points pay ¥5.00" in text
    assert "(saved settings: ¥10.00)" in text
    # 30 % of ¥300.00 = ¥90.00 = 18,000 points (spent in pairs: one point is worth half a fen).
    assert "points may pay at most ¥90.00, with 18,000 points" in text
    assert "saved settings: ¥150.00, with 15,000 points" in text
    assert "Points are spent in multiples of 2." in text
    # Outstanding: 12,345 + 1,000 pending; Z's 300 are past their date.
    assert "Points members hold now: 13,345 (12,345 spendable, 1,000 pending)" in text
    assert "worth ¥66.72 at this value and ¥133.45 at the saved value (a change of -¥66.73)" in text
    assert _attr(r.text, 'data-fact="liability"', "data-fen") == "6672"
    full = client.post("/console/config/points", data=draft | {"action": "preview"})
    assert full.status_code == 200
    assert "1,000 points pay ¥5.00" in html.unescape(full.text)
    assert 'value="0.50"' in full.text
    assert _settings_rows(database) == (0, 0)


def test_a_points_preview_of_a_bad_draft_lists_the_problems(client, database, operator):
    values = pricing_values(PricingSettings()) | {"csrf_token": operator, "share": "150"}
    values |= {"preview_points": "1000", "preview_order": "abc"}
    with _no_writes(database) as writes:
        r = _preview(client, "points", values)
    assert r.status_code == 422
    assert 'href="#f-share"' in r.text
    assert 'href="#f-preview_order"' in r.text
    assert "data-fact" not in r.text
    assert writes == []
    full = client.post("/console/config/points", data=values | {"action": "preview"})
    assert full.status_code == 422
    assert _errors(full.text) == {"share", "preview_order"}
    assert _settings_rows(database) == (0, 0)


@pytest.fixture
def lots_and_holds(client, database, clock, make_member, operator):
    """Under the default policy (365 days): 500 points valid through 2026-03-20, 700 through
    2026-05-01, and 400 earned today, pending for 7 days."""
    p, q, r = _member_ids(database, [make_member() for _ in range(3)])
    _earn(database, clock, p, datetime(2025, 3, 20, 10, tzinfo=SH), points=500)
    _earn(database, clock, q, datetime(2025, 5, 1, 10, tzinfo=SH), points=700)
    _earn(database, clock, r, clock.now(), points=400, pending_days=7)


def _until(text: str, earned: str) -> str:
    return _attr(text, f'data-earned="{earned}"', "data-until")


def test_the_expiry_preview_dates_points_and_counts_what_falls_due(
    client, database, operator, lots_and_holds
):
    values = expiry_values(ledger.PointsSettings()) | {"csrf_token": operator}
    page = client.get("/console/config/expiry").text
    assert _until(page, "2026-03-01") == "2027-03-01"  # 365 days after today
    # Draft: points expire at the end of the month they are earned in.
    draft = values | {"kind": "end_of_month", "n": "0"}
    with _no_writes(database) as writes:
        r = _preview(client, "expiry", draft)
    assert r.status_code == 200, r.text
    assert writes == []
    assert _until(r.text, "2026-03-01") == "2026-03-31"  # today
    assert _until(r.text, "2026-03-31") == "2026-03-31"  # the last day of this month
    assert _until(r.text, "2027-01-01") == "2027-01-31"  # the first day of next year
    assert "Points earned on 2026-03-01 (today) can be used until 2026-03-31." in r.text
    # Lots keep their dates: the 500 due on 20 March are due whatever the draft says; the
    # pending 400 get their date when released, so the draft moves them into the 30 days.
    assert _attr(r.text, 'id="expiry-preview"', "data-lots-due") == "500"
    assert "in the next 30 days (by 2026-03-31): 500 points, whatever the policy" in r.text
    assert _attr(r.text, 'id="expiry-preview"', "data-pending") == "400"
    assert _attr(r.text, 'id="expiry-preview"', "data-pending-due") == "400"
    assert _attr(r.text, 'id="expiry-preview"', "data-pending-due-saved") == "0"
    never = _preview(client, "expiry", values | {"kind": "never", "n": ""})
    assert _until(never.text, "2026-03-01") == "never"
    assert "never expire" in never.text
    assert _attr(never.text, 'id="expiry-preview"', "data-pending-due") == "0"
    full = client.post("/console/config/expiry", data=draft | {"action": "preview"})
    assert full.status_code == 200
    assert _until(full.text, "2026-03-01") == "2026-03-31"
    assert _settings_rows(database) == (0, 0)


def test_an_expiry_preview_of_a_bad_draft_lists_the_problems(client, database, operator):
    values = expiry_values(ledger.PointsSettings()) | {"csrf_token": operator}
    with _no_writes(database) as writes:
        r = _preview(client, "expiry", values | {"kind": "sometimes"})
        far = _preview(client, "expiry", values | {"kind": "end_of_year", "n": "9000"})
    assert writes == []
    assert r.status_code == 422
    assert 'href="#f-kind"' in r.text
    assert far.status_code == 422
    assert 'href="#f-n"' in far.text
    assert "at most 100" in far.text  # a century of years at most
    full = client.post(
        "/console/config/expiry",
        data=values | {"kind": "end_of_year", "n": "9000"} | {"action": "preview"},
    )
    assert full.status_code == 422
    assert "at most 100" in _error(full.text, "n")
    assert _settings_rows(database) == (0, 0)


def test_the_previews_read_in_chinese(client, database, operator):
    client.headers["Accept-Language"] = "zh-CN"
    assert "下次评定后（此草稿）" in client.get("/console/config/tiers").text
    assert "1,000 积分抵 ¥10.00" in client.get("/console/config/points").text
    assert "（今天）获得的积分可使用至 2027-03-01" in client.get("/console/config/expiry").text


# ---- the pure rules behind the previews ------------------------------------------------------


@given(
    members=st.lists(
        st.tuples(
            st.sampled_from([None, "regular", "silver", "gold", "diamond", "gone"]),
            st.booleans(),
            st.integers(-50, 30_000),
            st.integers(-50, 30_000),
        ),
        max_size=30,
    ),
    thresholds=st.lists(st.integers(1, 25_000), min_size=2, max_size=4, unique=True),
    keep=st.lists(st.integers(0, 100), min_size=4, max_size=4),
)
def test_a_forecast_by_growth_band_equals_one_member_at_a_time(members, thresholds, keep):
    """Counting members per band of ``growth_bounds`` gives what evaluating each would."""
    saved = TierLadder()
    codes = ["regular", "silver", "gold", "diamond", "platinum"][: len(thresholds) + 1]
    levels = [0, *sorted(thresholds)]
    draft = TierLadder(
        tiers=[
            {"code": c, "name": c, "threshold": t, "retention_threshold": t * k // 100}
            for c, t, k in zip(codes, levels, [*keep, 100], strict=False)
        ],
        grace_days=7,
    )
    bounds = tier_domain.growth_bounds(saved, draft)
    groups = [
        tier_domain.MemberGroup(
            current,
            held,
            tier_domain.band_floor(bounds, tier_domain.band_of(bounds, g)),
            tier_domain.band_floor(bounds, tier_domain.band_of(bounds, gs)),
            1,
        )
        for current, held, g, gs in members
    ]
    exact = [tier_domain.MemberGroup(c, h, g, gs, 1) for c, h, g, gs in members]
    assert tier_domain.forecast(saved, draft, groups) == tier_domain.forecast(saved, draft, exact)


@given(
    kind=st.sampled_from(["days_after", "end_of_month", "end_of_year"]),
    n=st.integers(0, 800),
    offset=st.integers(-900, 60),
)
def test_earned_before_splits_earning_days_by_expiry(kind, n, offset):
    policy = ExpiryPolicy(kind=kind, n=min(n, MAX_EXPIRY_N[kind]))
    by = datetime(2026, 3, 31, 16, 0, tzinfo=UTC)  # midnight ending 31 March in Shanghai
    cutoff = earned_before(policy, by, SH)
    assert cutoff is not None
    earned = datetime(2026, 3, 1, 4, tzinfo=UTC) + timedelta(days=offset)
    first = datetime(1900, 1, 1, tzinfo=SH)  # no points were earned before
    for at in (earned, max(cutoff - timedelta(microseconds=1), first), cutoff):
        expires = compute_expiry(at, policy, SH)
        assert expires is not None
        assert (expires <= by) == (at < cutoff)
    assert earned_before(ExpiryPolicy(kind="never"), by, SH) is None
