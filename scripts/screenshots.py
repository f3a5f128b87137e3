"""Take the screenshots in docs/screenshots/ from a fresh demo database, in Debian's Chromium.

    make screenshots            (or: .venv/bin/python scripts/screenshots.py)

It loads the demo retailer into a temporary SQLite database, serves Patron on a free loopback
port, signs in as the demo admin and clerk, opens a member's portal session, and saves PNGs of
the dashboard, a member's page, the clerk desk and the portal at phone size. Chinese text needs
a CJK font in the system (Debian: `apt-get install -y chromium fonts-noto-cjk`).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"server did not answer at {url}")


def _api(base: str, path: str, token: str) -> Any:
    req = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.load(resp)


def _token(base: str, username: str, password: str) -> str:
    body = json.dumps({"username": username, "password": password}).encode()
    req = urllib.request.Request(
        base + "/api/v1/auth/token", data=body, headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return str(json.load(resp)["access_token"])


def _sign_in(page: Any, username: str, password: str) -> None:
    page.goto("/console/login")
    page.fill("#f-username", username)
    page.fill("#f-password", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/console/**")


def main() -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("Debian's chromium is needed: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    from patron.demo.retail import CATALOGUE
    from patron.demo.seed import demo_password
    from patron.web.pages import MEMBER_COOKIE, issue_member_session

    OUT.mkdir(parents=True, exist_ok=True)
    skus = [f"{code[:3].upper()}-0001" for code in list(CATALOGUE)[:2]]
    work = Path(tempfile.mkdtemp(prefix="patron-shots-"))
    env = {
        **os.environ,
        "PATRON_ENV": "demo",
        "PATRON_DATABASE_URL": f"sqlite:///{work}/demo.db",
        "PATRON_KEY_FILE": str(work / "keys.json"),
        "PATRON_SCHEDULER": "false",
        "PATRON_LOG_LEVEL": "WARNING",
    }
    patron = str(Path(sys.executable).parent / "patron")
    subprocess.run([patron, "demo", "--members", "300"], env=env, check=True)
    port = _free_port()
    server = subprocess.Popen([patron, "serve", "--port", str(port)], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(base + "/health")
        token = _token(base, "admin", demo_password("admin"))
        members = _api(base, "/api/v1/members?limit=50", token)["items"]

        def richness(no: str) -> tuple[bool, bool, int]:
            # a member with tier changes, points and orders makes the most telling pages
            tier = _api(base, f"/api/v1/members/{no}/tier", token)
            points = _api(base, f"/api/v1/members/{no}/points", token)
            changed = len(tier.get("history", [])) > 0
            return (changed, points["available"] > 0, tier["window_growth"])

        member_no = max((m["member_no"] for m in members), key=richness)
        from patron.db import Database
        from patron.members.service import get_member

        db = Database(env["PATRON_DATABASE_URL"])
        with db.unit_of_work() as session:
            member_id = get_member(session, member_no).id
        db.dispose()
        keys = json.loads((work / "keys.json").read_text())
        import base64

        token_key = base64.b64decode(keys["token_key"])
        from datetime import UTC, datetime

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            desk = browser.new_context(
                base_url=base, locale="zh-CN", viewport={"width": 1366, "height": 900}
            )
            page = desk.new_page()
            _sign_in(page, "admin", demo_password("admin"))
            page.goto("/console/")
            page.wait_for_timeout(1500)  # let ECharts finish its entry animation
            page.screenshot(path=str(OUT / "console-dashboard.png"), full_page=True)
            page.goto(f"/console/members/{member_no}")
            page.screenshot(path=str(OUT / "console-member.png"), full_page=True)

            tablet = browser.new_context(
                base_url=base, locale="zh-CN", viewport={"width": 1024, "height": 768}
            )
            clerk = tablet.new_page()
            _sign_in(clerk, "clerk", demo_password("clerk"))
            clerk.goto("/console/desk")
            store = clerk.locator("#f-store_code")
            if store.count():
                store.select_option(index=0)
                clerk.locator("form:has(#f-store_code) button[type=submit]").click()
                clerk.wait_for_load_state("networkidle")
            clerk.fill("#f-q", member_no)
            clerk.press("#f-q", "Enter")
            clerk.wait_for_load_state("networkidle")
            for sku in skus:
                clerk.fill("#f-add", sku)
                clerk.press("#f-add", "Enter")
                clerk.locator(f"tr[data-sku='{sku}']").wait_for()
            clerk.screenshot(path=str(OUT / "console-desk.png"), full_page=True)

            phone = browser.new_context(
                base_url=base,
                locale="zh-CN",
                viewport={"width": 390, "height": 844},
                device_scale_factor=2,
                is_mobile=True,
            )
            session = issue_member_session(member_id, token_key, 60, datetime.now(UTC))
            phone.add_cookies([{"name": MEMBER_COOKIE, "value": session, "url": base + "/portal/"}])
            portal = phone.new_page()
            for name, path in (
                ("home", "/portal/"),
                ("points", "/portal/points"),
                ("checkin", "/portal/checkin"),
            ):
                response = portal.goto(path)
                if response is not None and response.ok:
                    portal.screenshot(path=str(OUT / f"portal-{name}.png"), full_page=True)
            browser.close()
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    print(f"screenshots in {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
