"""The page machinery without a browser: sessions, CSRF, rollback of refused forms, formats."""

from __future__ import annotations

import html
import re
from datetime import timedelta

from sqlalchemy import func, select

from patron.auth.models import LoginFailure, StaffUser
from patron.web import i18n
from patron.web.pages import money

PASSWORD = "page-test-pass-1"


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def _staff(database, clock, role="admin"):
    from patron.auth import service as auth_service
    from patron.auth.principal import Principal

    with database.unit_of_work() as s:
        auth_service.create_staff(
            s,
            Principal.system("tests"),
            username=f"{role}1",
            display_name=role,
            role=role,
            password=PASSWORD,
            now=clock.now(),
        )
    return f"{role}1"


def _sign_in(client, username):
    form = client.get("/console/login")
    token = _csrf(form.text)
    return client.post(
        "/console/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token, "next": ""},
        follow_redirects=False,
    )


def test_money_is_yuan_with_two_decimals():
    assert money(0) == "¥0.00"
    assert money(123456) == "¥1,234.56"
    assert money(-5) == "-¥0.05"
    assert money(None) == ""


def test_sign_in_needs_the_form_token_and_counts_failures(client, database, clock):
    user = _staff(database, clock)
    # No CSRF token (a post from another site): refused, nothing recorded.
    r = client.post("/console/login", data={"username": user, "password": "x"})
    assert r.status_code == 403
    form = client.get("/console/login")
    bad = client.post(
        "/console/login",
        data={"username": user, "password": "wrong", "csrf_token": _csrf(form.text)},
    )
    assert bad.status_code == 401
    with database.unit_of_work() as s:  # committed although the page answered 401
        assert s.scalar(select(func.count()).select_from(LoginFailure)) == 1
    ok = _sign_in(client, user)
    assert ok.status_code == 303
    assert ok.headers["location"] == "/console/"
    assert "patron_console" in ok.cookies or "patron_console" in client.cookies


def test_console_posts_need_the_session_csrf_token(client, database, clock):
    _sign_in(client, _staff(database, clock))
    r = client.post(
        "/console/lang",
        data={"locale": "en", "csrf_token": "forged"},
        headers={
            "referer": "http://testserver/console/members?q=13800138000",
            "accept-language": "en",
        },
    )
    assert r.status_code == 403
    # an expired form is explained as such (not as a role limit) and leads back to its page
    assert 'data-error-code="csrf_failed"' in r.text and "This form has expired" in r.text
    assert "role" not in r.text
    assert 'href="/console/members?q=13800138000" data-testid="retry"' in r.text
    with database.unit_of_work() as s:
        assert s.scalar(select(StaffUser.locale)) is None
    # a referer from elsewhere is never a way out of Patron
    r = client.post(
        "/console/lang",
        data={"locale": "en", "csrf_token": "forged"},
        headers={"referer": "http://evil.example/console/x"},
    )
    assert 'href="/console/" data-testid="retry"' in r.text
    page = client.get("/console/")
    r = client.post(
        "/console/lang",
        data={"locale": "en", "csrf_token": _csrf(page.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303
    with database.unit_of_work() as s:
        assert s.scalar(select(StaffUser.locale)) == "en"


def test_sessions_expire_when_idle_and_end_at_sign_out(client, database, clock, settings):
    _sign_in(client, _staff(database, clock))
    assert client.get("/console/", follow_redirects=False).status_code == 200
    clock.advance(timedelta(minutes=settings.console_session_minutes + 1))
    r = client.get("/console/", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/console/login")
    # A copied cookie stops working after sign-out.
    client.cookies.clear()
    _sign_in(client, "admin1")
    copied = client.cookies.get("patron_console")
    page = client.get("/console/")
    clock.advance(timedelta(seconds=2))
    client.post("/console/logout", data={"csrf_token": _csrf(page.text)})
    client.cookies.set("patron_console", copied, path="/console")
    assert client.get("/console/", follow_redirects=False).status_code == 303


def test_sign_in_redirects_only_into_the_console(client, database, clock):
    user = _staff(database, clock)
    form = client.get("/console/login?next=https://evil.example/")
    r = client.post(
        "/console/login",
        data={
            "username": user,
            "password": PASSWORD,
            "csrf_token": _csrf(form.text),
            "next": "//evil.example/",
        },
        follow_redirects=False,
    )
    assert r.headers["location"] == "/console/"


def test_switching_language_stays_on_the_page_with_its_query(client, database, clock):
    """The language form posts back the page's path and query (the desk keeps its member, the
    audit log its filters); only console pages of this site are gone back to."""
    _sign_in(client, _staff(database, clock))
    page = client.get("/console/audit?entity_type=member&from=2026-02-01")
    back = re.search(r'name="back" value="([^"]*)"', page.text).group(1)
    assert html.unescape(back) == "/console/audit?entity_type=member&from=2026-02-01"
    token = _csrf(page.text)
    for sent, landing in (
        ("/console/desk?member=1234567890", "/console/desk?member=1234567890"),
        ("/console/audit?entity_type=member&from=2026-02-01", None),
        ("https://evil.example/console/", "/console/"),
        ("//evil.example/console/", "/console/"),
        ("/console/\\evil.example", "/console/"),
        ("/console/x?\r\nSet-Cookie:%20a=b", "/console/"),
        ("/portal/", "/console/"),
        ("", "/console/"),
    ):
        r = client.post(
            "/console/lang",
            data={"locale": "en", "back": sent, "csrf_token": token},
            follow_redirects=False,
        )
        assert r.status_code == 303, sent
        assert r.headers["location"] == (landing or sent), sent
    # a page shown by a form post (a refused form) has a post-only address: the switch goes
    # back to the page the form was on instead
    refused = client.post(
        "/console/lang",
        data={"locale": "xx", "csrf_token": token},
        headers={"referer": "http://testserver/console/members?q=li"},
    )
    assert refused.status_code == 422
    back = re.search(r'name="back" value="([^"]*)"', refused.text).group(1)
    assert html.unescape(back) == "/console/members?q=li"


def test_every_ui_string_has_a_chinese_translation():
    """Every message in the templates and web modules is in the zh_CN catalogues."""
    from pathlib import Path

    from babel.messages.extract import extract_from_dir

    root = Path(i18n.__file__).parent
    method_map = [("templates/**.html", "jinja2.ext:babel_extract"), ("**.py", "python")]
    options_map = {"templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    zh = i18n.translations("zh_CN")
    missing = set()
    for _file, _line, message, _comments, _ctx in extract_from_dir(
        str(root),
        method_map,
        options_map,
        keywords={"_": None, "gettext": None, "N_": None, "ngettext": (1, 2)},
    ):
        for msg in message if isinstance(message, tuple) else (message,):
            if msg and zh.gettext(msg) == msg:
                missing.add(msg)
    assert not missing, sorted(missing)


def test_no_message_has_two_translations_across_catalogues():
    """Each area keeps its own .po file; they are merged, so one English message id must mean
    the same everywhere (a clash shows one area's wording in another area's page)."""
    from babel.messages.pofile import read_po

    seen: dict[str, dict[str, str]] = {}
    for po in sorted((i18n.LOCALE_DIR / "zh_CN" / "LC_MESSAGES").glob("*.po")):
        with po.open("rb") as fh:
            for message in read_po(fh, locale="zh_CN"):
                if message.id:
                    seen.setdefault(str(message.id), {})[po.stem] = str(message.string)
    clashes = {k: v for k, v in seen.items() if len(set(v.values())) > 1}
    assert not clashes, clashes


def test_a_renewed_session_keeps_its_forms_valid(client, database, clock):
    """The cookie is renewed while the console is in use; forms rendered before or after the
    renewal still post, because the CSRF token belongs to the session, not to one cookie."""
    _sign_in(client, _staff(database, clock))
    first_cookie = client.cookies.get("patron_console")
    old_form = _csrf(client.get("/console/").text)
    clock.advance(timedelta(minutes=13))
    page = client.get("/console/")  # this answer carries a renewed cookie
    assert client.cookies.get("patron_console") != first_cookie
    assert _csrf(page.text) == old_form
    r = client.post(
        "/console/lang", data={"locale": "en", "csrf_token": old_form}, follow_redirects=False
    )
    assert r.status_code == 303
    clock.advance(timedelta(minutes=50))  # idle less than the session's hour since the renewal
    assert client.get("/console/", follow_redirects=False).status_code == 200


def test_api_calls_and_pages_share_one_transaction_limit_and_always_give_it_back(
    client, app, auth_headers
):
    """Transactions in flight are capped below the worker threads (else every thread could wait
    for a pooled connection held by a request that waits for a thread); each request takes a
    slot and returns it whether it succeeded, was refused or failed validation."""
    import threading

    import anyio

    from patron.web.routing import TRANSACTION_SLOTS

    async def threads() -> float:
        return anyio.to_thread.current_default_thread_limiter().total_tokens

    # in a thread of its own: a browser test may have left an event loop in this one
    tokens: list[float] = []
    runner = threading.Thread(target=lambda: tokens.append(anyio.run(threads)))
    runner.start()
    runner.join()
    assert tokens[0] > TRANSACTION_SLOTS
    headers = auth_headers("admin")
    assert client.get("/api/v1/members", headers=headers).status_code == 200
    assert client.post("/api/v1/members", headers=headers, json={}).status_code == 422
    assert client.get("/api/v1/members/9999999999", headers=headers).status_code == 404
    (slots,) = app.state.transaction_slots.values()  # one event loop: the client's
    assert slots._value == TRANSACTION_SLOTS  # the API took and gave back
    assert client.get("/console/login").status_code == 200
    assert client.get("/console/", follow_redirects=False).status_code == 303
    assert slots._value == TRANSACTION_SLOTS  # every slot given back


def test_transaction_slots_work_when_clients_run_their_own_event_loops(
    app, auth_headers, monkeypatch
):
    """Each TestClient (or any embedding) may run its own event loop; a semaphore shared across
    loops would strand waiters forever. With two slots and twelve clients at once, every
    request must still be answered."""
    import threading

    from fastapi.testclient import TestClient

    from patron.web import routing

    monkeypatch.setattr(routing, "TRANSACTION_SLOTS", 2)
    headers = auth_headers("admin")
    results: list[int] = []
    barrier = threading.Barrier(12)

    def call() -> None:
        with TestClient(app) as c:
            barrier.wait()
            results.append(c.get("/api/v1/members", headers=headers).status_code)

    threads = [threading.Thread(target=call, daemon=True) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert results == [200] * 12


def test_erasure_requests_queue_is_for_personal_data_staff_only(
    client, database, clock, make_member
):
    """Requests members make in the portal reach a console queue (oldest open first); only a
    role that may see personal data (members:pii) opens it."""
    from patron.auth.principal import Principal
    from patron.members.models import Member
    from patron.privacy import service as privacy

    first, second = make_member("13900001111", name="Early"), make_member("13900002222")
    with database.unit_of_work() as s:
        for no, reason in ((second, "later one"), (first, "moving abroad")):
            member = s.scalar(select(Member).where(Member.member_no == no))
            when = clock.now() - timedelta(days=2 if no == first else 1)
            privacy.request_erasure(s, Principal.system("t"), member, reason=reason, now=when)
    _sign_in(client, _staff(database, clock, role="operator"))
    assert client.get("/console/privacy/erasure").status_code == 403
    assert 'data-nav="privacy"' not in client.get("/console/").text
    client.post("/console/logout", data={"csrf_token": _csrf(client.get("/console/").text)})
    _sign_in(client, _staff(database, clock, role="admin"))
    page = client.get("/console/privacy/erasure", headers={"accept-language": "en"})
    assert page.status_code == 200
    assert re.findall(r'<a href="/console/members/(\d+)">', page.text) == [first, second]
    assert "moving abroad" in page.text and "Early 13900001111" in page.text  # unmasked
    done = client.get("/console/privacy/erasure?status=done")
    assert "data-erasure-request" not in done.text
    assert client.get("/console/privacy/erasure?status=bogus").status_code == 422


def test_the_console_guide_says_truly_which_role_sees_what():
    """docs/console.md's table of roles and areas matches auth/permissions.py."""
    from pathlib import Path

    from patron.auth import permissions as perm

    guide = Path(__file__).parents[2] / "docs" / "console.md"
    text = guide.read_text(encoding="utf-8")
    table = text[text.index("## Who sees what") :]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "`" in line]
    header = next(line for line in table.splitlines() if line.startswith("| Console area"))
    roles = [c.strip() for c in header.strip("|").split("|")][2:]
    assert roles == list(perm.ROLES)
    assert len(rows) >= 10
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        permission = cells[1].strip("`")
        assert permission in perm.ALL, row
        shown = {role: mark == "✓" for role, mark in zip(roles, cells[2:], strict=True)}
        actual = {role: permission in perm.ROLE_PERMISSIONS[role] for role in roles}
        assert shown == actual, row


def test_readme_documents_the_console_sign_in_lifetime():
    """The settings table names real settings, and says how long a console sign-in lasts
    (PATRON_TOKEN_TTL_MINUTES is the API token's lifetime, not the console's)."""
    from pathlib import Path

    from patron.config import Settings

    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    fields = Settings.model_fields
    for name in re.findall(r"^\| `PATRON_([A-Z_]+)`", readme, re.M):
        assert name.lower() in fields, name
    default = fields["console_session_minutes"].default
    assert f"| `PATRON_CONSOLE_SESSION_MINUTES` | `{default}` |" in readme
    ttl = next(line for line in readme.splitlines() if "`PATRON_TOKEN_TTL_MINUTES`" in line)
    assert "API" in ttl
