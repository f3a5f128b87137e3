"""My data export (every section, only the member's own rows), erasure requests, and the
one-off profile-completion bonus through the earning rules."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import date

from sqlalchemy import func, select

from patron.checkin import service as checkin
from patron.ledger import queries as ledger_queries
from patron.members import completion
from patron.members import service as members
from patron.members.models import Member
from patron.members.schemas import MemberUpdate
from patron.orders.service import EARNING_SECTION, earning_rules
from patron.privacy import service as privacy
from patron.privacy.models import ErasureRequest
from patron.program import service as program
from patron.rules.definitions import ProfileCompletionBonus
from tests.factories import order_body
from tests.portal.helpers import ACTOR, CIPHER, SH, ctx, new_member


def _member(session, member_no):
    return session.scalar(select(Member).where(Member.member_no == member_no))


def test_export_holds_every_section_of_my_data_only(
    client, shop, make_member, database, clock, auth_headers
):
    referrer = make_member("13911112222", name="Friend")
    mine = make_member(
        "13912345678",
        name="王芳",
        email="wf@example.com",
        consents={"sms": True},
        referrer_member_no=referrer,
    )
    other = make_member("13987654321", name="Other")
    admin = auth_headers("admin")
    for no, ext, tag in ((mine, "O-1", "VIP沙龙"), (other, "O-2", "OtherTag")):
        r = client.post("/api/v1/orders", json=order_body(no, ext=ext), headers=shop)
        assert r.status_code == 201, r.text
        back = {
            "external_id": f"R-{ext}",
            "returned_at": "2026-03-02T10:00:00+08:00",
            "lines": [{"line_no": 2, "quantity": 1}],
        }
        r = client.post(f"/api/v1/orders/pos/{ext}/returns", json=back, headers=shop)
        assert r.status_code == 201, r.text
        r = client.post(f"/api/v1/members/{no}/tags", json={"tag": tag}, headers=admin)
        assert r.status_code == 200, r.text
        adjust = {"ledger": "growth", "amount": 7, "reason": f"goodwill {ext}"}
        r = client.post(f"/api/v1/members/{no}/points/adjustments", json=adjust, headers=admin)
        assert r.status_code == 201, r.text
        hold = {"tier": "gold", "reason": f"complaint {ext}", "until": None}
        r = client.post(f"/api/v1/members/{no}/tier/override", json=hold, headers=admin)
        assert r.status_code == 200, r.text
    with database.unit_of_work() as s:
        me = _member(s, mine)
        checkin.check_in(s, ctx(s, clock.now()), me.id)
    with database.unit_of_work() as s:
        me = _member(s, mine)
        privacy.request_erasure(s, ACTOR, me, reason="moving away", now=clock.now())
        data = privacy.export(s, CIPHER, me, now=clock.now())
    assert data["profile"]["member_no"] == mine
    assert data["profile"]["phone"] == "+8613912345678"  # their own data, not masked
    assert data["profile"]["email"] == "wf@example.com"
    assert data["profile"]["name"] == "王芳"
    assert data["consents"][0]["channel"] == "sms"
    assert data["consents"][0]["granted"] is True
    assert [o["external_id"] for o in data["orders"]] == ["O-1"]
    assert data["orders"][0]["store_code"] == "SH001"
    assert {p["source"] for p in data["points"]} == {"order:pos:O-1", f"checkin:{me.id}:2026-03-01"}
    assert data["checkins"] == [{"date": "2026-03-01", "streak": 1, "points": 5}]
    assert data["erasure_requests"][0]["status"] == "open"
    assert data["erasure_requests"][0]["reason"] == "moving away"
    assert data["profile"]["referrer_member_no"] == referrer
    assert data["tags"][0]["tag"] == "VIP沙龙" and len(data["tags"]) == 1
    assert [(r["order"], r["return_id"]) for r in data["returns"]] == [("pos:O-1", "R-O-1")]
    assert data["returns"][0]["refund_fen"] > 0
    assert [a["reason"] for a in data["adjustments"]] == ["goodwill O-1"]
    assert {g["kind"] for g in data["growth"]} >= {"earn", "clawback", "adjust"}
    assert data["tier"]["tier"] == "gold" and data["tier"]["override_reason"] == "complaint O-1"
    assert [(t["to"], t["reason"]) for t in data["tiers"]][-1] == ("gold", "complaint O-1")
    assert sum(lot["remaining"] for lot in data["points_lots"]) > 0
    assert all(lot["expires_at"] for lot in data["points_lots"])
    for theirs in ("Other", "OtherTag", "O-2", "goodwill O-2", "complaint O-2", "Friend"):
        assert theirs not in str(data), theirs
    archive = zipfile.ZipFile(io.BytesIO(privacy.to_csv_zip(data)))
    assert set(archive.namelist()) == {f"{name}.csv" for name in privacy.SECTIONS}
    assert set(data) == {"exported_at", *privacy.SECTIONS}  # every section goes into the ZIP
    rows = list(csv.DictReader(io.StringIO(archive.read("orders.csv").decode("utf-8-sig"))))
    assert rows[0]["external_id"] == "O-1"
    profile = archive.read("profile.csv").decode("utf-8-sig")
    assert "王芳" in profile


def test_erasure_is_requested_once(database, clock):
    with database.unit_of_work() as s:
        me = new_member(s, clock.now())
        first = privacy.request_erasure(s, ACTOR, me, reason="", now=clock.now())
        again = privacy.request_erasure(s, ACTOR, me, reason="again", now=clock.now())
        assert first.id == again.id
        assert s.scalar(select(func.count()).select_from(ErasureRequest)) == 1


def _complete(session, member, clock, **fields):
    data = {
        "name": "Li",
        "email": "li@example.com",
        "birthday": date(1990, 5, 1),
        "gender": "female",
        "city": "Shanghai",
    }
    data.update(fields)
    members.update_profile(
        session, ACTOR, CIPHER, member.member_no, MemberUpdate(**data), now=clock.now(), tz=SH
    )


def test_profile_completion_bonus_once_by_the_rule(database, clock):
    with database.unit_of_work() as s:
        me = new_member(s, clock.now(), name="Li")
        # incomplete: nothing
        assert completion.award_if_complete(s, ctx(s, clock.now()), CIPHER, me) == 0
        _complete(s, me, clock)
        assert completion.award_if_complete(s, ctx(s, clock.now()), CIPHER, me) == 200
    with database.unit_of_work() as s:
        me = _member(s, me.member_no)
        _complete(s, me, clock, city="Hangzhou")  # completing "again" earns nothing
        assert completion.award_if_complete(s, ctx(s, clock.now()), CIPHER, me) == 0
        assert ledger_queries.balance(s, me.id, clock.now()).available == 200
        assert completion.already_awarded(s, me.id)


def test_profile_bonus_follows_the_rule_settings_and_budget(database, clock):
    with database.unit_of_work() as s:
        rules = earning_rules(s).model_copy(
            update={"profile_completion": ProfileCompletionBonus(points=50, budget_points=80)}
        )
        program.put_section(s, ACTOR, EARNING_SECTION, rules, now=clock.now())
        a = new_member(s, clock.now(), phone="13900000011")
        b = new_member(s, clock.now(), phone="13900000012")
        c = new_member(s, clock.now(), phone="13900000013")
        for m in (a, b, c):
            _complete(s, m, clock)
        got = [completion.award_if_complete(s, ctx(s, clock.now()), CIPHER, m) for m in (a, b, c)]
        assert got == [50, 30, 0]  # the budget of 80 runs out
        off = earning_rules(s).model_copy(
            update={"profile_completion": ProfileCompletionBonus(enabled=False)}
        )
        program.put_section(s, ACTOR, EARNING_SECTION, off, now=clock.now())
        d = new_member(s, clock.now(), phone="13900000014")
        _complete(s, d, clock)
        assert completion.award_if_complete(s, ctx(s, clock.now()), CIPHER, d) == 0


def test_csv_export_neutralises_formulas_and_keeps_negative_numbers(
    client, make_member, database, clock, auth_headers
):
    no = make_member("13912345670", name='=HYPERLINK("http://evil","x")', city="@SUM(A1)")
    admin = auth_headers("admin")
    for amount, reason in ((20, "+goodwill"), (-5, "-2+3 correction")):
        adjust = {"ledger": "growth", "amount": amount, "reason": reason}
        r = client.post(f"/api/v1/members/{no}/points/adjustments", json=adjust, headers=admin)
        assert r.status_code == 201, r.text
    with database.unit_of_work() as s:
        data = privacy.export(s, CIPHER, _member(s, no), now=clock.now())
    archive = zipfile.ZipFile(io.BytesIO(privacy.to_csv_zip(data)))

    def rows(section):
        text = archive.read(f"{section}.csv").decode("utf-8-sig")
        return list(csv.DictReader(io.StringIO(text)))

    profile = {r["field"]: r["value"] for r in rows("profile")}
    assert profile["name"] == '\'=HYPERLINK("http://evil","x")'
    assert profile["city"] == "'@SUM(A1)"
    adjustments = rows("adjustments")
    assert [(a["amount"], a["reason"]) for a in adjustments] == [
        ("20", "'+goodwill"),
        ("-5", "'-2+3 correction"),
    ]
    every_cell = [v for section in privacy.SECTIONS for r in rows(section) for v in r.values()]
    for value in every_cell:
        # only whole numbers (negative ones included) may start with "-"
        assert not value or value[0] not in "=+@\t\r" or value.lstrip("-").isdigit(), value
    # The JSON export keeps the member's text as it is.
    assert data["profile"]["name"] == '=HYPERLINK("http://evil","x")'
