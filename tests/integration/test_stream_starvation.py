"""Issue 10, finding 9: /agent/events streams cannot starve the API under the documented
process model (granian's WSGI blocking threads since issue 14; gunicorn gthread before).

A real server with one process of 4 threads (the README's model, scaled down) serves
the test database: granian and gunicorn gthread, each holds a thread per open stream.
Streams are capped per user (429) and per process (503), so with the
caps reached a thread is still free: /healthz and a lookup answer at once.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import pytest
import requests
from django.conf import settings
from django.db import connection
from django.middleware.csrf import _get_new_csrf_string
from django.test import Client

from tests.factories import CustomerFactory, IdentityFactory, UserFactory

ROOT = Path(__file__).resolve().parents[2]
THREADS = 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _command(server: str, port: int) -> list[str]:
    """One process, THREADS threads: granian (the README's server) or gunicorn gthread."""
    if server == "granian":
        return [str(Path(sys.executable).with_name("granian")), "--interface", "wsgi", "crm.wsgi:application",
                "--workers", "1", "--blocking-threads", str(THREADS), "--host", "127.0.0.1", "--port", str(port),
                "--log-level", "warning", "--workers-kill-timeout", "2"]  # fmt: skip
    return [sys.executable, "-m", "gunicorn", "crm.wsgi", "-k", "gthread", "-w", "1", "--threads", str(THREADS),
            "-b", f"127.0.0.1:{port}", "--log-level", "warning", "--graceful-timeout", "1"]  # fmt: skip


@pytest.fixture(params=["granian", "gunicorn-gthread"])
def gunicorn(request, transactional_db):
    port = _free_port()
    url = urlparse(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/goldfish"))
    env = {
        **os.environ,
        "DATABASE_URL": urlunparse(url._replace(path="/" + connection.settings_dict["NAME"])),
        "REDIS_URL": settings.REDIS_URL or "",
        "DEBUG": "false",
        "CRM_HTTPS": "false",
        "SECRET_KEY": settings.SECRET_KEY,
        "ALLOWED_HOSTS": "127.0.0.1",
        "CRM_MAX_STREAMS_PER_USER": "2",
        "CRM_MAX_STREAMS_PER_PROCESS": str(THREADS - 1),
        "DJANGO_SETTINGS_MODULE": "crm.settings",
    }
    server = subprocess.Popen(_command(request.param, port), cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(f"{base}/healthz", timeout=5).status_code == 200:
                break
        except (requests.ConnectionError, requests.Timeout):
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            server.kill()
            pytest.fail(f"{request.param} did not start")
        time.sleep(0.2)
    yield base
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def _session(user) -> requests.Session:
    """A browser logged in as `user` (session cookie + CSRF pair), as the agent page is."""
    client = Client()
    client.force_login(user)
    browser = requests.Session()
    csrf = _get_new_csrf_string()
    browser.cookies.set(settings.SESSION_COOKIE_NAME, client.cookies[settings.SESSION_COOKIE_NAME].value)
    browser.cookies.set(settings.CSRF_COOKIE_NAME, csrf)
    browser.headers["X-CSRFToken"] = csrf
    return browser


def test_with_the_stream_caps_reached_health_and_lookups_still_answer(gunicorn):
    alice = UserFactory(username="alice", role="agent")
    sam = UserFactory(username="sam", role="supervisor", is_staff=True)
    customer = CustomerFactory(display_name="James Okafor")
    IdentityFactory(customer=customer, kind="phone", value="+12125550100", normalized="+12125550100")
    alice_page, sam_page = _session(alice), _session(sam)
    held = []
    try:
        for _ in range(2):
            held.append(alice_page.get(f"{gunicorn}/agent/events", stream=True, timeout=5))
        assert [r.status_code for r in held] == [200, 200]
        third = alice_page.get(f"{gunicorn}/agent/events", stream=True, timeout=5)
        assert third.status_code == 429, third.text  # per user
        held.append(sam_page.get(f"{gunicorn}/agent/events", stream=True, timeout=5))
        assert held[-1].status_code == 200
        fourth = sam_page.get(f"{gunicorn}/agent/events", stream=True, timeout=5)
        assert fourth.status_code == 503 and fourth.headers["Retry-After"]  # per process: a thread stays free

        started = time.monotonic()
        health = requests.get(f"{gunicorn}/healthz", timeout=5)
        lookup = alice_page.post(f"{gunicorn}/api/v1/context/lookup", json={"phone": "+1 212 555 0100"}, timeout=5)
        took = time.monotonic() - started

        assert health.status_code == 200
        assert lookup.status_code == 200, lookup.text
        assert lookup.json()["customer"]["display_name"] == "James Okafor"
        assert took < 3
    finally:
        for response in held:
            response.close()
