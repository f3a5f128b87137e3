"""PostgreSQL: the hourly recompute and the after-order pass of the same rule tag, run at once
from several connections, give each member the tag once and write each change once."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from patron.auth.principal import Principal
from patron.members.models import MemberTag
from patron.segments import tags
from patron.segments.domain import parse_rule
from patron.segments.models import TagHistory
from tests.analytics.history import add_orders
from tests.segments.test_select import NOW, TZ, _ago, _seed


def test_concurrent_recomputes_write_each_change_once(pg_database) -> None:
    db = pg_database
    with db.unit_of_work() as s:
        _seed(s)
        tags.define(
            s, Principal.system("t"), name="big", description="",
            rule=parse_rule({"field": "spend_fen", "min": 50000, "window_days": 90}),
            on_order=True, now=NOW, tz=TZ,
        )  # fmt: skip
        add_orders(s, [(3, _ago(1).date(), 70000), (7, _ago(1).date(), 90000)])
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def run(kind: int) -> None:
        try:
            start.wait()
            with db.unit_of_work() as s:
                if kind % 2:
                    tags.recompute_all(s, now=NOW, tz=TZ)
                else:
                    tags.recompute_after_orders(s, now=NOW, tz=TZ)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with db.unit_of_work() as s:
        holders = set(s.scalars(select(MemberTag.member_id).where(MemberTag.created_by == "rule")))
        assert holders == {2, 3, 7}
        rows = s.execute(
            select(TagHistory.member_id, TagHistory.change, func.count()).group_by(
                TagHistory.member_id, TagHistory.change
            )
        ).all()
        assert sorted(rows) == [(2, "added", 1), (3, "added", 1), (7, "added", 1)]
