"""A tier held by hand below the tier the growth qualifies for (SQLite and PostgreSQL): the
console previews what the member will see before saving, and after saving the console and the
portal both say the growth qualifies for the higher tier (not "0 more to go") and show the last
day held — the day the operator typed, not the following midnight it is stored as."""

from __future__ import annotations

from typing import Any

from tests.web.test_members_pages import PHONE, _csrf, member, staff  # noqa: F401
from tests.web.test_portal_pages import portal_sign_in


def _to_diamond(client: Any, no: str, auth_headers: Any) -> None:
    # 6,000 + 2 × 7,000 = 20,000: each below the approval limit, so applied at once
    for _ in range(2):
        r = client.post(
            f"/api/v1/members/{no}/points/adjustments",
            json={"ledger": "growth", "amount": 7_000, "reason": "qualifies for diamond"},
            headers=auth_headers("admin"),
        )
        assert r.status_code == 201 and r.json()["status"] == "applied", r.text


def test_a_diamond_qualified_member_held_at_gold(staff, member, client, app, auth_headers):  # noqa: F811
    _to_diamond(client, member, auth_headers)
    operator = staff("operator")
    url = f"/console/members/{member}"
    page = operator.get(url).text
    token = _csrf(page)
    assert 'id="tier-preview"' in page
    hx = {"HX-Request": "true", "X-CSRF-Token": token}
    form = {"tier": "gold", "override_reason": "kept at gold", "until": "2030-06-30"}
    preview = operator.post(f"{url}/tier/preview", data=form, headers=hx)
    assert preview.status_code == 200, preview.text
    assert 'data-qualified="Diamond"' in preview.text, preview.text
    assert 'data-held-through="2030-06-30"' in preview.text
    assert "0 more" not in preview.text
    bad = operator.post(f"{url}/tier/preview", data={**form, "until": "2020-01-01"}, headers=hx)
    assert "The date must be in the future." in bad.text

    saved = operator.post(f"{url}/tier", data={"csrf_token": token, **form})
    assert saved.status_code == 200 and "Tier set." in saved.text
    assert 'data-held-through="2030-06-30"' in saved.text
    assert 'data-qualified="Diamond"' in saved.text
    assert "0 more growth" not in saved.text

    client.headers["Accept-Language"] = "zh-CN"
    portal_sign_in(client, app, PHONE)
    tier = client.get("/portal/tier").text
    assert 'data-held-through="2030-06-30"' in tier
    assert "再获得 0" not in tier and "已达到钻石会员标准" in tier
    home = client.get("/portal/").text
    assert "再获得 0" not in home and "已达到钻石会员标准" in home


def test_tier_benefits_read_as_zhe_in_chinese() -> None:
    from patron.tiers.domain import TierBenefits
    from patron.web import i18n
    from patron.web.portal.tier import benefit_lines

    lines = benefit_lines(TierBenefits(discount_bp=9000, birthday_discount_bp=9500))
    said = [i18n.gettext("zh_CN", msg) % values for msg, values in lines]
    assert "会员价基础上再打 9 折" in said and "生日月再打 9.5 折" in said
    english = [i18n.gettext("en", msg) % values for msg, values in lines]
    assert "Member prices, then 10% off" in english
