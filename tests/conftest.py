"""Shared fixtures: named personas and API clients that carry their tokens.

Alice is an agent, Sam a supervisor, Ivy the CTI integration, Nobody has no role.
"""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import CustomerFactory, IdentityFactory, UserFactory


def client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
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
