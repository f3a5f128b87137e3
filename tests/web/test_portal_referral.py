"""The portal's sign-up reads the referral link's code (``/portal/login?ref=CODE``): the new
member is the referrer's referee; a malformed or unknown code signs up without a referrer."""

from __future__ import annotations

import re

from sqlalchemy import select

from patron.campaigns import referrals
from patron.members.models import Member
from tests.web.test_portal_pages import _csrf, _last_code, portal_sign_in


def _sign_up(client, app, phone: str, ref: str | None):
    url = "/portal/login" + (f"?ref={ref}" if ref is not None else "")
    token = _csrf(client.get(url).text)
    r = client.post("/portal/login/code", data={"phone": phone, "csrf_token": token})
    assert r.status_code == 200, r.text
    ok = client.post(
        "/portal/login/verify",
        data={"phone": phone, "code": _last_code(app), "csrf_token": token},
    )
    assert ok.status_code == 200, ok.text
    proof = re.search(r'name="proof" value="([^"]+)"', ok.text).group(1)  # type: ignore[union-attr]
    joined = client.post(
        "/portal/register",
        data={"proof": proof, "agree": "1", "csrf_token": token},
        follow_redirects=False,
    )
    assert joined.status_code == 303, joined.text
    return joined


def _referrer_of(database):
    with database.unit_of_work() as s:
        newest = s.scalars(select(Member).order_by(Member.id.desc())).first()
        assert newest is not None
        return newest.referrer_member_id


def test_a_referral_link_attributes_the_referee(client, app, database, make_member, clock):
    no = make_member("13955550000")
    with database.unit_of_work() as s:
        referrer = s.scalar(select(Member).where(Member.member_no == no))
        assert referrer is not None
        code = referrals.code_of(s, referrer.id, now=clock.now())
        referrer_id = referrer.id
    # the portal's Activities page shows the link with the code and its QR
    portal_sign_in(client, app, "13955550000")
    page = client.get("/portal/activities")
    assert f"/portal/login?ref={code}" in page.text and "<svg" in page.text
    client.cookies.clear()
    joined = _sign_up(client, app, "13955551111", code.lower())
    assert "patron_ref" in joined.headers.get("set-cookie", "")  # deleted after use
    assert _referrer_of(database) == referrer_id
    # a later sign-up in the same browser without a link has no referrer
    client.cookies.clear()
    _sign_up(client, app, "13955552222", None)
    assert _referrer_of(database) is None


def test_a_bad_or_unknown_code_signs_up_without_a_referrer(client, app, database):
    page = client.get("/portal/login?ref=<script>")
    assert page.status_code == 200 and "patron_ref" not in page.headers.get("set-cookie", "")
    client.cookies.clear()
    _sign_up(client, app, "13955553333", "ZZZZ9999")
    assert _referrer_of(database) is None
