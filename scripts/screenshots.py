"""make screenshots: the pages as people see them, written to docs/screens/ so the README's pictures stay true.

Runs on the embedded defaults, touching nothing shared: a throwaway SQLite database
in a temporary folder with the demo data (`seed_demo`), `manage.py runserver` on a
free loopback port, headless Chromium (/usr/bin/chromium). One function per page group
takes the running server and the browser and writes its PNGs; add a group by adding a
function to GROUPS (issue 13 adds the admin's).

    .venv/bin/python scripts/screenshots.py            # every group
    .venv/bin/python scripts/screenshots.py agent      # one group
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Browser, Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screens"
PYTHON = sys.executable
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
PASSWORD = "goldfish-demo"  # noqa: S105 - seed_demo's published password for every demo login
# The sizes the agent page must work at: a desktop, a 1024x700 laptop, a 480 px CRM side panel.
SIZES = {"1400": (1400, 1000), "1024": (1024, 700), "480": (480, 900)}
PRINT_CTI_KEY = (
    "from django.contrib.auth import get_user_model; from crm import tokens; "
    "print(tokens.issue(get_user_model().objects.get(username='cti'))[0])"
)


@dataclass
class Server:
    url: str
    cti_token: str

    def post(self, path: str, body: dict, token: str | None = None) -> dict:
        request = urllib.request.Request(  # noqa: S310 - our own server on loopback
            self.url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Token {token or self.cti_token}"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            return json.loads(response.read() or b"{}")

    def call(self, **body) -> dict:
        """A call event, as the telephony connector sends it."""
        return self.post("/api/v1/calls", {"channel": "phone", **body})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def demo_server():
    """migrate + seed_demo into a temporary SQLite database, then runserver; stopped on exit."""
    with tempfile.TemporaryDirectory(prefix="goldfish-shots-") as tmp:
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{tmp}/demo.sqlite3",
            "REDIS_URL": "",
            "DEBUG": "true",
            "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        }
        manage = [PYTHON, str(ROOT / "manage.py")]
        subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], env=env, check=True, cwd=ROOT)  # noqa: S603
        subprocess.run([*manage, "seed_demo"], env=env, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)  # noqa: S603
        token = subprocess.run(  # noqa: S603 - our own manage.py
            [*manage, "shell", "-c", PRINT_CTI_KEY], env=env, check=True, cwd=ROOT, capture_output=True, text=True
        ).stdout.split()[-1]  # the last word: `shell` may print a line of its own first
        port = _free_port()
        server = subprocess.Popen(  # noqa: S603 - our own manage.py
            [*manage, "runserver", "--noreload", f"127.0.0.1:{port}"],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(url + "/healthz", timeout=1).close()  # noqa: S310 - loopback
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise RuntimeError("the demo server did not start") from None
                    time.sleep(0.3)
            yield Server(url=url, cti_token=token)
        finally:
            server.terminate()
            server.wait(timeout=10)


def login(browser: Browser, server: Server, username: str, size: tuple[int, int], path: str) -> Page:
    context = browser.new_context(viewport={"width": size[0], "height": size[1]})
    page = context.new_page()
    page.goto(f"{server.url}{path}")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.keyboard.press("Enter")
    return page


def save(page: Page, name: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUT / f"{name}.png"))
    print(f"docs/screens/{name}.png")


# --- page groups -------------------------------------------------------------------------------


def agent_screens(server: Server, browser: Browser) -> None:
    """/agent/ at the three sizes: ready, a call popped, a second call waiting during the wrap-up."""
    for n, (label, size) in enumerate(SIZES.items()):
        page = login(browser, server, "jane", size, "/agent/")
        expect(page.locator("#status")).to_have_text("Ready for a contact", timeout=10_000)
        save(page, f"agent-ready-{label}")
        server.call(
            event="connected", agent="jane", phone="+1 212 555 0136", call_id=f"shot-{n}",
            verified=["phone"], ivr={"intent": "billing"},
        )  # fmt: skip
        expect(page.locator("#c-ids")).to_be_visible(timeout=10_000)
        save(page, f"agent-call-{label}")
        page.select_option("#wrap-outcome", "resolved")
        page.fill("#wrap-summary", "Explained the new tariff; refund on the next bill.")
        server.call(event="ringing", agent="jane", phone="+1 212 555 0000", call_id=f"shot-next-{n}")
        expect(page.locator("#queued")).to_be_visible(timeout=10_000)
        page.wait_for_timeout(2500)  # the banner's flash has settled
        save(page, f"agent-wrap-up-call-waiting-{label}")
        # Finish the desk so the next size starts ready: save, take the waiting call, let it go.
        page.select_option("#wrap-reason", "billing")
        page.click("#wrap-save")
        expect(page.locator("#wrap-msg")).to_contain_text("Saved")
        page.click("#done")
        expect(page.locator("#c-candidates")).to_be_visible()
        if label == "1400":
            save(page, "agent-household-1400")
        with page.expect_response(lambda r: r.url.endswith("/agent/dismiss")):
            page.click("#done")
        page.context.close()


GROUPS: dict[str, Callable[[Server, Browser], None]] = {
    "agent": agent_screens,
}


def main(names: list[str]) -> None:
    chosen = names or list(GROUPS)
    unknown = [n for n in chosen if n not in GROUPS]
    if unknown:
        raise SystemExit(f"unknown group(s) {unknown}; known: {sorted(GROUPS)}")
    with demo_server() as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            for name in chosen:
                GROUPS[name](server, browser)
        finally:
            browser.close()


if __name__ == "__main__":
    main(sys.argv[1:])
