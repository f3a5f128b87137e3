"""The ``{{recommendedProducts}}`` message variable lists the names of the member's best stored
product recommendations still on sale, or the last scores run's popular ones (SQLite and
PostgreSQL); the console's template page offers it."""

from __future__ import annotations

from sqlalchemy import select

from patron.analytics.models import ModelRun
from patron.messaging import service as messaging
from patron.messaging.models import Message
from tests.segments.test_recommended import _catalogue, _recs
from tests.segments.test_select import NOW, _seed
from tests.statements import count_statements
from tests.web.test_config_pages import operator  # noqa: F401 - the fixture


def test_recommended_products_fill_the_message_variable(database) -> None:
    with database.unit_of_work() as s:
        _seed(s)
        _catalogue(s)
        _recs(s)
        # the last scores run's popular list, for members it did not score (7)
        s.add(
            ModelRun(
                kind="scores", ran_at=NOW, as_of=NOW.date(), members=1,
                report={"recommendations": {"popular_products": ["F2", "A2", "A1"]}},
            )
        )  # fmt: skip
        s.flush()
        with count_statements(database.engine) as log:
            scored = messaging.recommended_products(s, [1, 2, 5], "zh-CN")
        assert log.count == 1, log.report()  # scored members: one read per chunk
        with count_statements(database.engine) as log:
            got = messaging.recommended_products(s, [1, 2, 5, 7], "zh-CN")
        assert log.count == 3, log.report()  # + the last run's popular list and its names
        assert scored == {k: v for k, v in got.items() if k != 7}
        # inactive F2 is left out; at most three names, best first
        assert got == {
            1: "name-A1、name-F1",
            2: "name-F1、name-A2、name-A1",
            5: "name-F1、name-F2x、name-F1x",
            7: "name-A2、name-A1",
        }
        # member 3's only recommendation is off sale: the popular ones stand in
        assert messaging.recommended_products(s, [3], "en") == {3: "name-A2, name-A1"}
        n = messaging.enqueue_text(
            s,
            "{{name}}, for you: {{recommendedProducts}}",
            [messaging.Draft(2, "k2"), messaging.Draft(7, "k7")],
            source_kind="journey",
            source_code="j",
            now=NOW,
            locale="en",
        )
        assert n == 2
        bodies = dict(s.execute(select(Message.member_id, Message.body)).all())
        assert bodies[2].endswith("for you: name-F1, name-A2, name-A1")
        assert bodies[7].endswith("for you: name-A2, name-A1")


def test_template_page_and_journey_editor_offer_the_variable(client, operator):  # noqa: F811
    page = client.get("/console/messages/templates")
    assert page.status_code == 200 and "{{recommendedProducts}}" in page.text
    client.headers["Accept-Language"] = "zh-CN"
    journeys = client.get("/console/journeys")  # its editor starts with a send step
    assert journeys.status_code == 200
    assert "模板中可用 {{recommendedProducts}} 列出为会员推荐的前几件商品。" in journeys.text
