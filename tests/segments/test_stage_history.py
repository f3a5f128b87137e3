"""Lifecycle stage history: a daily run writes only changes; transitions per month."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from patron.members.models import Member
from patron.segments import lifecycle
from patron.segments.models import MemberStage, StageTransition
from tests.analytics.history import add_orders
from tests.segments.test_select import NOW, TZ, _seed
from tests.statements import count_statements


def _stages(s) -> dict[int, str]:
    return dict(s.execute(select(MemberStage.member_id, MemberStage.stage)).all())


def test_daily_run_writes_only_changes_and_reports_transitions(database) -> None:
    with database.unit_of_work() as s:
        _seed(s)
        with count_statements(database.engine) as log:
            first = lifecycle.run_stages(s, now=NOW, tz=TZ)
        assert log.count <= 6, log.report()
        assert first.changed == 7  # every active member's first stage (6 is frozen)
        assert _stages(s) == {1: "new", 2: "active", 3: "dormant", 4: "churned", 5: "churned",
                              7: "dormant", 8: "churned"}  # fmt: skip
        assert lifecycle.run_stages(s, now=NOW, tz=TZ).changed == 0  # a rerun: nothing
        # A month later: 1 is no longer new (never bought: dormant), 3 buys again (active).
        later = NOW + timedelta(days=31)
        add_orders(s, [(3, (later - timedelta(days=1)).date(), 1000)])
        s.get(Member, 5).status = "frozen"  # kept with its last stage
        s.flush()
        run = lifecycle.run_stages(s, now=later, tz=TZ)
        assert run.changed == 2
        assert _stages(s)[1] == "dormant" and _stages(s)[3] == "active"
        since = s.scalar(select(MemberStage.since).where(MemberStage.member_id == 3))
        assert since == later.astimezone(TZ).date()
        assert s.scalar(select(StageTransition.from_stage).where(StageTransition.member_id == 3)
                        .order_by(StageTransition.id.desc()).limit(1)) == "dormant"  # fmt: skip
        rows = lifecycle.transitions(s, since=later.strftime("%Y-%m"))
        assert [(t.from_stage, t.to_stage, t.members) for t in rows] == [
            ("new", "dormant", 1),
            ("dormant", "active", 1),
        ]
        june = lifecycle.transitions(s, since="2026-06", until="2026-06")
        assert sum(t.members for t in june) == 7 and all(t.from_stage is None for t in june)
        assert lifecycle.stage_counts(s) == {"new": 0, "active": 2, "dormant": 2, "churned": 3}


def test_transitions_api_and_bad_month(client, auth_headers) -> None:
    h = auth_headers("analyst")
    assert client.get("/api/v1/lifecycle/transitions", headers=h).json() == []
    bad = client.get("/api/v1/lifecycle/transitions?since=2026-13", headers=h)
    assert bad.status_code == 422
    stages = client.get("/api/v1/lifecycle/stages", headers=h).json()
    assert stages == {"counts": {"new": 0, "active": 0, "dormant": 0, "churned": 0}}
