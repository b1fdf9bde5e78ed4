"""`make test`'s front door: without PostgreSQL and Redis, one paragraph in about a second, not a flood."""

import os
import subprocess
import sys
import time
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "services_check.py"


def run_check(database_url: str, redis_url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "GOLDFISH_NO_INSTALL": "1"}
    return subprocess.run([sys.executable, SCRIPT], env=env, capture_output=True, text=True, timeout=30)


def test_missing_services_stop_make_test_with_one_paragraph_naming_what_to_set():
    # given nothing listens on these ports, and installing is switched off
    started = time.monotonic()
    result = run_check("postgres://postgres@127.0.0.1:5999/x", "redis://127.0.0.1:6399/5")
    # then
    assert time.monotonic() - started < 5
    assert result.returncode == 1
    paragraph = result.stderr.strip()
    assert "\n" not in paragraph
    for named in ("DATABASE_URL=postgres://postgres@127.0.0.1:5999/x", "REDIS_URL=redis://127.0.0.1:6399/5"):
        assert named in paragraph
    assert "make test-sqlite" in paragraph
    assert "GOLDFISH_NO_INSTALL=1" in paragraph


def test_urls_of_the_wrong_kind_are_named():
    result = run_check("sqlite:///x.db", "memcached://127.0.0.1:11211")
    assert result.returncode == 1
    assert "DATABASE_URL is not a postgres:// URL" in result.stderr
    assert "REDIS_URL is not a redis:// URL" in result.stderr
