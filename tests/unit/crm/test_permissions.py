"""The permission matrix: every endpoint of the foundation against every role.

Anonymous callers get 401, authenticated callers outside the endpoint's role 403
(and nothing is written), callers in the role get the endpoint's success status.
Public endpoints answer everyone.
"""

import json
import uuid

import pytest

from tests.factories import CustomerFactory, InteractionFactory, UserFactory
from tests.fixtures.crm import row_counts

pytestmark = pytest.mark.django_db

PUBLIC, SIGNED_IN, AGENT, SUPERVISOR = "public", "signed-in", "agent", "supervisor"
PERSONAS = ("anonymous", "nobody", "agent", "supervisor", "integration", "admin")
# Who may call an endpoint of each access level.
ALLOWED = {
    PUBLIC: set(PERSONAS),
    # The API's description: not marked public in the contract, but for every account.
    SIGNED_IN: set(PERSONAS) - {"anonymous"},
    AGENT: {"agent", "supervisor", "admin"},
    SUPERVISOR: {"supervisor", "admin"},
}


def _customer_body(w):
    return {"display_name": "Maria Garcia", "identities": [{"kind": "phone", "value": "(212) 555-0123"}]}


# name: (access, method, path, body, success status); path/body are filled from the world `w`.
ENDPOINTS = {
    "auth-token": (
        PUBLIC,
        "post",
        "/api/v1/auth/token",
        lambda w: {"username": "alice", "password": "pw-for-tests"},
        200,
    ),
    "customers-list": (AGENT, "get", "/api/v1/customers?search=okafor", None, 200),
    "customers-create": (AGENT, "post", "/api/v1/customers", _customer_body, 201),
    "customer-detail": (AGENT, "get", "/api/v1/customers/{jim}", None, 200),
    "customer-patch": (AGENT, "patch", "/api/v1/customers/{jim}", lambda w: {"tier": "vip"}, 200),
    "customer-delete": (SUPERVISOR, "delete", "/api/v1/customers/{jim}", None, 204),
    "customer-identities": (
        AGENT,
        "post",
        "/api/v1/customers/{jim}/identities",
        lambda w: {"kind": "email", "value": "jim.o@example.com"},
        201,
    ),
    "customer-timeline": (AGENT, "get", "/api/v1/customers/{jim}/timeline", None, 200),
    "customer-merge": (
        SUPERVISOR,
        "post",
        "/api/v1/customers/{jim}/merge",
        lambda w: {"duplicate_id": str(w["duplicate"].pk)},
        200,
    ),
    "customer-export": (SUPERVISOR, "get", "/api/v1/customers/{jim}/export", None, 200),
    "interactions-create": (
        AGENT,
        "post",
        "/api/v1/interactions",
        lambda w: {"channel": "email", "customer_id": str(w["jim"].pk), "reason": "billing"},
        201,
    ),
    "interaction-detail": (AGENT, "get", "/api/v1/interactions/{interaction}", None, 200),
    "interaction-wrap-up": (
        AGENT,
        "patch",
        "/api/v1/interactions/{interaction}",
        lambda w: {"outcome": "resolved", "facts": [{"key": "router_model", "value": "Hub 6"}]},
        200,
    ),
    "reasons": (AGENT, "get", "/api/v1/reasons", None, 200),
    "context-lookup": (AGENT, "post", "/api/v1/context/lookup", lambda w: {"phone": "(212) 555-0100"}, 200),
    "healthz": (PUBLIC, "get", "/healthz", None, 200),
    "readyz": (PUBLIC, "get", "/readyz", None, 200),
    "schema": (SIGNED_IN, "get", "/api/v1/schema/?format=json", None, 200),
    "docs": (PUBLIC, "get", "/api/v1/docs/", None, 200),  # Swagger UI's shell, no data
}


@pytest.fixture
def world(jim, alice):
    return {
        "jim": jim,
        "duplicate": CustomerFactory(display_name="Jim Okafor"),
        "interaction": InteractionFactory(customer=jim, agent=alice),
    }


@pytest.fixture
def api_for(request, anon_api, norole_api, agent_api, supervisor_api, integration_api):
    from tests.conftest import client_for

    clients = {
        "anonymous": anon_api,
        "nobody": norole_api,
        "agent": agent_api,
        "supervisor": supervisor_api,
        "integration": integration_api,
    }

    def get(persona):
        if persona == "admin":
            return client_for(UserFactory(username="root", is_superuser=True, is_staff=True))
        return clients[persona]

    return get


def _call(client, method, path, body):
    kwargs = {"format": "json"} if body is not None else {}
    return getattr(client, method)(path, body, **kwargs) if body is not None else getattr(client, method)(path)


CASES = [(name, persona) for name in ENDPOINTS for persona in PERSONAS]


@pytest.mark.parametrize(("endpoint", "persona"), CASES, ids=[f"{e}-{p}" for e, p in CASES])
def test_each_endpoint_answers_each_role_as_the_contract_says(api_for, world, endpoint, persona):
    access, method, path, body, success = ENDPOINTS[endpoint]
    path = path.format(jim=world["jim"].pk, interaction=world["interaction"].pk)
    body = body(world) if body else None
    before = row_counts()

    response = _call(api_for(persona), method, path, body)

    if persona in ALLOWED[access]:
        assert response.status_code == success, response.content[:500]
        return
    expected = 401 if persona == "anonymous" else 403
    assert response.status_code == expected, response.content[:500]
    # application/json, or the schema's own JSON type (application/vnd.oai.openapi+json)
    assert response["Content-Type"].split(";")[0].endswith("json")
    assert json.loads(response.content)["detail"]
    if expected == 401:
        assert response["WWW-Authenticate"].startswith("Token")
    assert row_counts() == before, "a refused request wrote rows"


def test_an_invalid_token_is_401_even_on_agent_endpoints(db):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = client.get("/api/v1/customers")
    assert response.status_code == 401
    assert response.json()["detail"]


def test_an_inactive_users_token_stops_working(alice, agent_api):
    alice.is_active = False
    alice.save(update_fields=["is_active"])
    assert agent_api.get("/api/v1/reasons").status_code == 401


def test_wrong_credentials_never_give_a_token(anon_api, alice):
    for body in (
        {"username": "alice", "password": "wrong"},
        {"username": "ghost", "password": "pw-for-tests"},
    ):
        response = anon_api.post("/api/v1/auth/token", body, format="json")
        assert response.status_code in (400, 401)
        assert "token" not in response.json()


def test_an_agent_cannot_erase_and_the_customer_stays_findable(agent_api, jim):
    assert agent_api.delete(f"/api/v1/customers/{jim.pk}").status_code == 403
    jim.refresh_from_db()
    assert jim.erased_at is None
    found = agent_api.get("/api/v1/customers", {"search": "(212) 555-0100"}).json()["results"]
    assert [c["id"] for c in found] == [str(jim.pk)]


def test_a_role_check_comes_before_the_not_found_check(agent_api):
    """An agent learns nothing about which ids exist from supervisor endpoints."""
    response = agent_api.get(f"/api/v1/customers/{uuid.uuid4()}/export")
    assert response.status_code == 403


@pytest.mark.parametrize("key", ["abc\x00def", "z" * 41, "short", "A" * 40])
def test_a_malformed_token_is_refused_with_401_not_a_server_error(anon_api, alice, key):
    anon_api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert anon_api.get("/api/v1/reasons").status_code == 401
    assert anon_api.post("/api/v1/context/lookup", {"phone": "+12125550100"}, format="json").status_code == 401
