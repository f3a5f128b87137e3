"""Console pages made easier to use (SQLite and PostgreSQL): the API key form explains every
scope and offers to copy a new secret; the member page uses the screen's width."""

from __future__ import annotations

import re

from patron.auth import permissions as perm
from patron.web.console.admin import SCOPE_HELP
from tests.web.test_members_pages import member, staff  # noqa: F401
from tests.web.test_pages import _csrf


def test_every_api_key_scope_is_explained():
    assert set(SCOPE_HELP) == set(perm.API_KEY_SCOPES)


def test_api_key_form_explains_scopes_and_offers_to_copy_the_secret(staff):  # noqa: F811
    admin = staff("admin")
    page = admin.get("/console/admin/keys")
    for scope in perm.API_KEY_SCOPES:
        assert f'data-scope-help="{scope}">' in page.text
    help_text = re.search(r'data-scope-help="members:pii">([^<]*)<', page.text).group(1)
    assert help_text == "See phone numbers and email addresses unmasked. Grant it sparingly."
    admin.headers["Accept-Language"] = "zh-CN"
    zh = admin.get("/console/admin/keys").text
    assert "查看完整的手机号和邮箱。请谨慎授予。" in zh
    admin.headers["Accept-Language"] = "en"
    created = admin.post(
        "/console/admin/keys",
        data={"name": "POS", "scopes": ["members:read"], "csrf_token": _csrf(page.text)},
    )
    assert created.status_code == 200
    assert 'id="new-secret" data-secret>ptn_' in created.text
    assert 'data-copy="new-secret"' in created.text


def test_member_page_uses_the_screen_width(staff, member):  # noqa: F811
    page = staff("clerk").get(f"/console/members/{member}?tab=points").text
    assert '<main id="main" class="page wide">' in page
    assert '<div class="table-wrap">' in page


def _earning_setup(database, clock):
    from patron.auth.principal import Principal
    from patron.catalog import service as catalog
    from patron.catalog.schemas import CategoryIn
    from patron.orders import service as orders
    from patron.program import service as program
    from patron.rules.definitions import EarningRules

    system = Principal.system("tests")
    rules = EarningRules.model_validate(
        {
            "category_coefficients": {"beauty": 12000},
            "windows": [
                {"kind": "monthly", "id": "member_day", "name": "Member day", "days": [5]},
                {"kind": "date_range", "id": "spring", "name": "Spring sale",
                 "multiplier_bp": 20000, "start": "2026-01-01", "end": "2026-01-10"},
            ],
        }
    )  # fmt: skip
    with database.unit_of_work() as s:
        for code, name in (("beauty", "美妆"), ("baby", "母婴")):
            catalog.upsert_category(s, system, CategoryIn(code=code, name=name), now=clock.now())
        program.put_section(s, system, orders.EARNING_SECTION, rules, now=clock.now())


def test_earning_rules_pick_categories_from_a_list_and_fold_ended_windows(
    staff,  # noqa: F811
    database,
    clock,
):
    _earning_setup(database, clock)
    page = staff("operator").get("/console/config/earning").text
    select = re.search(
        r'<select id="f-cat-0-code" name="cat-0-code"[^>]*>(.*?)</select>', page, re.S
    )
    assert select, "the category is chosen from a list"
    assert '<option value="beauty" selected>美妆</option>' in select.group(1)
    assert "母婴" in select.group(1)
    assert '<select id="f-preview_category"' in page
    folded = re.search(
        r"<details class=\"past-windows\" data-past-windows>(.*?)</details>", page, re.S
    )
    assert folded and "Ended windows: 1" in folded.group(1)
    assert 'value="spring"' in folded.group(1) and 'value="member_day"' not in folded.group(1)
    assert '<aside class="config-side">' in page
