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
    assert 'id="new-secret">ptn_' in created.text
    assert 'data-copy="new-secret"' in created.text


def test_member_page_uses_the_screen_width(staff, member):  # noqa: F811
    page = staff("clerk").get(f"/console/members/{member}?tab=points").text
    assert '<main id="main" class="page wide">' in page
    assert '<div class="table-wrap">' in page
