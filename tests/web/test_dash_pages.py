"""Dashboard and admin pages without a browser (SQLite and PostgreSQL): range validation, bad
input on every admin form (422, error next to the field, nothing written), permissions."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from sqlalchemy import func, select

from patron.audit import service as audit_service
from patron.audit.models import AuditRecord
from patron.auth.models import ApiKey, StaffUser
from patron.web.console import audit_labels
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
    assert data["net_sales_fen"] == [0] * 30
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
    assert 'data-action="member.register"' not in r.text
    r = client.get(f"/console/audit?actor=staff:{registrar}")
    assert 'data-total="2"' in r.text
    assert 'data-action="staff.create"' not in r.text
    for query, field in (
        ("from=2026-03-02&to=2026-03-01", "from"),
        ("to=soon", "to"),
        ("actor=staff:999999", "actor"),
        ("entity_type=planet", "entity_type"),
        ("member=12", "member"),
    ):
        r = client.get("/console/audit?" + query)
        assert r.status_code == 422, query
        assert _error(r.text, field), query


def _strings(node: ast.AST, fn: ast.AST, where: str) -> tuple[set[str], int | None]:
    """The strings an argument can be, or the position of the enclosing function's parameter
    it passes on (a wrapper such as ledger.flows._audit)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}, None
    if isinstance(node, ast.IfExp):
        return _strings(node.body, fn, where)[0] | _strings(node.orelse, fn, where)[0], None
    if isinstance(node, ast.Name) and isinstance(fn, ast.FunctionDef):
        params = [a.arg for a in fn.args.args]
        if node.id in params:
            return set(), params.index(node.id)
        found: set[str] = set()
        for stmt in ast.walk(fn):
            if isinstance(stmt, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == node.id for t in stmt.targets
            ):
                found |= _strings(stmt.value, fn, where)[0]
        if found:
            return found, None
    raise AssertionError(f"{where}: cannot tell what {ast.unparse(node)} records")


def _recorded() -> tuple[set[str], set[str], int, int]:
    """Every action and entity type passed to audit.record anywhere in the code, the calls read
    and the calls written (a call this reader missed would make them differ)."""
    actions: set[str] = set()
    entities: set[str] = set()
    calls = written = 0
    for path in Path(audit_service.__file__).parents[1].rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        aliases = {
            a.asname or a.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == "patron.audit"
            for a in node.names
            if a.name == "service"
        }
        if not aliases:
            continue
        written += sum(text.count(f"{alias}.record(") for alias in aliases)
        functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
        wrappers: dict[str, dict[int, str]] = {}  # function → {param position: what}
        pending = []
        for fn in functions:
            for node in ast.walk(fn):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "record"
                    and isinstance(node.func.value, ast.Name)
                    and node.func.value.id in aliases
                ):
                    calls += 1
                    pending.append((fn, node, {2: "action", 3: "entity"}))
        for fn, call, wanted in pending:
            where = f"{path.name}:{call.lineno}"
            for position, what in wanted.items():
                values, passed_on = _strings(call.args[position], fn, where)
                if passed_on is not None:
                    wrappers.setdefault(fn.name, {})[passed_on] = what
                (actions if what == "action" else entities).update(values)
        for fn in functions:
            for node in ast.walk(fn):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id in wrappers
                ):
                    where = f"{path.name}:{node.lineno}"
                    for position, what in wrappers[node.func.id].items():
                        values, _ = _strings(node.args[position], fn, where)
                        (actions if what == "action" else entities).update(values)
    return actions, entities, calls, written


def test_the_audit_filters_offer_what_the_code_records(client, database, clock):
    actions, entities, calls, written = _recorded()
    assert calls == written >= 20  # every audit.record call in the code was read
    assert entities == set(audit_service.ENTITY_TYPES)
    assert actions == set(audit_service.ACTIONS)
    assert set(audit_labels.ENTITY_LABELS) == set(audit_service.ENTITY_TYPES)
    assert set(audit_labels.ACTION_LABELS) == set(audit_service.ACTIONS)
    assert set(audit_labels.ACTOR_LABELS) == set(audit_service.ACTOR_TYPES)
    _admin(client, database, clock)
    page = client.get("/console/audit").text
    select_html = page[
        page.index('name="entity_type"') : page.index("</select>", page.index('name="entity_type"'))
    ]
    assert set(re.findall(r'value="([a-z_]+)"', select_html)) == set(audit_service.ENTITY_TYPES)
    for kind in audit_service.ACTOR_TYPES:
        assert f'<option value="{kind}"' in page


def test_the_member_filter_finds_ledger_records_and_adjustments(
    client, database, clock, make_member, auth_headers, api_key_headers
):
    """Profile records are under the member number, ledger flows under the member's row id and
    adjustments under their own id: the member filter finds all three, and nobody else's."""
    _admin(client, database, clock)
    no, other = make_member(), make_member()
    key = api_key_headers("points:grant", "members:read")
    for member_no, headers in ((no, key), (other, auth_headers("admin"))):
        r = client.post(
            f"/api/v1/members/{member_no}/points/earn",
            json={"points": 100, "source_type": "order", "source_id": f"E-{member_no}"},
            headers=headers,
        )
        assert r.status_code == 201, r.text
        r = client.post(
            f"/api/v1/members/{member_no}/points/adjustments",
            json={"amount": 5, "reason": "goodwill"},
            headers=auth_headers("admin"),
        )
        assert r.status_code == 201, r.text
    r = client.get(f"/console/audit?member={no}")
    assert r.status_code == 200
    shown = re.findall(r'data-action="([a-z_.]+)"', r.text)
    assert sorted(shown) == ["member.register", "points.adjust_request", "points.earn"]
    assert 'data-total="3"' in r.text
    assert other not in r.text
    # Combined with the other filters, as any filter is.
    r = client.get(f"/console/audit?member={no}&entity_type=points_adjustment")
    assert re.findall(r'data-action="([a-z_.]+)"', r.text) == ["points.adjust_request"]
    # The member's page lists the same records.
    page = client.get(f"/console/members/{no}", params={"tab": "audit"}).text
    assert sorted(re.findall(r'data-action="([a-z_.]+)"', page)) == sorted(shown)
    # An integration's writes: actor type "apikey", as an API key's principal records them.
    r = client.get("/console/audit?actor=apikey")
    assert re.findall(r'data-action="([a-z_.]+)"', r.text) == ["points.earn"]


def test_the_audit_log_speaks_chinese(client, database, clock, make_member):
    _admin(client, database, clock)
    client.cookies.set("patron_lang", "zh_CN")
    make_member()
    r = client.get("/console/audit?entity_type=member")
    row = r.text[r.text.index("<tbody>") : r.text.index("</tbody>")]
    assert "会员注册" in row and "member.register" in row  # the label, the code beside it
    assert "(员工)" in row
    assert '<option value="points_adjustment"' in r.text and "积分调整" in r.text


def test_chart_amounts_are_integer_fen(client, database, clock, make_member, shop):
    """Money reaches the charts as integer fen, like every amount; dash.js writes it as ¥."""
    from tests.factories import order_body

    no = make_member()
    assert client.post("/api/v1/orders", json=order_body(no), headers=shop).status_code == 201
    _admin(client, database, clock)
    r = client.get("/console/?days=7")
    data = json.loads(re.search(r'id="dash-data">(.*?)</script>', r.text, re.S).group(1))
    assert data["net_sales_fen"][-1] == 21900
    assert all(type(v) is int for v in data["net_sales_fen"])
    assert sum(t["sales_fen"] for t in data["tiers"]) == 21900
    assert all(type(t["sales_fen"]) is int for t in data["tiers"])
