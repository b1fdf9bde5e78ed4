"""Shared fixtures, the test layout's markers and the one guard for tests that need services.

Alice is an agent, Sam a supervisor, Ivy the CTI integration, Nobody has no role.
The folder says what a test needs: tests/unit runs anywhere (SQLite too),
tests/integration needs PostgreSQL (and Redis plus a worker where marked `worker`),
tests/browser drives Chromium. The folder marks each test, so `make test-sqlite`'s
`-m "not postgres and not worker and not browser"` selects by scope.
"""

from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from crm import tokens
from tests.factories import CustomerFactory, IdentityFactory, UserFactory

# Fixtures shared across scopes (an admin test and a browser test build the same person).
pytest_plugins = ["tests.fixtures.admin", "tests.fixtures.crm", "tests.fixtures.workflows"]

TESTS = Path(__file__).resolve().parent
SCOPE_MARKERS = {"integration": "postgres", "browser": "browser"}  # folder -> marker every test in it gets
SERVICE_MARKERS = ("postgres", "worker", "browser")


@pytest.hookimpl(tryfirst=True)  # before `-m` selects on the markers added here
def pytest_collection_modifyitems(config, items):
    """Mark tests by folder; a unit test asking for a service is in the wrong folder."""
    misplaced = []
    for item in items:
        scope = Path(item.path).resolve().relative_to(TESTS).parts[0]
        if scope in SCOPE_MARKERS:
            item.add_marker(SCOPE_MARKERS[scope])
        elif scope == "unit" and any(item.get_closest_marker(name) for name in SERVICE_MARKERS):
            misplaced.append(item.nodeid)
    if misplaced:
        raise pytest.UsageError(
            "Tests in tests/unit must run without services; move these to tests/integration or tests/browser: "
            + ", ".join(misplaced)
        )


@pytest.fixture(autouse=True)
def _services_for_service_tests(request):
    """Tests that need PostgreSQL or Redis fail (never skip) without them: a skip would hide a missing service."""
    if request.node.get_closest_marker("postgres") and connection.vendor != "postgresql":
        pytest.fail(
            f"This test needs PostgreSQL, but the database is {connection.vendor}: "
            "set DATABASE_URL=postgres://... (make test does), or run `make test-sqlite` for the tests that do not."
        )
    if request.node.get_closest_marker("worker") and not settings.REDIS_URL:
        pytest.fail("This test needs Redis and a Celery worker: set REDIS_URL=redis://... (make test does).")


@pytest.fixture(autouse=True)
def _uploads_in_the_tests_own_directory(settings, tmp_path):
    """Uploads (customers' data, however made up) land in the test's directory, never the checkout's var/imports."""
    settings.CRM_IMPORT_DIR = tmp_path / "uploads"


def client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        token, _ = tokens.issue(user)  # a new hashed token, as POST /api/v1/auth/token gives
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.fixture
def alice(db):
    return UserFactory(username="alice", first_name="Alice", role="agent")


@pytest.fixture
def sam(db):
    return UserFactory(username="sam", first_name="Sam", role="supervisor", is_staff=True)


@pytest.fixture
def ivy(db):
    return UserFactory(username="ivy", role="integration")


@pytest.fixture
def nobody(db):
    return UserFactory(username="nobody")


@pytest.fixture
def anon_api(db):
    return client_for(None)


@pytest.fixture
def agent_api(alice):
    return client_for(alice)


@pytest.fixture
def supervisor_api(sam):
    return client_for(sam)


@pytest.fixture
def integration_api(ivy):
    return client_for(ivy)


@pytest.fixture
def norole_api(nobody):
    return client_for(nobody)


@pytest.fixture
def jim(db):
    """A customer with a phone, an e-mail and an account."""
    customer = CustomerFactory(display_name="James Okafor", preferred_name="Jim")
    IdentityFactory(customer=customer, kind="phone", value="+12125550100", normalized="+12125550100")
    IdentityFactory(customer=customer, kind="email", value="Jim@Example.com", normalized="jim@example.com")
    IdentityFactory(customer=customer, kind="account", value="AC-1234-5678", normalized="AC12345678")
    return customer


@pytest.fixture(autouse=True)
def _fresh_cache():
    """The database rolls back after each test; the cache (Redis in CI) must too."""
    _clear_cache()
    yield
    _clear_cache()


def _clear_cache() -> None:
    """Delete the cache's own keys only: on Redis, the broker's queues share the database."""
    from django.conf import settings
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        backend.clear()
        return
    client = backend._cache.get_client(write=True)
    for key in client.scan_iter(match=f"{settings.CACHES['default']['KEY_PREFIX']}:*", count=1000):
        client.delete(key)


@pytest.fixture(autouse=True)
def _roles_and_reasons(request):
    """Tests with real transactions: the roles and reasons exist, whatever an earlier one flushed.

    Runs before the test's own fixtures (autouse), so before a browser fixture
    starts Playwright's event loop and Django hands out context-local connections.
    """
    marker = request.node.get_closest_marker("django_db")
    if marker is None or not marker.kwargs.get("transaction"):
        return
    request.getfixturevalue("transactional_db")
    from crm.apps import restore_roles_and_reasons

    restore_roles_and_reasons(sender=None)
