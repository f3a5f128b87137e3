"""Portal pages without a browser (SQLite and PostgreSQL): SMS sign-in and registration, forms
that refuse bad input without writing, and isolation — one member's session never reaches
another member's data."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import func, select

from patron.app import create_app
from patron.members import service as members_service
from patron.members.models import Member
from patron.orders.models import Order
from patron.otp.models import OtpCode
from patron.privacy.models import ErasureRequest
from tests.conftest import make_settings
from tests.factories import order_body
from tests.test_access_and_idempotency import _api_routes


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def _last_code(app) -> str:
    text = app.state.sms_channel.recent()[0].text
    return re.search(r"\d{6}", text).group(0)  # type: ignore[union-attr]


def _ask_code(client, phone):
    token = _csrf(client.get("/portal/login").text)
    r = client.post("/portal/login/code", data={"phone": phone, "csrf_token": token})
    return token, r


def portal_sign_in(client, app, phone) -> None:
    """Sign an existing member in through the SMS code (the demo channel keeps the code)."""
    token, r = _ask_code(client, phone)
    assert r.status_code == 200, r.text
    r = client.post(
        "/portal/login/verify",
        data={"phone": phone, "code": _last_code(app), "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/portal/"


def _count(database, model):
    with database.unit_of_work() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_new_phone_signs_up_with_a_code_and_consents(client, app, database):
    assert client.get("/portal/", follow_redirects=False).headers["location"] == "/portal/login"
    token, r = _ask_code(client, "")
    assert r.status_code == 422
    assert 'data-error-for="phone"' in r.text
    token, r = _ask_code(client, "12345")
    assert r.status_code == 422
    assert _count(database, OtpCode) == 0
    token, r = _ask_code(client, "139 1111 2222")
    assert r.status_code == 200
    assert 'name="code"' in r.text
    # a wrong code is refused, and the attempt is counted although the page answers 422
    wrong = "000000" if _last_code(app) != "000000" else "111111"
    bad = client.post(
        "/portal/login/verify",
        data={"phone": "+8613911112222", "code": wrong, "csrf_token": token},
    )
    assert bad.status_code == 422
    assert 'data-error-for="code"' in bad.text
    with database.unit_of_work() as s:
        assert s.scalar(select(OtpCode.attempts)) == 1
    ok = client.post(
        "/portal/login/verify",
        data={"phone": "+8613911112222", "code": _last_code(app), "csrf_token": token},
    )
    assert ok.status_code == 200
    proof = re.search(r'name="proof" value="([^"]+)"', ok.text).group(1)  # type: ignore[union-attr]
    # the terms must be accepted; nothing is created until they are
    refused = client.post("/portal/register", data={"proof": proof, "csrf_token": token})
    assert refused.status_code == 422
    assert 'data-error-for="agree"' in refused.text
    assert _count(database, Member) == 0
    # a forged proof is refused
    forged = client.post(
        "/portal/register", data={"proof": proof[:-2] + "xx", "agree": "1", "csrf_token": token}
    )
    assert forged.status_code == 422
    joined = client.post(
        "/portal/register",
        data={
            "proof": proof,
            "agree": "1",
            "name": "陈静",
            "consent_sms": "1",
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    assert joined.status_code == 303
    with database.unit_of_work() as s:
        member = s.scalar(select(Member))
        assert member is not None
        assert member.name == "陈静"
        assert {c.channel: c.granted for c in members_service.consents_of(s, member.id)} == {
            "email": False,
            "push": False,
            "sms": True,
            "wechat": False,
        }
    home = client.get("/portal/")
    assert home.status_code == 200
    assert member.member_no in home.text


def test_posts_need_the_session_token(client, app, make_member):
    make_member("13922223333")
    portal_sign_in(client, app, "13922223333")
    assert client.post("/portal/checkin").status_code == 403
    assert client.post("/portal/checkin", data={"csrf_token": "forged"}).status_code == 403
    token = _csrf(client.get("/portal/checkin").text)
    assert client.post("/portal/checkin", data={"csrf_token": token}).status_code == 200
    again = client.post("/portal/checkin", data={"csrf_token": token})
    assert again.status_code == 409
    assert 'data-error-for="form"' in again.text
    assert "今天已经签到过了" in again.text  # zh-CN is the default language


def test_profile_refuses_bad_input_and_a_second_birthday(client, app, make_member, database):
    no = make_member("13933334444", name="Zhao", birthday="1991-02-03")
    portal_sign_in(client, app, "13933334444")
    token = _csrf(client.get("/portal/profile").text)
    bad = client.post(
        "/portal/profile",
        data={"name": "Zhao Lei", "email": "not-an-email", "csrf_token": token},
    )
    assert bad.status_code == 422
    assert 'data-error-for="email"' in bad.text
    moved = client.post(
        "/portal/profile",
        data={"name": "Zhao Lei", "birthday": "1995-01-01", "csrf_token": token},
    )
    assert moved.status_code == 422
    assert 'data-error-for="birthday"' in moved.text
    # PostgreSQL cannot store a NUL character: refused as bad input on both databases
    for field in ("name", "city"):
        nul = client.post("/portal/profile", data={field: "Zhao\x00Lei", "csrf_token": token})
        assert nul.status_code == 422 and "control characters" in nul.text, nul.text
    erasure = client.post(
        "/portal/data/erasure", data={"reason": "a\x00b", "confirm": "1", "csrf_token": token}
    )
    assert erasure.status_code == 422 and "control characters" in erasure.text
    with database.unit_of_work() as s:
        m = s.scalar(select(Member).where(Member.member_no == no))
        assert (m.name, str(m.birthday), m.city) == ("Zhao", "1991-02-03", None)  # unchanged
        assert s.scalar(select(func.count()).select_from(ErasureRequest)) == 0


def test_a_member_only_ever_reaches_their_own_data(client, app, shop, make_member, database):
    a = make_member("13944445555", name="Alice")
    b = make_member("13955556666", name="Bob", city="Beijing")
    for no, ext in ((a, "A-1"), (b, "B-1")):
        assert (
            client.post("/api/v1/orders", json=order_body(no, ext=ext), headers=shop).status_code
            == 201
        )
    with database.unit_of_work() as s:
        ids = dict(s.execute(select(Order.external_id, Order.id)).all())
        b_id = s.scalar(select(Member.id).where(Member.member_no == b))
    portal_sign_in(client, app, "13944445555")
    assert client.get(f"/portal/orders/{ids['A-1']}").status_code == 200
    other = client.get(f"/portal/orders/{ids['B-1']}")
    assert other.status_code == 404
    assert "B-1" not in other.text
    # ids smuggled into queries and forms are ignored: the session decides whose data it is
    for path in ("/portal/", "/portal/points", "/portal/tier", "/portal/profile", "/portal/data"):
        page = client.get(path, params={"member_no": b, "member_id": b_id, "member": b})
        assert page.status_code == 200
        assert "Bob" not in page.text
        assert b not in page.text
    exported = client.get("/portal/data/export.json", params={"member_no": b})
    data = json.loads(exported.text)
    assert data["profile"]["member_no"] == a
    assert [o["external_id"] for o in data["orders"]] == ["A-1"]
    assert exported.headers["cache-control"] == "no-store"
    token = _csrf(client.get("/portal/profile").text)
    r = client.post(
        "/portal/profile",
        data={"name": "Mallory", "member_no": b, "member_id": str(b_id), "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303
    with database.unit_of_work() as s:
        names = dict(s.execute(select(Member.member_no, Member.name)).all())
    assert names == {a: "Mallory", b: "Bob"}
    # and no portal route takes a member's id at all; the one id it takes is checked above
    portal = [r for r in _api_routes(app.routes) if r.path.startswith("/portal")]
    assert len(portal) > 15
    params = {name for route in portal for name in re.findall(r"{(\w+)", route.path)}
    # a ticket and a risk review are checked against the member like an order (a help article
    # is the same for everyone): tests/web/test_service_pages.py; a lottery draw likewise
    # (tests/web/test_mall_play_pages.py); a flash sale and a gift image's size are public; a
    # contest entry's photo is the member's own or approved (tests/web/test_contests_pages.py)
    assert params == {
        "order_id",
        "code",
        "ticket_no",
        "review_id",
        "slug",
        "draw_id",
        "sale_id",
        "size",
        "entry_id",
    }


def test_demo_sms_page_is_not_there_in_production(database, clock):
    from fastapi.testclient import TestClient

    app = create_app(make_settings(database, env="production"), database, clock)
    # Production cookies are Secure: the browser sends them back over HTTPS only.
    with TestClient(app, base_url="https://testserver", headers={"accept-language": "en"}) as c:
        assert c.get("/portal/demo/sms").status_code == 404
        token = _csrf(c.get("/portal/login").text)
        r = c.post("/portal/login/code", data={"phone": "13966667777", "csrf_token": token})
        assert r.status_code == 422  # no SMS provider configured: refused, nothing sent
        assert "not available" in r.text


@pytest.mark.parametrize("lang", ["en", "zh_CN"])
def test_language_switch_stays_in_the_portal(client, lang):
    r = client.get(
        f"/portal/lang/{lang}", params={"back": "https://evil.example/"}, follow_redirects=False
    )
    assert r.headers["location"] == "/portal/"
    assert r.cookies.get("patron_lang") == lang


def test_demo_sms_page_needs_an_explicit_demo(database, clock):
    """A deployment that forgot PATRON_ENV runs as development: codes go to the log only, the
    inbox page that would show every phone's code is not served; its cookies are not Secure."""
    from fastapi.testclient import TestClient

    app = create_app(make_settings(database, env="development"), database, clock)
    with TestClient(app, headers={"accept-language": "en"}) as c:
        assert c.get("/portal/demo/sms").status_code == 404
        login = c.get("/portal/login")
        assert "secure" not in login.headers.get("set-cookie", "").lower()
    prod = create_app(make_settings(database, env="production"), database, clock)
    with TestClient(prod) as c:
        assert "secure" in c.get("/portal/login").headers["set-cookie"].lower()


def test_sign_out_and_a_phone_change_end_portal_sessions(
    client, app, clock, make_member, auth_headers
):
    """A copied portal cookie stops working after sign-out, and after staff change the
    member's phone (the old number's holder must not stay signed in)."""
    from datetime import timedelta

    phone = "13977770001"
    make_member(phone=phone)
    staff = auth_headers("admin", fresh=True)
    portal_sign_in(client, app, phone)
    copied = client.cookies.get("patron_portal")
    home = client.get("/portal/")
    assert home.status_code == 200
    clock.advance(timedelta(milliseconds=400))  # signed out within the same second
    token = re.search(r'name="csrf-token" content="([^"]+)"', home.text).group(1)
    out = client.post("/portal/logout", data={"csrf_token": token}, follow_redirects=False)
    assert out.status_code == 303
    client.cookies.set("patron_portal", copied, path="/portal")
    r = client.get("/portal/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/portal/login"

    # Signed in again (a new code may be sent after a minute); then staff change the phone
    # number: the session ends.
    clock.advance(timedelta(seconds=61))
    client.cookies.clear()
    portal_sign_in(client, app, phone)
    assert client.get("/portal/", follow_redirects=False).status_code == 200
    member_no = client.get("/api/v1/members?q=" + phone, headers=staff).json()["items"][0]
    changed = client.patch(
        f"/api/v1/members/{member_no['member_no']}",
        json={"phone": "13977770002", "reason": "the member's new number"},
        headers=staff,
    )
    assert changed.status_code == 200, changed.text
    assert client.get("/portal/", follow_redirects=False).status_code == 303


def test_the_sign_in_page_refuses_a_client_asking_for_too_many_codes(database, clock):
    """The page shows the per-address refusal next to the phone field (429) and sends nothing."""
    from fastapi.testclient import TestClient

    app = create_app(make_settings(database, otp_source_hourly_cap=2), database, clock)
    with TestClient(app, headers={"accept-language": "en"}) as c:
        for phone in ("13966660001", "13966660002"):
            assert _ask_code(c, phone)[1].status_code == 200
        _, refused = _ask_code(c, "13966660003")
        assert refused.status_code == 429
        assert "Too many codes were asked for from this network" in refused.text
        assert len(app.state.sms_channel.recent()) == 2
    assert _count(database, OtpCode) == 2


def test_points_history_names_redemptions_returns_and_clawbacks(
    client, app, shop, make_member, database, clock
):
    """The member's history says what happened in plain words: a points payment at a store is
    "redeemed there", a return takes back the points the goods earned and gives back the points
    that paid for them."""
    from zoneinfo import ZoneInfo

    from patron.auth.principal import Principal
    from patron.ledger import flows
    from patron.ledger import service as ledger

    no = make_member("13977778888")
    with database.unit_of_work() as s:
        mid = s.scalar(select(Member.id).where(Member.member_no == no))
        ctx = ledger.Ctx(Principal.system("t"), clock.now(), ZoneInfo("Asia/Shanghai"))
        flows.earn(s, ctx, mid, points=5000, source_type="test", source_id="grant")
    body = order_body(
        no,
        payments=[
            {"method": "points", "amount_fen": 2000, "points": 2000},
            {"method": "card", "amount_fen": 19900},
        ],
    )
    assert client.post("/api/v1/orders", json=body, headers=shop).status_code == 201
    back = {
        "external_id": "R-1",
        "returned_at": "2026-03-02T10:00:00+08:00",
        "lines": [{"line_no": 1, "quantity": 1}],
    }
    r = client.post("/api/v1/orders/pos/O-1/returns", json=back, headers=shop)
    assert r.status_code == 201, r.text
    client.headers["Accept-Language"] = "en"
    portal_sign_in(client, app, "13977778888")
    page = client.get("/portal/points", params={"page": 1})
    texts = [
        re.sub(r"\s+", " ", t).strip()
        for t in re.findall(r'class="history-entry[^"]*"[^>]*>(.*?)</', page.text, re.S)
    ]
    joined = " | ".join(texts)
    for expected in (
        "Redeemed at 上海店",
        "Earned at 上海店",
        "Taken back for a return",
        "Points payment returned at 上海店",
    ):
        assert expected in page.text, joined
    assert "Points change" not in page.text
    client.headers["Accept-Language"] = "zh-CN"
    zh = client.get("/portal/points")
    assert "在上海店积分抵扣" in zh.text and "在上海店退货，退回抵扣积分" in zh.text


def test_tier_page_says_a_tier_held_by_hand_needs_nothing_at_the_next_evaluation(
    client, app, make_member, auth_headers
):
    no = make_member("13966665555")
    hold = {"tier": "gold", "reason": "complaint resolved", "until": None}
    r = client.post(f"/api/v1/members/{no}/tier/override", json=hold, headers=auth_headers("admin"))
    assert r.status_code == 200, r.text
    client.headers["Accept-Language"] = "en"
    portal_sign_in(client, app, "13966665555")
    page = client.get("/portal/tier")
    assert 'data-held="indefinitely"' in page.text
    assert "data-keep-missing" not in page.text  # no "earn N more to keep" advice
    assert "Next evaluation" not in page.text


def _posted_at_once(app, client, path, forms):
    """Each form posted to ``path`` at the same moment, by a client of its own carrying
    ``client``'s cookies (several taps or phones of one signed-in member); the responses."""
    import threading

    from fastapi.testclient import TestClient

    barrier = threading.Barrier(len(forms))
    results: list = [None] * len(forms)

    def post(i: int) -> None:
        phone = TestClient(app, headers={"accept-language": "en"})
        for c in client.cookies.jar:
            phone.cookies.set(c.name, c.value, domain=c.domain, path=c.path)
        barrier.wait()
        results[i] = phone.post(path, data=forms[i], follow_redirects=False)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(forms))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_two_first_birthdays_saved_at_once_set_it_once(client, app, make_member, database):
    """Two phones (or a double tap) saving a first birthday at the same moment: one is saved,
    the other is told the birthday is already set."""
    if not database.url.startswith("postgresql"):
        pytest.skip("real concurrency: PostgreSQL only (SQLite writes one at a time)")
    no = make_member("13966664444")
    client.headers["Accept-Language"] = "en"
    portal_sign_in(client, app, "13966664444")
    token = _csrf(client.get("/portal/profile").text)
    days = ["1990-01-0" + str(i) for i in range(1, 5)]
    forms = [{"birthday": day, "csrf_token": token} for day in days]
    results = _posted_at_once(app, client, "/portal/profile", forms)
    codes = sorted(r.status_code for r in results)
    assert codes == [303, 422, 422, 422], codes
    winner = days[[r.status_code for r in results].index(303)]
    with database.unit_of_work() as s:
        assert str(s.scalar(select(Member.birthday).where(Member.member_no == no))) == winner


def test_simultaneous_check_ins_reward_the_day_once(client, app, make_member, database):
    """Four taps of "Check in" at the same moment: one reward, three "already checked in"."""
    from patron.checkin.models import CheckIn
    from patron.ledger.models import PointsPosting

    if not database.url.startswith("postgresql"):
        pytest.skip("real concurrency: PostgreSQL only (SQLite writes one at a time)")
    make_member("13966663333")
    portal_sign_in(client, app, "13966663333")
    token = _csrf(client.get("/portal/checkin").text)
    taps = _posted_at_once(app, client, "/portal/checkin", [{"csrf_token": token}] * 4)
    results = [r.status_code for r in taps]
    assert sorted(results) == [303, 409, 409, 409]
    assert _count(database, CheckIn) == 1
    with database.unit_of_work() as s:
        kinds = s.scalars(
            select(PointsPosting.source_type).where(PointsPosting.source_type == "checkin")
        ).all()
    assert len(kinds) == 1


def test_a_proof_spent_at_once_twice_makes_one_member_and_one_session(client, app, database):
    """A double tap of "Join" (or a copied proof raced against it): the proof is single-use,
    so one request registers and signs in; the others are told to sign in with a new code."""
    from patron.otp.models import UsedProof

    if not database.url.startswith("postgresql"):
        pytest.skip("real concurrency: PostgreSQL only (SQLite writes one at a time)")
    token, _ = _ask_code(client, "13911113333")
    ok = client.post(
        "/portal/login/verify",
        data={"phone": "13911113333", "code": _last_code(app), "csrf_token": token},
    )
    proof = re.search(r'name="proof" value="([^"]+)"', ok.text).group(1)  # type: ignore[union-attr]
    form = {"proof": proof, "agree": "1", "csrf_token": token}
    results = _posted_at_once(app, client, "/portal/register", [form] * 3)
    assert sorted(r.status_code for r in results) == [303, 409, 409]
    for r in results:
        if r.status_code == 303:
            assert r.headers["location"] == "/portal/"
            assert "patron_portal=" in r.headers["set-cookie"]
        else:
            assert "already used" in r.text
            assert "patron_portal=" not in r.headers.get("set-cookie", "")
    assert _count(database, Member) == 1
    assert _count(database, UsedProof) == 1


def test_a_registration_proof_works_once(client, app, database, clock, make_member):
    """The proof that a phone passed its code check registers (or signs in) once; a replay,
    e.g. from browser history within its 15 minutes, is refused and signs nobody in."""
    from datetime import timedelta

    from patron.otp.models import UsedProof

    client.headers["Accept-Language"] = "en"
    token, _ = _ask_code(client, "13911114444")
    ok = client.post(
        "/portal/login/verify",
        data={"phone": "13911114444", "code": _last_code(app), "csrf_token": token},
    )
    proof = re.search(r'name="proof" value="([^"]+)"', ok.text).group(1)  # type: ignore[union-attr]
    form = {"proof": proof, "agree": "1", "csrf_token": token}
    joined = client.post("/portal/register", data=form, follow_redirects=False)
    assert joined.status_code == 303 and joined.headers["location"] == "/portal/"
    client.cookies.delete("patron_portal", path="/portal")
    clock.advance(timedelta(minutes=5))
    replay = client.post("/portal/register", data=form, follow_redirects=False)
    assert replay.status_code == 409
    assert "This code check was already used; sign in with a new code." in replay.text
    assert "patron_portal=" not in replay.headers.get("set-cookie", "")
    assert client.get("/portal/", follow_redirects=False).status_code == 303
    assert _count(database, Member) == 1
    # used proofs are kept only while they could still be presented
    clock.advance(timedelta(minutes=11))
    token, _ = _ask_code(client, "13911115555")
    ok = client.post(
        "/portal/login/verify",
        data={"phone": "13911115555", "code": _last_code(app), "csrf_token": token},
    )
    fresh = re.search(r'name="proof" value="([^"]+)"', ok.text).group(1)  # type: ignore[union-attr]
    joined = client.post(
        "/portal/register",
        data={"proof": fresh, "agree": "1", "csrf_token": token},
        follow_redirects=False,
    )
    assert joined.status_code == 303
    assert _count(database, UsedProof) == 1


def test_a_member_changes_their_own_phone_with_a_code_sent_to_the_new_number(
    client, app, database, clock, make_member
):
    from datetime import timedelta

    from patron.audit.models import AuditRecord

    client.headers["Accept-Language"] = "en"
    no = make_member("13955550001")
    make_member("13955550009")
    portal_sign_in(client, app, "13955550001")
    page = client.get("/portal/profile/phone")
    assert page.status_code == 200
    token = _csrf(page.text)
    url = "/portal/profile/phone"
    taken = client.post(f"{url}/code", data={"phone": "13955550009", "csrf_token": token})
    assert taken.status_code == 409 and "already belongs" in taken.text
    same = client.post(f"{url}/code", data={"phone": "139 5555 0001", "csrf_token": token})
    assert same.status_code == 422 and "already your number" in same.text
    sent = client.post(f"{url}/code", data={"phone": "13955550002", "csrf_token": token})
    assert sent.status_code == 200 and 'name="code"' in sent.text
    assert app.state.sms_channel.recent()[0].phone == "+8613955550002"
    code = _last_code(app)
    wrong = "000000" if code != "000000" else "111111"
    bad = client.post(
        f"{url}/verify", data={"phone": "+8613955550002", "code": wrong, "csrf_token": token}
    )
    assert bad.status_code == 422
    with database.unit_of_work() as s:
        assert s.scalar(select(OtpCode.attempts).where(OtpCode.purpose == "phone_change")) == 1
    clock.advance(timedelta(milliseconds=300))
    done = client.post(
        f"{url}/verify",
        data={"phone": "+8613955550002", "code": code, "csrf_token": token},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/portal/login"
    # every session ends, this one too; the new number signs in to the same membership
    client.cookies.delete("patron_portal", path="/portal")
    clock.advance(timedelta(seconds=61))
    portal_sign_in(client, app, "13955550002")
    assert no in client.get("/portal/").text
    with database.unit_of_work() as s:
        rec = s.scalars(
            select(AuditRecord)
            .where(AuditRecord.action == "member.update", AuditRecord.entity_id == no)
            .order_by(AuditRecord.id.desc())
        ).first()
        assert rec is not None and rec.actor_type == "member"
        assert rec.after["proof"] == "sms_code" and rec.after["phone_changed"] is True


def test_a_login_code_does_not_change_a_phone(client, app, make_member):
    """The codes are per purpose: a sign-in code sent to a number is no proof for a change."""
    client.headers["Accept-Language"] = "en"
    make_member("13955550101")
    portal_sign_in(client, app, "13955550101")
    token = _csrf(client.get("/portal/profile/phone").text)
    _ask_code(client, "13955550102")  # a sign-in code to the new number (unused)
    r = client.post(
        "/portal/profile/phone/verify",
        data={"phone": "13955550102", "code": _last_code(app), "csrf_token": token},
    )
    assert r.status_code == 422 and "Ask for a code first" in r.text
