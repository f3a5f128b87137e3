"""UGC contests through the REST API: contests, a mini-program's entries with a photo,
moderation, winners rewarded once, events, scopes and idempotency; bad input answers a 4xx
with its code and writes nothing (rows, events, postings, audit records, stored photos)."""

# ruff: noqa: E501 - the tables of bad requests read best one case a line
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from patron.audit.models import AuditRecord
from patron.campaigns import contests
from patron.campaigns.models import Contest, ContestEntry
from patron.checks import run_all
from patron.ledger.models import PointsPosting
from patron.mall import images
from patron.webhooks.models import WebhookEvent
from tests.mall.test_images import picture
from tests.statements import count_statements

API = "/api/v1/contests"
START = datetime(2026, 3, 1, tzinfo=UTC)
END = START + timedelta(days=7)
ALL = ("campaigns:read", "contests:manage", "contests:enter")


def _body(**over):
    body = {
        "name": "晒单大赛",
        "description": "Show us your look",
        "starts_at": START.isoformat(),
        "ends_at": END.isoformat(),
        "reward_points": 300,
        "max_winners": 1,
    }
    body.update(over)
    return body


@pytest.fixture
def photos(app, tmp_path):
    folder = tmp_path / "img"
    app.state.image_store = images.DiskImageStore(folder)
    return lambda: sorted(p.name for p in folder.rglob("*.webp")) if folder.exists() else []


@pytest.fixture
def key(api_key_headers):
    return api_key_headers(*ALL)


def _enter(client, h, no, text="my look", photo=None, code="look", ctype="image/png"):
    files = {"image": ("look.png", photo, ctype)} if photo is not None else None
    return client.post(
        f"{API}/{code}/entries", data={"member_no": no, "text": text}, files=files, headers=h
    )


def _counts(database):
    with database.unit_of_work() as s:
        return tuple(
            s.scalar(select(func.count()).select_from(t))
            for t in (Contest, ContestEntry, WebhookEvent, PointsPosting, AuditRecord)
        )


def test_a_contest_from_entries_to_winners(client, database, clock, key, make_member, photos):
    clock.set(START - timedelta(days=1))
    made = client.put(f"{API}/look", json=_body(), headers=key)
    assert made.status_code == 200, made.text
    assert (made.json()["state"], made.json()["pending"]) == ("upcoming", 0)
    clock.set(START + timedelta(days=1))
    a, b = make_member(), make_member()
    first = _enter(client, key, a, photo=picture(640, 480))
    assert first.status_code == 201, first.text
    entry = first.json()
    assert (entry["member_no"], entry["status"], entry["winner"]) == (a, "pending", False)
    assert set(entry["image_urls"]) == {"large", "thumb"} and len(photos()) == 2
    img = client.get(entry["image_urls"]["thumb"], headers=key)
    assert (img.status_code, img.headers["content-type"]) == (200, images.CONTENT_TYPE)
    second = _enter(client, key, b, text="no photo")
    assert second.status_code == 201 and second.json()["image_urls"] == {}
    listed = client.get(API, headers=key).json()["items"]
    assert [(c["code"], c["state"], c["pending"]) for c in listed] == [("look", "open", 2)]
    # moderation: once each, with its note
    url = f"{API}/look/entries"
    ok = client.post(f"{url}/{entry['id']}/moderation", json={"decision": "approve"}, headers=key)
    assert ok.status_code == 200 and ok.json()["status"] == "approved"
    no = {"decision": "reject", "note": "off topic"}
    rej = client.post(f"{url}/{second.json()['id']}/moderation", json=no, headers=key)
    assert (rej.json()["status"], rej.json()["note"]) == ("rejected", "off topic")
    again = client.post(f"{url}/{entry['id']}/moderation", json=no, headers=key)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "entry_already_moderated")
    approved = client.get(url, params={"status": "approved"}, headers=key).json()["items"]
    assert [e["id"] for e in approved] == [entry["id"]]
    early = client.post(f"{API}/look/winners", json={"entry_ids": [entry["id"]]}, headers=key)
    assert (early.status_code, early.json()["error"]["code"]) == (409, "contest_still_open")
    # winners after the close, rewarded exactly once (a replay of the key, then a new call)
    clock.set(END)
    win = {"entry_ids": [entry["id"]]}
    h = {**key, "Idempotency-Key": "win-1"}
    won = client.post(f"{API}/look/winners", json=win, headers=h)
    assert won.status_code == 200 and won.json() == {"chosen": [entry["id"]], "already": []}
    replay = client.post(f"{API}/look/winners", json=win, headers=h)
    assert replay.headers.get("Idempotent-Replayed") == "true" and replay.json() == won.json()
    twice = client.post(f"{API}/look/winners", json=win, headers=key)
    assert twice.json() == {"chosen": [], "already": [entry["id"]]}
    got = client.get(f"{API}/look", headers=key).json()
    assert (got["state"], got["winners"], got["approved"]) == ("closed", 1, 1)
    with database.unit_of_work() as s:
        kinds = s.scalars(
            select(WebhookEvent.event_type)
            .where(WebhookEvent.event_type.like("contest.%"))
            .order_by(WebhookEvent.id)
        ).all()
        assert kinds == [
            "contest.changed",
            "contest.entry_submitted",
            "contest.entry_submitted",
            "contest.entry_moderated",
            "contest.entry_moderated",
            "contest.winner_rewarded",
        ]
        [rewarded] = s.scalars(
            select(WebhookEvent).where(WebhookEvent.event_type == "contest.winner_rewarded")
        ).all()
        assert (rewarded.member_no, rewarded.payload["points"]) == (a, 300)
        points = s.scalars(
            select(PointsPosting.available_delta).where(PointsPosting.source_type == "ugc_contest")
        ).all()
        assert points == [300]
        assert run_all(s) == []


def test_bad_input_answers_its_code_and_writes_nothing(
    client, database, clock, key, api_key_headers, make_member, photos
):
    clock.set(START + timedelta(days=1))
    assert client.put(f"{API}/look", json=_body(), headers=key).status_code == 200
    other = _body(starts_at=(END + timedelta(days=1)).isoformat(), ends_at="2026-04-01T00:00Z")
    assert client.put(f"{API}/later", json=other, headers=key).status_code == 200
    a, b = make_member(), make_member()
    entry = _enter(client, key, a).json()["id"]
    _enter(client, key, b)
    ok = client.post(f"{API}/look/entries/{entry}/moderation", json={"decision": "approve"})
    assert ok.status_code == 401  # no key: nothing decided
    c = make_member()
    reader = api_key_headers("campaigns:read")
    enterer = api_key_headers("contests:enter")
    before = _counts(database)
    mod = f"{API}/look/entries/{entry}/moderation"
    cases = [
        (client.put(f"{API}/look", json=_body(ends_at=START.isoformat()), headers=key), 422, "invalid_contest"),
        (client.put(f"{API}/look", json=_body(ends_at="2026-03-09T00:00"), headers=key), 422, "validation_error"),
        (client.put(f"{API}/look", json=_body(reward_coupon="NOPE"), headers=key), 404, "coupon_template_not_found"),
        (client.put(f"{API}/look", json=_body(extra=1), headers=key), 422, "validation_error"),
        (client.put(f"{API}/Bad!", json=_body(), headers=key), 422, "validation_error"),
        (client.put(f"{API}/look", json=_body(), headers=reader), 403, "forbidden"),
        (client.get(f"{API}/nope", headers=key), 404, "contest_not_found"),
        (client.get(f"{API}/look/entries", params={"status": "won"}, headers=key), 422, "validation_error"),
        (_enter(client, key, "0000000000"), 404, "member_not_found"),
        (_enter(client, key, a), 409, "entry_exists"),
        (_enter(client, key, c, code="later"), 409, "contest_not_open"),
        (_enter(client, key, c, code="nope"), 404, "contest_not_found"),
        (_enter(client, key, c, text="   "), 422, "invalid_entry"),
        (_enter(client, key, c, text=""), 422, "validation_error"),
        (_enter(client, key, c, photo=b"hello", ctype="text/plain"), 422, "image_content_type"),
        (_enter(client, key, c, photo=b"not a picture"), 422, "image_type"),
        (_enter(client, key, c, photo=picture(20, 20)), 422, "image_dimensions"),
        (_enter(client, reader, c), 403, "forbidden"),
        (client.post(mod, json={"decision": "maybe"}, headers=key), 422, "validation_error"),
        (client.post(mod, json={"decision": "approve", "note": "x" * 501}, headers=key), 422, "validation_error"),
        (client.post(mod, json={"decision": "approve"}, headers=enterer), 403, "forbidden"),
        (client.post(f"{API}/look/entries/99999/moderation", json={"decision": "approve"}, headers=key), 404, "entry_not_found"),
        (client.post(f"{API}/later/entries/{entry}/moderation", json={"decision": "approve"}, headers=key), 404, "entry_not_found"),
        (client.post(f"{API}/look/entries/0/moderation", json={"decision": "approve"}, headers=key), 422, "validation_error"),
        (client.post(f"{API}/look/winners", json={"entry_ids": []}, headers=key), 422, "validation_error"),
        (client.post(f"{API}/look/winners", json={"entry_ids": [0]}, headers=key), 422, "validation_error"),
        (client.get(f"{API}/look/entries/{entry}/image/large", headers=key), 404, "image_not_found"),
    ]  # fmt: skip
    for resp, status, code in cases:
        assert (resp.status_code, resp.json()["error"]["code"]) == (status, code), resp.text
    assert _counts(database) == before and photos() == []
    # after the close: only approved entries win, and no more than the places
    clock.set(END)
    rows = client.get(f"{API}/look/entries", headers=key).json()["items"]
    b_entry = next(e["id"] for e in rows if e["member_no"] == b)
    closed = [
        (client.post(f"{API}/look/winners", json={"entry_ids": [b_entry]}, headers=key), 422, "entry_not_approved"),
        (client.post(f"{API}/look/winners", json={"entry_ids": [99999]}, headers=key), 422, "entry_not_approved"),
        (_enter(client, key, c), 409, "contest_not_open"),
    ]  # fmt: skip
    for resp, status, code in closed:
        assert (resp.status_code, resp.json()["error"]["code"]) == (status, code), resp.text
    assert _counts(database) == before


def test_no_more_winners_than_places(client, database, clock, key, make_member):
    clock.set(START)
    assert client.put(f"{API}/look", json=_body(), headers=key).status_code == 200
    ids = []
    for _ in range(2):
        ids.append(_enter(client, key, make_member()).json()["id"])
        mod = f"{API}/look/entries/{ids[-1]}/moderation"
        assert client.post(mod, json={"decision": "approve"}, headers=key).status_code == 200
    clock.set(END)
    before = _counts(database)
    full = client.post(f"{API}/look/winners", json={"entry_ids": ids}, headers=key)
    assert (full.status_code, full.json()["error"]["code"]) == (409, "too_many_winners")
    assert _counts(database) == before


#: an entry sent through the API: the key (twice), the member, the settings, the contest, the
#: member's entry, the INSERT, its event and the webhook subscriptions (SQLite also counts its
#: BEGIN IMMEDIATE).
SUBMIT_BUDGET = {"sqlite": 10, "postgresql": 9}


def test_submit_statement_budget(client, database, clock, key, make_member):
    clock.set(START)
    assert client.put(f"{API}/look", json=_body(), headers=key).status_code == 200
    warm, no = make_member(), make_member()
    assert _enter(client, key, warm).status_code == 201
    with count_statements(database.engine) as log:
        r = _enter(client, key, no)
    assert r.status_code == 201, r.text
    assert log.count <= SUBMIT_BUDGET[database.dialect], log.report()


def test_an_entry_sent_twice_at_once_is_refused_once(
    client, database, clock, key, make_member, monkeypatch
):
    """Two requests of one member both pass the read before either INSERT: the unique key
    decides, and the loser gets a 409, not a 500 (the race is injected, not timed)."""
    clock.set(START)
    assert client.put(f"{API}/look", json=_body(), headers=key).status_code == 200
    no = make_member()
    assert _enter(client, key, no).status_code == 201
    before = _counts(database)
    monkeypatch.setattr(contests, "_entered", lambda *_: False)  # the other request's read
    again = _enter(client, key, no, text="again")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "entry_exists")
    assert _counts(database) == before


def test_a_contest_created_twice_at_once_is_refused_once(client, database, clock, key, monkeypatch):
    """Two requests creating one code both find no row to lock: the unique key decides, and the
    loser gets a 409 it can retry, not a 500 (the race is injected, not timed)."""
    clock.set(START)
    assert client.put(f"{API}/look", json=_body(), headers=key).status_code == 200
    before = _counts(database)
    monkeypatch.setattr(contests, "_locked", lambda *_: None)  # the other request's read
    again = client.put(f"{API}/look", json=_body(), headers=key)
    assert again.status_code == 409, again.text
    assert again.json()["error"]["code"] == "contest_created_meanwhile"
    assert _counts(database) == before
