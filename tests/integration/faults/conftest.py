"""Fault tests (issue 11): each starts its own Redis, SMTP server and Celery workers, and stops only those.

The workers share the test database (pytest-django's test_<name>, committed data:
transactional tests) with the test process, which submits feedback and checks
what was stored and what the SMTP server received.
"""

from __future__ import annotations

import os
from urllib.parse import urlparse, urlunparse

import pytest
from django.db import connection
from django.utils import timezone

from bench.faultkit import RedisServer, SlowSmtpServer
from crm import outbox
from crm.models import Preference, StaffProfile, Team
from tests.factories import CustomerFactory, IdentityFactory, UserFactory

# Short delays so a test sees recovery within seconds; production defaults are in crm/settings.py.
FAST_RECOVERY = {
    "CRM_EMAIL_LEASE_SECONDS": "3",
    "CRM_OUTBOX_RESEND_SECONDS": "3",
    "CRM_SWEEP_SECONDS": "1",
    "CRM_FEEDBACK_THROTTLE": "",
}


def install_roles_and_reasons() -> None:
    """What migration 0002 installs; transactional tests flush it away after each test."""
    from django.apps import apps as django_apps

    __import__("crm.migrations.0002_roles_and_reasons", fromlist=["install"]).install(django_apps, None)


@pytest.fixture
def worker_env(transactional_db, smtp, redis) -> dict[str, str]:
    """A worker on the test database, this test's Redis and SMTP server, with fast recovery."""
    if connection.vendor != "postgresql":
        pytest.fail("The fault tests need PostgreSQL (DATABASE_URL): the workers share the test database.")
    parsed = urlparse(os.environ["DATABASE_URL"])
    database_url = urlunparse(parsed._replace(path="/" + connection.settings_dict["NAME"]))
    outbox.broker_breaker.reset()
    return {**smtp.env(), **FAST_RECOVERY, "DATABASE_URL": database_url, "REDIS_URL": redis.url()}


@pytest.fixture
def smtp(request):
    server = SlowSmtpServer(delay=getattr(request, "param", 0.0)).start()
    yield server
    server.stop()


@pytest.fixture
def redis(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def floor(transactional_db):
    """Sofia supervises North, where Jane works; customers who agreed to be e-mailed are made by `customer()`."""
    install_roles_and_reasons()
    sofia = UserFactory(username="sofia", first_name="Sofia", role="supervisor", is_staff=True)
    north = Team.objects.create(name="North", supervisor=sofia)
    jane = UserFactory(username="jane", first_name="Jane", last_name="Doyle", role="agent")
    StaffProfile.objects.create(user=jane, team=north, supervisor=sofia)
    return {"sofia": sofia, "jane": jane}


def customer(n: int, *, consent: bool = True):
    person = CustomerFactory(display_name=f"Customer {n}")
    address = f"customer{n}@example.com"
    IdentityFactory(customer=person, kind="email", value=address, normalized=address)
    if consent:
        Preference.objects.create(customer=person, key="contact_consent", value="true", recorded_at=timezone.now())
    return person
