"""Contests in the console (a new contest, the moderation queue, winners) and the portal (an
entry with a photo, the approved entries)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from patron.audit.models import AuditRecord
from patron.campaigns.models import ContestEntry
from patron.mall import images
from tests.mall.test_images import picture
from tests.web.test_config_pages import _csrf, _sign_in
from tests.web.test_portal_pages import portal_sign_in


def test_a_contest_from_the_console_to_the_portal_and_back(
    client, app, database, clock, make_member, tmp_path
):
    app.state.image_store = images.DiskImageStore(tmp_path / "img")
    token = _sign_in(client, database, clock, "operator")
    form = {
        "code": "look",
        "name": "晒单大赛",
        "description": "Show us your look",
        "starts": "2026-03-01",
        "ends": "2026-03-07",
        "points": "300",
        "coupon": "",
        "winners": "1",
        "csrf_token": token,
    }
    bad = client.post("/console/contests", data={**form, "points": "0"})
    assert bad.status_code == 422 and "points or a coupon for each winner" in bad.text
    saved = client.post("/console/contests", data=form, follow_redirects=False)
    assert saved.status_code == 303
    assert "晒单大赛" in client.get("/console/contests").text
    # a member sends an entry with a photo
    make_member("13922225555")
    portal_sign_in(client, app, "13922225555")
    page = client.get("/portal/contests/look")
    assert 'id="entry-form"' in page.text
    member_token = _csrf(page.text)
    refused = client.post(
        "/portal/contests/look",
        data={"csrf_token": member_token, "text": "my look"},
        files={"image": ("x.png", b"not an image", "image/png")},
    )
    assert refused.status_code == 422 and 'data-error-for="form"' in refused.text
    # a photo over the 1 MB cap of ordinary requests reaches the image checks (not a 413)
    big = client.post(
        "/portal/contests/look",
        data={"csrf_token": member_token, "text": "my look"},
        files={"image": ("x.png", b"\0" * 1_500_000, "image/png")},
    )
    assert big.status_code == 422 and 'data-error-for="form"' in big.text
    sent = client.post(
        "/portal/contests/look",
        data={"csrf_token": member_token, "text": "my look"},
        files={"image": ("x.png", picture(300, 200), "image/png")},
    )
    assert sent.status_code == 200 and 'data-my-entry="pending"' in sent.text
    with database.unit_of_work() as s:
        entry = s.scalar(select(ContestEntry))
        assert entry.image_key.startswith("ugc/look-")
        entry_id = entry.id
    image = f"/portal/contests/look/entries/{entry_id}/image/large"
    assert client.get(image).status_code == 200  # the member sees their own photo
    make_member("13922226666")
    portal_sign_in(client, app, "13922226666")
    assert client.get(image).status_code == 404  # not another member, while it waits for review
    # the operator (still signed in to the console) approves it with a note, then chooses the
    # winner after the close
    queue = client.get("/console/contests/look").text
    assert f'data-entry="{entry_id}"' in queue and "my look" in queue
    done = client.post(
        f"/console/contests/look/entries/{entry_id}",
        data={"decision": "approve", "note": "nice", "csrf_token": token},
    )
    assert done.status_code == 200 and "No entry is waiting for review." in done.text
    early = client.post(
        "/console/contests/look/winners", data={"entry": entry_id, "csrf_token": token}
    )
    assert early.status_code == 409 and "after the contest has closed" in early.text
    clock.advance(timedelta(days=10))
    token = _sign_in(client, database, clock, "admin")  # the console session has gone idle
    won = client.post(
        "/console/contests/look/winners", data={"entry": entry_id, "csrf_token": token}
    )
    assert won.status_code == 200 and "data-winner" in won.text
    with database.unit_of_work() as s:
        actions = set(
            s.scalars(select(AuditRecord.action).where(AuditRecord.entity_type == "ugc_entry"))
        )
        assert actions == {"ugc_entry.approve", "ugc_entry.win"}
    portal_sign_in(client, app, "13922225555")
    shown = client.get("/portal/contests/look").text
    assert f'data-entry="{entry_id}"' in shown and 'data-my-entry="approved"' in shown
    portal_sign_in(client, app, "13922226666")
    assert client.get(image).status_code == 200  # approved: every member may see it
