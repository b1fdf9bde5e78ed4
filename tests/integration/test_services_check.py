"""`make test`'s front door lets the suite through when its PostgreSQL and Redis answer."""

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse, urlunparse

from django.conf import settings

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "services_check.py"


def test_the_suites_own_services_pass_the_check_silently():
    # given the PostgreSQL and Redis this run uses
    assert settings.REDIS_URL, "set REDIS_URL (make test does)"
    env = {**os.environ, "GOLDFISH_NO_INSTALL": "1"}
    # when
    result = subprocess.run([sys.executable, SCRIPT], env=env, capture_output=True, text=True, timeout=30)
    # then
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_a_role_that_does_not_exist_is_named_in_the_paragraph():
    parsed = urlparse(os.environ["DATABASE_URL"])
    url = urlunparse(parsed._replace(netloc=f"no_such_role_9d@{parsed.hostname}:{parsed.port or 5432}"))
    env = {**os.environ, "DATABASE_URL": url, "GOLDFISH_NO_INSTALL": "1"}
    result = subprocess.run([sys.executable, SCRIPT], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert 'role "no_such_role_9d" does not exist' in result.stderr
