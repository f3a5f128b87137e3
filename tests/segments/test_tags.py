"""Rule tags: recomputed by difference with history, after orders, never touching manual tags."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete, select, update

from patron.auth.principal import Principal
from patron.errors import Conflict, Invalid
from patron.members.models import Member, MemberTag, Tag
from patron.segments import tags
from patron.segments.domain import parse_rule
from patron.segments.models import TagHistory
from tests.analytics.history import add_orders
from tests.segments.test_select import NOW, TZ, _ago, _seed
from tests.statements import count_statements

ADMIN = Principal.system("test")
BIG = {"field": "spend_fen", "min": 50000, "window_days": 90}


def _holders(s, name: str) -> set[int]:
    stmt = select(MemberTag.member_id).join(Tag, Tag.id == MemberTag.tag_id)
    return set(s.scalars(stmt.where(Tag.name == name)))


def _history(s, name: str) -> list[tuple[int, str, str]]:
    rows = s.execute(
        select(TagHistory.member_id, TagHistory.change, TagHistory.source)
        .join(Tag, Tag.id == TagHistory.tag_id)
        .where(Tag.name == name)
        .order_by(TagHistory.id)
    )
    return [tuple(r) for r in rows]


def test_define_computes_then_recompute_writes_only_differences(database) -> None:
    with database.unit_of_work() as s:
        _seed(s)
        _, tr, done = tags.define(
            s, ADMIN, name="big spender", description="", rule=parse_rule(BIG),
            on_order=True, now=NOW, tz=TZ,
        )  # fmt: skip
        assert (done.added, done.removed) == (1, 0)
        assert _holders(s, "big spender") == {2}
        vip_before = _holders(s, "vip")
        # Member 3 spends; member 2's spend leaves the window: one added, one removed.
        add_orders(s, [(3, _ago(1).date(), 70000)])
        later = NOW + timedelta(days=75)
        tag, tr = tags.get(s, "big spender")
        with count_statements(database.engine) as log:
            done = tags.recompute(s, tag, tr, now=later, tz=TZ, source="job")
        assert (done.added, done.removed) == (1, 1)
        assert log.count <= 8, log.report()
        assert _holders(s, "big spender") == {3}
        assert _history(s, "big spender") == [
            (2, "added", "manual"),
            (3, "added", "job"),
            (2, "removed", "job"),
        ]
        # Nothing changed: nothing written.
        again = tags.recompute(s, tag, tr, now=later, tz=TZ, source="job")
        assert (again.added, again.removed) == (0, 0)
        assert len(_history(s, "big spender")) == 3
        assert _holders(s, "vip") == vip_before  # manual tags untouched


def test_frozen_members_lose_the_tag_and_nulls_count_as_no(database) -> None:
    with database.unit_of_work() as s:
        _seed(s)
        rule = parse_rule({"field": "city", "op": "in", "values": ["Shanghai", "Beijing"]})
        tags.define(
            s, ADMIN, name="city", description="", rule=rule, on_order=False, now=NOW, tz=TZ
        )
        assert _holders(s, "city") == {1, 2}
        s.get(Member, 2).city = None  # city IN (...) is NULL for it in SQL
        s.get(Member, 1).status = "frozen"
        s.flush()
        tag, tr = tags.get(s, "city")
        done = tags.recompute(s, tag, tr, now=NOW, tz=TZ, source="job")
        assert (done.added, done.removed) == (0, 2)
        assert _holders(s, "city") == set()


def test_after_orders_recomputes_only_those_members(database) -> None:
    with database.unit_of_work() as s:
        _seed(s)
        tags.define(
            s, ADMIN, name="big", description="", rule=parse_rule(BIG), on_order=True,
            now=NOW, tz=TZ,
        )  # fmt: skip
        # Member 3 qualifies through an order; member 7 would qualify by the rule too but
        # has no new order, so only the full job will see it (here: a direct spend row).
        add_orders(s, [(3, _ago(2).date(), 80000)])
        assert tags.recompute_after_orders(s, now=NOW, tz=TZ)[0].added == 1
        assert _holders(s, "big") == {2, 3}
        assert _history(s, "big")[-1] == (3, "added", "order")
        # No new order: nothing to do.
        assert tags.recompute_after_orders(s, now=NOW, tz=TZ) == []


def test_a_rule_cannot_loop_and_names_are_unique(database) -> None:
    with database.unit_of_work() as s:
        _seed(s)
        with pytest.raises(Conflict) as exc:
            tags.define(
                s, ADMIN, name="vip", description="", rule=parse_rule(BIG), on_order=True,
                now=NOW, tz=TZ,
            )  # fmt: skip
        assert exc.value.code == "tag_exists"
        own = parse_rule({"field": "tag", "values": ["loyal"]})
        with pytest.raises(Invalid) as loop:
            tags.define(
                s, ADMIN, name="loyal", description="", rule=own, on_order=True, now=NOW, tz=TZ
            )
        assert loop.value.code == "tag_rule_loop"
        tags.define(
            s, ADMIN, name="a", description="", rule=parse_rule(BIG), on_order=True,
            now=NOW, tz=TZ,
        )  # fmt: skip
        tags.define(
            s, ADMIN, name="b", description="", rule=parse_rule({"field": "tag", "values": ["a"]}),
            on_order=True, now=NOW, tz=TZ,
        )  # fmt: skip
        assert _holders(s, "b") == {2}
        with pytest.raises(Invalid):  # a may not use b, defined after it
            tags.change(
                s, ADMIN, "a", description=None,
                rule=parse_rule({"field": "tag", "values": ["b"]}), on_order=None, now=NOW, tz=TZ,
            )  # fmt: skip


def test_manual_tagging_of_a_rule_tag_is_refused(client, auth_headers, make_member) -> None:
    no = make_member()
    w = auth_headers("operator")
    resp = client.post(
        "/api/v1/tag-rules",
        json={"name": "spender", "rule": {"field": "spend_fen", "min": 1}},
        headers=w,
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert (body["version"], body["members"], body["on_order"]) == (1, 0, True)
    resp = client.post(f"/api/v1/members/{no}/tags", json={"tag": "spender"}, headers=w)
    assert resp.json()["error"]["code"] == "rule_tag"
    changed = client.patch(
        "/api/v1/tag-rules/spender", json={"rule": {"field": "spend_fen", "max": 0}}, headers=w
    )
    assert changed.json()["version"] == 2
    one = client.get("/api/v1/tag-rules/spender", headers=auth_headers("analyst")).json()
    assert one["members"] == 1
    hist = client.get("/api/v1/tag-rules/spender/history", headers=w).json()
    assert [(h["member_no"], h["change"]) for h in hist] == [(no, "added")]
    assert client.post("/api/v1/tag-rules/spender/recompute", headers=w).json() == {
        "added": 0,
        "removed": 0,
    }
    bad = client.post("/api/v1/tag-rules", json={"name": "x", "rule": {"op": "xor"}}, headers=w)
    assert bad.json()["error"]["code"] == "segment_rule_invalid"
    assert client.get("/api/v1/tag-rules/nope", headers=w).json()["error"]["code"] == (
        "tag_rule_not_found"
    )
    denied = client.post(
        "/api/v1/tag-rules", json={"name": "y", "rule": BIG}, headers=auth_headers("analyst")
    )
    assert denied.status_code == 403


def test_check_reports_tags_and_stages_corrupted_behind_the_service(database) -> None:
    from patron.checks import run_all
    from patron.segments import check, lifecycle
    from patron.segments.models import MemberStage

    with database.unit_of_work() as s:
        _seed(s)
        tags.define(
            s, ADMIN, name="big", description="", rule=parse_rule(BIG), on_order=True,
            now=NOW, tz=TZ,
        )  # fmt: skip
        lifecycle.run_stages(s, now=NOW, tz=TZ)
        assert [v for v in run_all(s) if "tag" in v or "stage" in v] == []
        tag_id = s.scalar(select(Tag.id).where(Tag.name == "big"))
        s.execute(delete(MemberTag).where(MemberTag.tag_id == tag_id))  # member 2 loses it
        s.add(MemberTag(member_id=3, tag_id=tag_id, created_at=NOW, created_by="sql"))
        s.execute(update(MemberStage).where(MemberStage.member_id == 4).values(stage="active"))
        s.flush()
        found = run_all(s)
        assert (
            "Member T000000003 holds rule tag 'big' but its history does not say it was added."
            in found
        )
        assert (
            "Member T000000002 lacks rule tag 'big' though its history says it was added." in found
        )
        assert (
            "Member T000000004 is stored in stage 'active' but its last transition is to 'churned'."
            in found
        )
        assert check.run_check(s, member_id=1) == []
        assert len(check.run_check(s, member_id=3)) == 1
