"""A tier held by hand (SQLite and PostgreSQL): the console's preview names the tier it sets and
the one it replaces and says where today's growth puts the member after the hold; the audit
log shows the last day held in the business timezone, not the UTC instant after it."""

from __future__ import annotations

from typing import Any

from tests.web.test_members_pages import _csrf, member, staff  # noqa: F401
from tests.web.test_tier_hold_pages import _to_diamond

# Far enough ahead that the test does not depend on today's date.
LAST_DAY = "2030-06-30"


def test_the_preview_names_the_tier_set_and_what_follows_the_hold(
    staff,  # noqa: F811
    member,  # noqa: F811
    client: Any,
    auth_headers: Any,
) -> None:
    _to_diamond(client, member, auth_headers)
    operator = staff("operator")
    url = f"/console/members/{member}"
    token = _csrf(operator.get(url).text)
    hx = {"HX-Request": "true", "X-CSRF-Token": token}
    form = {"tier": "gold", "override_reason": "kept at gold", "until": LAST_DAY}
    text = operator.post(f"{url}/tier/preview", data=form, headers=hx).text
    assert 'data-preview-tier="gold"' in text and "Tier once saved: Gold (now Diamond)." in text
    assert 'data-after-hold="diamond"' in text
    assert f"After {LAST_DAY} the growth decides again: today it qualifies for Diamond." in text
    # Held until changed again: no end, so nothing is said about after it.
    open_ended = operator.post(f"{url}/tier/preview", data={**form, "until": ""}, headers=hx)
    assert 'data-preview-tier="gold"' in open_ended.text
    assert "data-after-hold" not in open_ended.text


def test_the_audit_log_shows_the_last_day_held(staff, member) -> None:  # noqa: F811
    admin = staff("admin")
    url = f"/console/members/{member}"
    token = _csrf(admin.get(url).text)
    form = {"csrf_token": token, "tier": "gold", "override_reason": "kept", "until": LAST_DAY}
    assert admin.post(f"{url}/tier", data=form).status_code == 200
    form = {"csrf_token": token, "tier": "silver", "override_reason": "again", "until": ""}
    assert admin.post(f"{url}/tier", data=form).status_code == 200
    for page in (f"{url}?tab=audit", f"/console/audit?member={member}"):
        text = admin.get(page).text
        assert f"<dt>Held through</dt><dd>{LAST_DAY}</dd>" in text, page
        assert "+00:00" not in text and "T16:00" not in text
