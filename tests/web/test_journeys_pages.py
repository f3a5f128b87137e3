"""Journey and messaging console pages without a browser (SQLite and PostgreSQL): templates
with a preview, a journey written one step a line and shown as sentences, loops refused with
422, pause and resume, the delivery report and the dead letters with retry."""

from __future__ import annotations

from sqlalchemy import func, select

from patron.journeys.models import Journey
from patron.messaging.models import Message
from tests.web.test_config_pages import _csrf, operator  # noqa: F401 - the fixture

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
            "steps": "send welcome\nwait 1 day\nif in segment vip else go to step 1",
            "csrf_token": operator,
        },
    )
    assert loop.status_code == 422 and "loop" in loop.text
    unknown = client.post(
        "/console/journeys",
        data={
            "code": "hello",
            "name": "Hello",
            "trigger": "registration",
            "steps": "send nope",
            "csrf_token": operator,
        },
    )
    assert unknown.status_code == 422 and "nope" in unknown.text
    with database.unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(Journey)) == 0

    made = client.post(
        "/console/journeys",
        data={
            "code": "hello",
            "name": "Hello",
            "trigger": "registration",
            "steps": "send welcome\nwait 2 days\npoints 1000\ntag hello-done",
            "csrf_token": operator,
        },
        follow_redirects=False,
    )
    assert made.status_code == 303
    detail = client.get("/console/journeys/hello")
    assert "Send message welcome on the member" in detail.text
    assert "Wait 2 days." in detail.text and "Give 1,000 points." in detail.text
    changed = client.post(
        "/console/journeys/hello",
        data={"name": "Hello", "steps": "send welcome\ntag v2", "csrf_token": _csrf(detail.text)},
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
    page = client.get("/console/messages/dead")
    assert "The provider did not answer in time." in page.text and no in page.text
    report = client.get("/console/messages/report")
    assert "Campaign spring" in report.text
    with database.unit_of_work() as s:
        msg_id = s.scalar(select(Message.id))
    again = client.post(f"/console/messages/dead/{msg_id}/retry", data={"csrf_token": operator})
    assert again.status_code == 200 and "Every message went out." in again.text
    with database.unit_of_work() as s:
        assert s.scalar(select(Message.status)) == "queued"
