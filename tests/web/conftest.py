"""Browser tests: a real Patron server on a loopback port (SQLite, frozen clock) and Debian's
Chromium driven by Playwright. Without Chromium these tests skip, unless
PATRON_REQUIRE_BROWSER=1 (CI) makes that a failure."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from patron.app import create_app
from patron.auth import service as auth_service
from patron.auth.principal import Principal
from patron.kit.clock import FrozenClock
from tests.conftest import START, TestDatabase, _sqlite_db, make_settings

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "browser-test-pass-1"


@dataclass
class LiveServer:
    url: str
    db: TestDatabase
    clock: FrozenClock
    app: Any
    users: dict[str, str] = field(default_factory=dict)

    def staff(self, role: str, *, name: str | None = None) -> str:
        """Create a staff user with ``role``; returns the username (password: PASSWORD)."""
        username = f"{role}-{uuid.uuid4().hex[:6]}"
        with self.db.unit_of_work() as session:
            auth_service.create_staff(
                session,
                Principal.system("tests"),
                username=username,
                display_name=name or role.title(),
                role=role,
                password=PASSWORD,
                now=self.clock.now(),
            )
        return username


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture
def live(sqlite_template: Path, tmp_path: Path) -> Iterator[LiveServer]:
    db = _sqlite_db(sqlite_template, tmp_path / "live.db")
    clock = FrozenClock(START)
    app = create_app(make_settings(db), db, clock)
    sock = _free_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    yield LiveServer(f"http://127.0.0.1:{port}", db, clock, app)
    server.should_exit = True
    thread.join(10)
    sock.close()
    db.dispose()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    exe = shutil.which("chromium")
    if exe is None:
        if os.environ.get("PATRON_REQUIRE_BROWSER") == "1":
            pytest.fail("PATRON_REQUIRE_BROWSER=1 but chromium is not installed")
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


CSP_VIOLATIONS: list[str] = []


def _context(browser: Any, live: LiveServer, **options: Any) -> Any:
    ctx = browser.new_context(base_url=live.url, locale="en-US", **options)
    # Generous: a waiting step returns as soon as its condition holds, and a busy two-core
    # machine (two test workers, each with its server and browser) can take seconds per page.
    ctx.set_default_timeout(30_000)
    # Every page of every browser test also checks that the Content-Security-Policy refused
    # nothing the page needs (Chromium reports each refusal on the console).
    ctx.on(
        "console",
        lambda msg: (
            CSP_VIOLATIONS.append(msg.text) if "Content Security Policy" in msg.text else None
        ),
    )
    return ctx


@pytest.fixture(autouse=True)
def _no_csp_violations() -> Iterator[None]:
    CSP_VIOLATIONS.clear()
    yield
    assert not CSP_VIOLATIONS, CSP_VIOLATIONS


@pytest.fixture
def page(browser: Any, live: LiveServer) -> Iterator[Any]:
    """A desktop-sized page in a fresh browser context (its own cookies)."""
    ctx = _context(browser, live, viewport={"width": 1366, "height": 900})
    yield ctx.new_page()
    ctx.close()


@pytest.fixture
def new_page(browser: Any, live: LiveServer) -> Iterator[Any]:
    """``new_page(**context_options)`` → another page with its own cookies (e.g. a phone)."""
    made: list[Any] = []

    def make(**options: Any) -> Any:
        ctx = _context(browser, live, **options)
        made.append(ctx)
        return ctx.new_page()

    yield make
    for ctx in made:
        ctx.close()


def sign_in(page: Any, username: str, password: str = PASSWORD) -> None:
    page.goto("/console/login")
    page.fill("#f-username", username)
    page.fill("#f-password", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/console/**")
