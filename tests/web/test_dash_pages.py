"""Dashboard and admin pages without a browser (SQLite and PostgreSQL): range validation, bad
input on every admin form (422, error next to the field, nothing written), permissions."""

from __future__ import annotations

import json
import re

from sqlalchemy import func, select

from patron.audit.models import AuditRecord
from patron.auth.models import ApiKey, StaffUser
from tests.web.test_pages import _csrf, _sign_in, _staff


def _admin(client, database, clock):
    client.headers["Accept-Language"] = "en"
    user = _staff(database, clock, "admin")
    assert _sign_in(client, user).status_code == 303
    return user


def _count(database, model) -> int:
    with database.unit_of_work() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def _error(html: str, field: str) -> str:
    found = re.search(rf'data-error-for="{field}">([^<]*)<', html)
    return found.group(1) if found else ""


def test_dashboard_renders_kpis_and_chart_data(client, database, clock):
    _admin(client, database, clock)
    r = client.get("/console/")
    assert r.status_code == 200
    assert 'data-kpi="members_total"' in r.text
    data = json.loads(re.search(r'id="dash-data">(.*?)</script>', r.text, re.S).group(1))
    assert len(data["labels"]) == 30  # the default range: the last 30 days, daily
    assert data["labels"][-1] == "2026-03-01"
    assert "/static/vendor/echarts.min.js" in r.text
    r = client.get("/console/?days=7")
    assert (
        len(
            json.loads(re.search(r'id="dash-data">(.*?)</script>', r.text, re.S).group(1))["labels"]
        )
        == 7
    )
    # A long custom range is shown week by week.
    r = client.get("/console/?from=2025-03-02&to=2026-03-01")
    assert r.status_code == 200
    data = json.loads(re.search(r'id="dash-data">(.*?)</script>', r.text, re.S).group(1))
    assert data["granularity"] == "week"


def test_dashboard_refuses_bad_ranges_next_to_the_field(client, database, clock):
    _admin(client, database, clock)
    cases = [
        (
            "?from=2026-03-01&to=2026-02-01",
            "from",
            "The start date must not be after the end date.",
        ),
        ("?from=2023-01-01&to=2026-03-01", "from", "The range may span at most two years."),
        ("?from=yesterday&to=2026-03-01", "from", "Enter a start date (YYYY-MM-DD)."),
        ("?from=2026-02-01&to=", "to", "Enter an end date (YYYY-MM-DD)."),
        ("?days=12", "days", "Choose 7, 30 or 90 days."),
    ]
    for query, field, message in cases:
        r = client.get("/console/" + query)
        assert r.status_code == 422, query
        assert _error(r.text, field) == message, query
        assert "dash-data" not in r.text
    # Exactly two years (731 days across a leap day) is allowed.
    assert client.get("/console/?from=2024-03-01&to=2026-03-01").status_code == 200


def test_dashboard_errors_are_translated(client, database, clock):
    _admin(client, database, clock)
    client.cookies.set("patron_lang", "zh_CN")
    with database.unit_of_work() as s:
        s.execute(StaffUser.__table__.update().values(locale="zh_CN"))
    r = client.get("/console/?from=2026-03-01&to=2026-02-01")
    assert _error(r.text, "from") == "开始日期不能晚于结束日期。"
    assert "会员总数" in client.get("/console/").text


def test_staff_forms_refuse_bad_input_and_write_nothing(client, database, clock):
    admin = _admin(client, database, clock)
    page = client.get("/console/admin/staff")
    token = _csrf(page.text)
    before_users, before_audit = _count(database, StaffUser), _count(database, AuditRecord)
    bad = [
        (
            {"username": "A b", "display_name": "x", "role": "clerk", "password": "long-enough-1"},
            "username",
        ),
        (
            {"username": "li.na", "display_name": "", "role": "clerk", "password": "long-enough-1"},
            "display_name",
        ),
        (
            {
                "username": "li.na",
                "display_name": "Li",
                "role": "boss",
                "password": "long-enough-1",
            },
            "role",
        ),
        (
            {"username": "li.na", "display_name": "Li", "role": "clerk", "password": "short"},
            "password",
        ),
        (
            {"username": admin, "display_name": "Li", "role": "clerk", "password": "long-enough-1"},
            "username",
        ),
    ]
    for data, field in bad:
        r = client.post("/console/admin/staff", data={**data, "csrf_token": token})
        assert r.status_code == 422, data
        assert _error(r.text, field), (field, r.text[:300])
    assert _error(r.text, "username") == "This username is already taken."
    assert _count(database, StaffUser) == before_users
    assert _count(database, AuditRecord) == before_audit

    with database.unit_of_work() as s:
        admin_id = s.scalar(select(StaffUser.id).where(StaffUser.username == admin))
    # The only admin can neither lose the role nor be deactivated; a weak password is refused.
    r = client.post(
        f"/console/admin/staff/{admin_id}/role", data={"role": "clerk", "csrf_token": token}
    )
    assert r.status_code == 422
    assert _error(r.text, "role") == "Patron needs at least one active admin."
    r = client.post(
        f"/console/admin/staff/{admin_id}/active", data={"active": "0", "csrf_token": token}
    )
    assert r.status_code == 422
    assert _error(r.text, "active") == "You cannot deactivate your own account."
    r = client.post(
        f"/console/admin/staff/{admin_id}/password", data={"password": "short", "csrf_token": token}
    )
    assert r.status_code == 422
    assert _error(r.text, "password") == "Use a password of at least 10 characters."
    with database.unit_of_work() as s:
        user = s.get(StaffUser, admin_id)
        assert (user.role, user.is_active) == ("admin", True)
    assert _count(database, AuditRecord) == before_audit

    # A good create, role change and deactivation go through and are audited.
    ok = {"username": "li.na", "display_name": "李娜", "role": "clerk", "password": "long-enough-1"}
    r = client.post(
        "/console/admin/staff", data={**ok, "csrf_token": token}, follow_redirects=False
    )
    assert r.status_code == 303
    with database.unit_of_work() as s:
        new_id = s.scalar(select(StaffUser.id).where(StaffUser.username == "li.na"))
    r = client.post(
        f"/console/admin/staff/{new_id}/role",
        data={"role": "operator", "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303
    r = client.post(
        f"/console/admin/staff/{new_id}/active",
        data={"active": "0", "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303
    with database.unit_of_work() as s:
        user = s.get(StaffUser, new_id)
        assert (user.role, user.is_active) == ("operator", False)
    assert _count(database, AuditRecord) == before_audit + 3


def test_api_key_form_refuses_bad_input_and_shows_the_secret_once(client, database, clock):
    _admin(client, database, clock)
    token = _csrf(client.get("/console/admin/keys").text)
    r = client.post(
        "/console/admin/keys", data={"name": "", "scopes": ["members:read"], "csrf_token": token}
    )
    assert r.status_code == 422
    assert _error(r.text, "name") == "Enter a name (at most 100 characters)."
    r = client.post("/console/admin/keys", data={"name": "shop", "csrf_token": token})
    assert _error(r.text, "scopes") == "Grant the key at least one scope."
    r = client.post(
        "/console/admin/keys", data={"name": "shop", "scopes": ["staff:admin"], "csrf_token": token}
    )
    assert r.status_code == 422
    assert _error(r.text, "scopes") == "Choose scopes from the list."
    assert _count(database, ApiKey) == 0

    r = client.post(
        "/console/admin/keys",
        data={"name": "shop", "scopes": ["members:read", "orders:write"], "csrf_token": token},
    )
    assert r.status_code == 200
    secret = re.search(r"data-secret>([^<]+)<", r.text).group(1)
    assert secret.startswith("ptn_")
    assert secret not in client.get("/console/admin/keys").text  # never shown again
    assert client.get("/api/v1/members/0", headers={"X-API-Key": secret}).status_code != 401
    with database.unit_of_work() as s:
        key = s.scalars(select(ApiKey)).one()
        assert key.scopes == ["members:read", "orders:write"]
    r = client.post(
        f"/console/admin/keys/{key.id}/revoke", data={"csrf_token": token}, follow_redirects=False
    )
    assert r.status_code == 303
    assert client.get("/api/v1/members/0", headers={"X-API-Key": secret}).status_code == 401


def test_admin_pages_need_staff_admin_and_audit_needs_audit_read(client, database, clock):
    analyst = _staff(database, clock, "analyst")
    _sign_in(client, analyst)
    assert client.get("/console/admin/staff").status_code == 403
    assert client.get("/console/admin/keys").status_code == 403
    assert client.get("/console/audit").status_code == 200
    assert client.get("/console/").status_code == 200


def test_audit_viewer_filters_and_refuses_bad_filters(client, database, clock, make_member):
    _admin(client, database, clock)
    first = make_member()
    make_member()
    r = client.get("/console/audit?entity_type=member")
    assert r.status_code == 200
    assert 'data-total="2"' in r.text
    r = client.get(f"/console/audit?member={first}")
    assert 'data-total="1"' in r.text
    assert first in r.text
    r = client.get("/console/audit?action=member.register&from=2026-03-01&to=2026-03-01")
    assert 'data-total="2"' in r.text
    r = client.get("/console/audit?action=member.register&from=2026-03-02")
    assert 'data-total="0"' in r.text
    # Staff users were created by the system; the members by the API's admin.
    with database.unit_of_work() as s:
        registrar = s.scalar(
            select(AuditRecord.actor_id).where(AuditRecord.action == "member.register").limit(1)
        )
    r = client.get("/console/audit?actor=system")
    assert 'data-total="2"' in r.text
    assert "member.register" not in r.text
    r = client.get(f"/console/audit?actor=staff:{registrar}")
    assert 'data-total="2"' in r.text
    assert "staff.create" not in r.text
    for query, field in (
        ("from=2026-03-02&to=2026-03-01", "from"),
        ("to=soon", "to"),
        ("actor=staff:999999", "actor"),
        ("entity_type=planet", "entity_type"),
    ):
        r = client.get("/console/audit?" + query)
        assert r.status_code == 422, query
        assert _error(r.text, field), query
