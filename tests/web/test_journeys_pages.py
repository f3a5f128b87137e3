"""Journey and messaging console pages without a browser (SQLite and PostgreSQL): templates
with a preview, a journey built one row a step and shown as sentences, loops refused with
422, pause and resume, the delivery report and the dead letters with retry."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from patron.journeys.models import Journey
from patron.messaging.models import Message
from tests.web.test_config_pages import _csrf, operator  # noqa: F401 - the fixture


def rows(*steps: dict[str, str]) -> dict[str, str]:
    """The journey editor's inputs for these rows."""
    out = {"rows": str(len(steps))}
    for i, step in enumerate(steps):
        out.update({f"s{i}.{k}": v for k, v in step.items()})
    return out


TEMPLATE = {
    "code": "welcome",
    "name": "Welcome",
    "zh_subject": "欢迎",
    "zh_body": "{{name}}，欢迎加入！您有 {{points}} 积分。",
    "en_subject": "Welcome",
    "en_body": "Welcome {{name}}, you have {{points}} points.",
    "sms_code": "SMS_1",
    "wechat_code": "",
}


def test_templates_journeys_and_their_refusals(client, database, operator):  # noqa: F811
    bad = client.post(
        "/console/messages/templates",
        data={**TEMPLATE, "zh_body": "{{nickname}} 你好", "csrf_token": operator},
    )
    assert bad.status_code == 422 and "nickname" in bad.text
    saved = client.post(
        "/console/messages/templates",
        data={**TEMPLATE, "csrf_token": operator},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    page = client.get(saved.headers["location"])
    assert "王小明，欢迎加入！您有 2,350 积分。" in page.text
    assert "Welcome 王小明, you have 2,350 points." in page.text

    loop = client.post(
        "/console/journeys",
        data={
            "code": "hello",
            "name": "Hello",
            "trigger": "registration",
            **rows(
                {"kind": "send", "template": "welcome"},
                {"kind": "condition", "segment": "vip", "otherwise": "4"},
                {"kind": "wait", "amount": "1", "unit": "days"},
            ),
            "csrf_token": operator,
        },
    )
    assert loop.status_code == 422
    assert "Step 2 goes to step 4, which does not exist." in loop.text
    back = client.post(
        "/console/journeys",
        data={
            "code": "hello",
            "name": "Hello",
            "trigger": "registration",
            **rows({"kind": "send", "template": "welcome"}, {"kind": "condition",
                   "segment": "vip", "otherwise": "1"}),
            "csrf_token": operator,
        },
    )  # fmt: skip
    assert back.status_code == 422
    assert "Step 2 goes back to step 1, which would make a loop" in back.text
    unknown = client.post(
        "/console/journeys",
        data={
            "code": "hello",
            "name": "Hello",
            "trigger": "registration",
            **rows({"kind": "send", "template": "nope"}),
            "csrf_token": operator,
        },
    )
    assert unknown.status_code == 422
    assert "A step names a segment or template that no longer exists" in unknown.text
    unchosen = client.post(
        "/console/journeys",
        data={"code": "hello", "name": "Hello", "trigger": "registration",
              **rows({"kind": "send", "template": "welcome"}, {"kind": ""}),
              "csrf_token": operator},
    )  # fmt: skip
    assert unchosen.status_code == 422 and "Step 2: choose what it does" in unchosen.text
    with database.unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(Journey)) == 0

    # The editor adds a row and shows the inputs of the kind picked; nothing is saved.
    added = client.post(
        "/console/journey-editor",
        data={**rows({"kind": "points", "points": "5"}), "action": "add", "csrf_token": operator},
    )
    assert added.status_code == 200
    assert 'name="s0.points" value="5"' in added.text and 'name="s1.kind"' in added.text
    assert 'name="rows" value="2"' in added.text

    made = client.post(
        "/console/journeys",
        data={
            "code": "hello",
            "name": "Hello",
            "trigger": "registration",
            **rows(
                {"kind": "send", "template": "welcome"},
                {"kind": "wait", "amount": "2", "unit": "days"},
                {"kind": "points", "points": "1000"},
                {"kind": "tag", "tag": "hello-done"},
            ),
            "csrf_token": operator,
        },
        follow_redirects=False,
    )
    assert made.status_code == 303
    detail = client.get("/console/journeys/hello")
    assert "Send message welcome on the member" in detail.text
    assert "Wait 2 days." in detail.text and "Give 1,000 points." in detail.text
    # The saved steps come back as rows with their values picked.
    assert 'name="s1.amount" value="2"' in detail.text
    assert '<option value="welcome" selected>' in detail.text
    with database.unit_of_work() as s:
        stored = s.scalar(select(Journey.steps).where(Journey.code == "hello"))
    assert stored == [
        {"kind": "send", "template": "welcome"},
        {"kind": "wait", "hours": 48},
        {"kind": "points", "points": 1000},
        {"kind": "tag", "tag": "hello-done"},
    ]
    changed = client.post(
        "/console/journeys/hello",
        data={
            "name": "Hello",
            **rows({"kind": "send", "template": "welcome"}, {"kind": "tag", "tag": "v2"}),
            "csrf_token": _csrf(detail.text),
        },
        follow_redirects=False,
    )
    assert changed.status_code == 303
    assert "Version 2" in client.get("/console/journeys").text
    paused = client.post(
        "/console/journeys/hello/pause",
        data={"csrf_token": operator},
        follow_redirects=True,
    )
    assert 'data-testid="journey-status">Paused' in paused.text


def test_dead_letters_can_be_sent_again(client, database, clock, operator, make_member):  # noqa: F811
    client.post("/console/messages/templates", data={**TEMPLATE, "csrf_token": operator})
    no = make_member()
    with database.unit_of_work() as s:
        from patron.members.models import Member

        mid = s.scalar(select(Member.id).where(Member.member_no == no))
        s.add(
            Message(
                member_id=mid,
                template_code="welcome",
                source_kind="campaign",
                source_code="spring",
                dedupe_key="x",
                locale="zh-CN",
                subject="",
                body="hi",
                params={},
                status="dead",
                channel="sms",
                attempts=5,
                deferrals=0,
                next_attempt_at=clock.now(),
                last_error="timeout",
                links=[],
                clicks=0,
                created_at=clock.now(),
                finished_at=clock.now(),
            )
        )
        free = s.scalars(select(Message)).one()
        s.add(  # a batch message written for the occasion has no template
            Message(
                **{c.key: getattr(free, c.key) for c in Message.__table__.columns if c.key != "id"}
                | {"template_code": "", "dedupe_key": "y", "source_kind": "batch"}
            )
        )
    page = client.get("/console/messages/dead")
    assert "The provider did not answer in time." in page.text and no in page.text
    assert re.search(r'data-template="welcome">welcome</td>', page.text)
    assert re.search(r'data-template="">\s*<span class="muted">Free text</span>', page.text)
    zh = client.get("/console/messages/dead", headers={"Accept-Language": "zh-CN"})
    assert re.search(r'data-template="">\s*<span class="muted">自由文本</span>', zh.text)
    report = client.get("/console/messages/report")
    assert "Campaign spring" in report.text
    with database.unit_of_work() as s:
        ids = list(s.scalars(select(Message.id).order_by(Message.id)))
    for msg_id in ids:
        again = client.post(f"/console/messages/dead/{msg_id}/retry", data={"csrf_token": operator})
    assert again.status_code == 200 and "Every message went out." in again.text
    with database.unit_of_work() as s:
        assert set(s.scalars(select(Message.status))) == {"queued"}


def test_the_delivery_report_counts_opened_and_clicked(
    client,
    database,
    clock,
    operator,  # noqa: F811
    make_member,
):
    """A read receipt and a click each count as opened; only the click as clicked."""
    import re

    from patron.members.models import Member

    no = make_member()
    now = clock.now()
    with database.unit_of_work() as s:
        mid = s.scalar(select(Member.id).where(Member.member_no == no))
        for key, status, opened, clicked in (
            ("a", "delivered", now, None),
            ("b", "sent", None, now),
            ("c", "sent", None, None),
        ):
            s.add(
                Message(
                    member_id=mid, template_code="welcome", source_kind="campaign",
                    source_code="autumn", dedupe_key=key, locale="zh-CN", subject="",
                    body="hi", params={}, status=status, channel="sms", attempts=1,
                    deferrals=0, next_attempt_at=now, links=[], clicks=1 if clicked else 0,
                    created_at=now, sent_at=now, opened_at=opened, clicked_at=clicked,
                )
            )  # fmt: skip
    page = client.get("/console/messages/report")
    assert "Opened or clicked" in page.text
    row = re.search(r'<tr data-source="autumn">(.*?)</tr>', page.text, re.S)
    assert row is not None
    cells = re.findall(r"<td>([^<]*)</td>", row.group(1))
    # Sent by, waiting, sent, delivered, opened or clicked, clicked, unsubscribed, not sent, …
    assert cells[1:8] == ["0", "3", "1", "2", "1", "0", "0"]
