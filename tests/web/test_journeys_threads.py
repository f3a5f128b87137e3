"""The console's journey pages read the posted form on the event loop and run the synchronous
services in a worker thread (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.web.test_config_pages import operator  # noqa: F401 - the fixture
from tests.web.test_journeys_pages import TEMPLATE, rows


def test_journey_saves_run_their_service_calls_off_the_event_loop(
    client,
    operator,  # noqa: F811
    monkeypatch,
):
    """The form is read on the event loop; the synchronous services (database work) run in a
    worker thread, where no event loop runs, so a slow save does not stall other requests."""
    from patron.journeys import service as journeys

    on_loop: list[tuple[str, bool]] = []

    def spy(name: str) -> Any:
        real = getattr(journeys, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                asyncio.get_running_loop()
                on_loop.append((name, True))
            except RuntimeError:
                on_loop.append((name, False))
            return real(*args, **kwargs)

        return call

    for name in ("create", "change", "list_journeys"):
        monkeypatch.setattr(journeys, name, spy(name))
    client.post("/console/messages/templates", data={**TEMPLATE, "csrf_token": operator})
    steps = rows({"kind": "send", "template": "welcome"})
    form = {"code": "t1", "name": "T", "trigger": "registration", **steps}
    made = client.post(
        "/console/journeys", data={**form, "csrf_token": operator}, follow_redirects=False
    )
    assert made.status_code == 303
    changed = client.post(
        "/console/journeys/t1",
        data={"name": "T2", **steps, "csrf_token": operator},
        follow_redirects=False,
    )
    assert changed.status_code == 303
    editor = client.post(
        "/console/journey-editor", data={**steps, "action": "add", "csrf_token": operator}
    )
    assert editor.status_code == 200  # the editor's page lists the journeys
    assert {name for name, _ in on_loop} == {"create", "change", "list_journeys"}
    assert not any(loop for _, loop in on_loop), on_loop
