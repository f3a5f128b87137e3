"""Pages of the second analytics round (SQLite and PostgreSQL): the portal's "for you" and
replenishment hint, the anomaly alerts page and the analytics exports."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from patron.analytics import scores as svc
from patron.members.models import Member
from tests.analytics.history import add_baskets, add_members
from tests.analytics.test_personal import TODAY, _catalogue
from tests.web.test_portal_pages import portal_sign_in

SH = ZoneInfo("Asia/Shanghai")


def test_portal_home_suggests_what_is_due_and_products(client, app, database, clock, make_member):
    number = make_member("13912340000")
    with database.unit_of_work() as s:
        _catalogue(s)
        me = s.scalar(select(Member.id).where(Member.member_no == number))
        others = add_members(s, 30, start_id=1000, at=clock.now() - timedelta(days=400))
        baskets = []
        for k, m in enumerate([me, *others]):
            for n in range(4):
                lines = [("MILK1", "milk")]
                if n == 0:
                    lines.append(("CHIPS", "snack"))
                    if m != me:
                        lines.append(("DIP", "snack"))
                baskets.append((m, TODAY - timedelta(days=8 + 10 * n + (k % 3)), lines))
        add_baskets(s, baskets)
        svc.run_scores(s, now=clock.now(), tz=SH)
    portal_sign_in(client, app, "13912340000")
    page = client.get("/portal/")
    assert page.status_code == 200
    # Milk every 10 days, last 8 days ago: due in 2 days.
    assert 'data-hint="replenish"' in page.text and "Milk" in page.text
    assert 'data-sku="DIP"' in page.text and "Salsa dip" in page.text
    client.headers["Accept-Language"] = "zh-CN"
    zh = client.get("/portal/").text
    assert "为你推荐" in zh and "你可能很快又需要" in zh
