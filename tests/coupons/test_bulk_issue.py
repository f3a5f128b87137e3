"""Set-based issues: to a saved segment and to a campaign's audience (its control group held
out) — idempotent on rerun, within the template's total and per-member quantities, with
history, events and deliveries written set-based, and `patron check` clean."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import func, insert, select, update

from patron.auth.principal import Principal
from patron.campaigns import experiment
from patron.checks import run_all
from patron.context import build
from patron.coupons import bulk, service
from patron.coupons.models import Coupon, CouponHistory, CouponTemplate
from patron.members.models import Member
from patron.webhooks.models import WebhookDelivery, WebhookEvent
from tests.coupons.test_coupons_api import SH, THRESHOLD, put_template
from tests.statements import count_statements

# Authentication, the context's settings, the template's lock, the reach, the last coupon id,
# the savepoint, the INSERT … SELECT, its release, the counter, the history, the last event id,
# the events, the audit record (the ladder when the template has tiers).
BUDGET = {"sqlite": 20, "postgresql": 20}
# An issue to a saved segment with an endpoint subscribed: the segment, the context's settings,
# the template's lock, the reach, the endpoints, the last event id, the savepoint, the issue, its
# release, the counter, the deliveries (the audit record is flushed with the unit of work). The
# issue is one statement on PostgreSQL (coupons, history and events); SQLite reads the last
# coupon id and writes the coupons, their history and their events in three.
ISSUE_BUDGET = {"sqlite": 14, "postgresql": 11}

EVERYONE = {"op": "and", "rules": [{"field": "registered", "on_or_after": "2000-01-01"}]}


def _segment(client, h, code="all", rule=EVERYONE):
    r = client.post("/api/v1/segments", json={"code": code, "name": code, "rule": rule}, headers=h)
    assert r.status_code == 201, r.text


def _seg_issue(client, h, template, segment="all", ref="S1"):
    return client.post(
        f"/api/v1/coupon-templates/{template}/segment-issues",
        json={"segment": segment, "ref": ref},
        headers=h,
    )


def _holders(database, template="T"):
    with database.unit_of_work() as s:
        return dict(
            s.execute(
                select(Member.member_no, func.count(Coupon.id))
                .join(Coupon, Coupon.member_id == Member.id)
                .join(CouponTemplate, CouponTemplate.id == Coupon.template_id)
                .where(CouponTemplate.code == template)
                .group_by(Member.member_no)
            ).all()
        )


def test_segment_issue_is_set_based_limited_and_idempotent(
    client, shop, make_member, database, auth_headers
):
    nos = [make_member() for _ in range(6)]  # in the order of their ids
    put_template(client, shop, "T", {**THRESHOLD, "total_quantity": 4})
    _segment(client, auth_headers("operator"))
    # a webhook endpoint subscribed to coupon.issued gets one delivery per coupon
    r = client.post(
        "/api/v1/webhooks",
        json={"url": "https://hooks.example.com/patron", "events": ["coupon.issued"]},
        headers=auth_headers("admin"),
    )
    assert r.status_code == 201, r.text
    r = _seg_issue(client, shop, "T")
    assert r.status_code == 200, r.text
    assert r.json() == {"reached": 6, "issued": 4, "not_issued": 2, "left": 0}
    # lowest member ids first
    assert sorted(_holders(database)) == sorted(nos[:4])
    again = _seg_issue(client, shop, "T").json()
    assert again == {"reached": 6, "issued": 0, "not_issued": 6, "left": 0}
    with database.unit_of_work() as s:
        coupons = s.scalars(select(Coupon)).all()
        assert len({c.code for c in coupons}) == 4
        for c in coupons:
            assert len(c.code) == 12
            assert set(c.code) <= set("23456789ABCDEFGHJKMNPQRSTUVWXYZ")
            assert (c.reason, c.issue_key, c.status) == ("manual", "manual:S1", "issued")
        assert s.scalar(select(func.count()).select_from(CouponHistory)) == 4
        evs = s.scalars(
            select(WebhookEvent).where(WebhookEvent.event_type == "coupon.issued")
        ).all()
        assert sorted(e.payload["code"] for e in evs) == sorted(c.code for c in coupons)
        assert {e.member_no for e in evs} == set(nos[:4])
        assert all(e.payload["template"] == "T" for e in evs)
        assert s.scalar(select(func.count()).select_from(WebhookDelivery)) == 4
        assert s.scalar(select(CouponTemplate.issued_count)) == 4
        assert run_all(s) == []


def test_segment_issue_respects_per_member_limit_and_tiers(
    client, shop, make_member, database, auth_headers
):
    nos = [make_member() for _ in range(3)]
    put_template(client, shop, "T", {**THRESHOLD, "total_quantity": None, "per_member_limit": 2})
    _segment(client, auth_headers("operator"))
    assert _seg_issue(client, shop, "T", ref="A").json()["issued"] == 3
    assert _seg_issue(client, shop, "T", ref="B").json()["issued"] == 3
    # a third issue finds every member at the limit
    third = _seg_issue(client, shop, "T", ref="C").json()
    assert (third["issued"], third["not_issued"], third["left"]) == (0, 3, None)
    assert _holders(database) == dict.fromkeys(nos, 2)
    # a template for gold members only reaches nobody here
    gold = {**THRESHOLD, "rules": {**THRESHOLD["rules"], "tiers": ["gold"]}}
    put_template(client, shop, "G", gold)
    assert _seg_issue(client, shop, "G").json()["issued"] == 0
    with database.unit_of_work() as s:
        assert run_all(s) == []


def test_segment_issue_refusals(client, shop, make_member, auth_headers):
    make_member()
    put_template(client, shop, "T", THRESHOLD)
    r = _seg_issue(client, shop, "T", segment="nope")
    assert (r.status_code, r.json()["error"]["code"]) == (404, "segment_not_found")
    _segment(client, auth_headers("operator"))
    r = _seg_issue(client, shop, "NOPE")
    assert (r.status_code, r.json()["error"]["code"]) == (404, "coupon_template_not_found")
    put_template(client, shop, "P", {**THRESHOLD, "status": "paused"})
    r = _seg_issue(client, shop, "P")
    assert (r.status_code, r.json()["error"]["code"]) == (409, "coupon_template_paused")
    r = client.post(
        "/api/v1/coupon-templates/T/segment-issues",
        json={"segment": "all", "ref": "x"},
        headers=auth_headers("analyst"),
    )
    assert r.status_code == 403


def test_frozen_members_receive_nothing(client, shop, make_member, database, clock):
    nos = [make_member() for _ in range(3)]
    with database.unit_of_work() as s:
        s.execute(update(Member).where(Member.member_no == nos[0]).values(status="frozen"))
    put_template(client, shop, "T", {**THRESHOLD, "total_quantity": None})
    # a hand-made audience that includes the frozen member
    with database.unit_of_work() as s:
        ctx = build(s, Principal.system("test"), clock.now(), SH)
        report = bulk.issue_to_audience(
            s, ctx, "T", select(Member.id), reason="manual", key="manual:H"
        )
    assert (report.reached, report.issued) == (3, 2)
    assert sorted(_holders(database)) == sorted(nos[1:])


def _campaign(client, h, **extra):
    r = client.post(
        "/api/v1/campaigns",
        json={
            "code": "spring",
            "name": "Spring",
            "schedule": {"kind": "one_off", "start": "2026-03-01", "end": "2026-03-31"},
            **extra,
        },
        headers=h,
    )
    assert r.status_code == 201, r.text


def test_campaign_issues_to_its_segment_audience_without_the_control_group(
    client, shop, make_member, database, auth_headers
):
    nos = [make_member() for _ in range(40)]
    put_template(client, shop, "T", {**THRESHOLD, "total_quantity": None})
    # the segment: members whose number is not the first one's (a tag-free way: registered)
    _segment(client, auth_headers("operator"))
    r = client.post(
        "/api/v1/campaigns",
        json={
            "code": "spring",
            "name": "Spring",
            "schedule": {"kind": "one_off", "start": "2026-03-01", "end": "2026-03-31"},
            "audience": {"segment": "nope"},
        },
        headers=shop,
    )
    assert (r.status_code, r.json()["error"]["code"]) == (422, "unknown_segment")
    _campaign(client, shop, audience={"segment": "all"}, control_bp=3000)
    r = client.post("/api/v1/campaigns/spring/coupon-issues", json={"template": "T"}, headers=shop)
    assert (r.status_code, r.json()["error"]["code"]) == (409, "campaign_not_active")
    client.post("/api/v1/campaigns/spring/status", json={"status": "active"}, headers=shop)
    r = client.post("/api/v1/campaigns/spring/coupon-issues", json={"template": "T"}, headers=shop)
    assert r.status_code == 200, r.text
    with database.unit_of_work() as s:
        ids = dict(s.execute(select(Member.member_no, Member.id)).all())
    treated = {
        no for no in nos if experiment.group_of("campaign:spring", ids[no], 3000) != "control"
    }
    assert 0 < len(treated) < 40
    assert r.json()["issued"] == len(treated) == r.json()["reached"]
    assert set(_holders(database)) == treated
    # once per member for the campaign; a ref (the next member day) issues again
    again = client.post(
        "/api/v1/campaigns/spring/coupon-issues", json={"template": "T"}, headers=shop
    )
    assert again.json()["issued"] == 0
    with database.unit_of_work() as s:
        keys = set(s.scalars(select(Coupon.issue_key)))
        assert keys == {"campaign:spring"}
        assert run_all(s) == []


def test_segment_issue_statement_count_does_not_grow_with_members(
    client, shop, make_member, database, auth_headers
):
    put_template(client, shop, "T", {**THRESHOLD, "total_quantity": None, "per_member_limit": 2})
    _segment(client, auth_headers("operator"))
    counts = []
    for n, ref in ((2, "A"), (10, "B")):
        for _ in range(n):
            make_member()
        with count_statements(database.engine) as log:
            r = _seg_issue(client, shop, "T", ref=ref)
        assert r.status_code == 200, r.text
        counts.append((r.json()["issued"], log.count))
    assert [c[0] for c in counts] == [2, 12]
    assert counts[0][1] == counts[1][1], f"statements grew with members: {counts}\n{log.report()}"
    budget = BUDGET[database.dialect]
    assert counts[1][1] <= budget, f"{counts[1][1]} statements > {budget}\n{log.report()}"


def _add_members(database, first, n, now):
    """Members written in one statement (the API would take a request each)."""
    with database.unit_of_work() as s:
        s.execute(
            insert(Member),
            [
                {
                    "member_no": f"B{i:09d}",
                    "phone_enc": b"\x00",
                    "phone_index": f"bulk-{i}",
                    "registration_channel": "web",
                    "status": "active",
                    "member_type": "regular",
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(first, first + n)
            ],
        )


def test_issue_sends_the_same_statements_for_10_and_1000_members(
    client, shop, database, clock, auth_headers
):
    put_template(client, shop, "T", {**THRESHOLD, "total_quantity": None, "per_member_limit": 2})
    _segment(client, auth_headers("operator"))
    r = client.post(
        "/api/v1/webhooks",
        json={"url": "https://hooks.example.com/patron", "events": ["coupon.issued"]},
        headers=auth_headers("admin"),
    )
    assert r.status_code == 201, r.text
    runs = []
    for first, n, ref in ((0, 10, "A"), (10, 990, "B")):
        _add_members(database, first, n, clock.now())
        with database.unit_of_work() as s:
            ctx = build(s, Principal.system("test"), clock.now(), SH)
            with count_statements(database.engine) as log:
                report = bulk.issue_to_segment(s, ctx, "T", "all", ref)
        runs.append((report.issued, log.count))
    assert [issued for issued, _ in runs] == [10, 1000]
    assert runs[0][1] == runs[1][1], f"statements grew with members: {runs}\n{log.report()}"
    budget = ISSUE_BUDGET[database.dialect]
    assert runs[1][1] <= budget, f"{runs[1][1]} statements > {budget}\n{log.report()}"
    with database.unit_of_work() as s:
        # each coupon once in its history and once in an event naming its member and code
        got = set(
            s.execute(
                select(Member.member_no, Coupon.code).join(Coupon, Coupon.member_id == Member.id)
            ).all()
        )
        evs = s.scalars(
            select(WebhookEvent).where(WebhookEvent.event_type == "coupon.issued")
        ).all()
        assert {(e.member_no, e.payload["code"]) for e in evs} == got
        assert len(got) == len({code for _, code in got}) == 1010
        assert s.scalar(select(func.count()).select_from(CouponHistory)) == 1010
        assert s.scalar(select(func.count()).select_from(WebhookDelivery)) == 1010
        assert run_all(s) == []


def test_code_block_letters_are_even_over_the_alphabet():
    assert service.code_block(0) == b""
    block = service.code_block(60_000)
    assert len(block) == 60_000 * 12
    counts = Counter(block.decode())
    assert set(counts) == set(service.ALPHABET)
    # bytes taken modulo 31 without rejection would give the first eight letters 9/256 each
    # against 8/256: about 2,800 more of each here, against a spread of about 60
    first = sum(counts[c] for c in service.ALPHABET[:8]) / 8
    rest = sum(counts[c] for c in service.ALPHABET[8:]) / 23
    assert abs(first - rest) < 600


def test_a_member_joining_the_audience_during_an_issue_waits_for_the_rerun(
    client, shop, make_member, database, auth_headers, monkeypatch
):
    """The audience is counted before the coupons are written; on PostgreSQL another
    transaction may add a member in between. The issue never hands out more coupons than codes
    it drew (an empty code before): the newcomer gets theirs from the rerun."""
    if not database.url.startswith("postgresql"):
        pytest.skip("a write between two statements of an issue: PostgreSQL only")
    nos = [make_member() for _ in range(3)]
    put_template(client, shop, "T", THRESHOLD)
    _segment(client, auth_headers("operator"))
    drawn = service.code_block
    late: list[str] = []

    def draw_then_someone_joins(n: int) -> bytes:
        if not late:
            late.append(make_member())  # committed in its own unit of work
        return drawn(n)

    monkeypatch.setattr(service, "code_block", draw_then_someone_joins)
    first = _seg_issue(client, shop, "T")
    assert first.status_code == 200, first.text
    assert first.json()["issued"] == 3
    assert sorted(_holders(database)) == sorted(nos)
    again = _seg_issue(client, shop, "T", ref="S2").json()
    assert again["issued"] == 1
    assert sorted(_holders(database)) == sorted([*nos, *late])
    with database.unit_of_work() as s:
        assert all(len(c) == 12 for c in s.scalars(select(Coupon.code)))
        assert run_all(s) == []
