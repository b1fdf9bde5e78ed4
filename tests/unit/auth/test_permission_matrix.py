"""The permission matrix: every route of the URLconf x anonymous / agent / other agent /
supervisor / integration / no-group user → the status the contract gives.

Routes are listed from the URLconf itself, so a new endpoint without a row here fails
`test_every_route_has_a_row`. API calls carry a token (as a client would: issued by the
token endpoint's service), pages a session. Admin pages are covered as a whole: every
admin route turns away everyone but supervisors (to its login page), whatever it is.
"""

import datetime as dt
import uuid

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from crm.models import FollowUp, FollowUpKind
from tests.conftest import client_for
from tests.factories import CustomerFactory, FeedbackFactory, InteractionFactory, UserFactory
from tests.fixtures.crm import row_counts

pytestmark = pytest.mark.django_db

PERSONAS = ("anonymous", "agent", "other_agent", "supervisor", "integration", "nobody")
ANON, AGENT, OTHER, SUP, INTEG, NOBODY = PERSONAS
# The order each row is played in: refusals first, so a granted write (a merge, an
# erasure) cannot change what a later persona sees.
PLAY_ORDER = (ANON, NOBODY, INTEG, OTHER, AGENT, SUP)

# Statuses by who may call: everyone else gets 401 (API, anonymous), 403 (API, signed in),
# or the login page (pages, anonymous).
PUBLIC = dict.fromkeys(PERSONAS, "ok")
SIGNED_IN = {ANON: 401, **dict.fromkeys(PERSONAS[1:], "ok")}
AGENTS = {ANON: 401, AGENT: "ok", OTHER: "ok", SUP: "ok", INTEG: 403, NOBODY: 403}
SUPERVISORS = {ANON: 401, AGENT: 403, OTHER: 403, SUP: "ok", INTEG: 403, NOBODY: 403}
INTEGRATIONS = {ANON: 401, AGENT: 403, OTHER: 403, SUP: 403, INTEG: "ok", NOBODY: 403}
AGENT_PAGES = {ANON: "login", AGENT: "ok", OTHER: "ok", SUP: "ok", INTEG: 403, NOBODY: 403}

# route name: [(method, path, body, who may: status, success status)]; {placeholders} come from the world.
ROWS = {
    "healthz": [("get", "/healthz", None, PUBLIC, 200)],
    "readyz": [("get", "/readyz", None, PUBLIC, 200)],
    "auth-token": [
        ("post", "/api/v1/auth/token", {"username": "alice", "password": "pw-for-tests"}, PUBLIC, 200),
        ("delete", "/api/v1/auth/token", None, SIGNED_IN, 204),
    ],
    "customer-list": [
        ("get", "/api/v1/customers?search=okafor", None, AGENTS, 200),
        ("post", "/api/v1/customers", {"display_name": "Maria Garcia"}, AGENTS, 201),
    ],
    "customer-detail": [
        ("get", "/api/v1/customers/{jim}", None, AGENTS, 200),
        ("patch", "/api/v1/customers/{jim}", {"tier": "vip"}, AGENTS, 200),
        ("delete", "/api/v1/customers/{jim}", None, SUPERVISORS, 204),
    ],
    "customer-identities": [
        ("post", "/api/v1/customers/{jim}/identities", {"kind": "email", "value": "jim.o@example.com"}, AGENTS, 201)
    ],
    "customer-timeline": [("get", "/api/v1/customers/{jim}/timeline", None, AGENTS, 200)],
    "customer-merge": [("post", "/api/v1/customers/{jim}/merge", {"duplicate_id": "{duplicate}"}, SUPERVISORS, 200)],
    "customer-export": [("get", "/api/v1/customers/{jim}/export", None, SUPERVISORS, 200)],
    "interaction-list": [
        ("post", "/api/v1/interactions", {"channel": "email", "customer_id": "{jim}"}, AGENTS, 201),
    ],
    "interaction-detail": [
        ("get", "/api/v1/interactions/{interaction}", None, AGENTS, 200),
        # Issue 10 part B (finding 7): a wrap-up is the contact's own agent's or a supervisor's.
        ("patch", "/api/v1/interactions/{interaction}", {"outcome": "resolved"}, {**AGENTS, OTHER: 403}, 200),
    ],
    "reason-list": [("get", "/api/v1/reasons", None, AGENTS, 200)],
    "feedback-list": [("post", "/api/v1/feedback", {"rating": 5, "text": "Lovely service"}, PUBLIC, 202)],
    "feedback-detail": [("get", "/api/v1/feedback/{feedback}", None, SUPERVISORS, 200)],
    "recognition-list": [("get", "/api/v1/recognitions", None, SUPERVISORS, 200)],
    "follow-up-list": [("get", "/api/v1/follow-ups", None, SUPERVISORS, 200)],
    "follow-up-detail": [("patch", "/api/v1/follow-ups/{follow_up}", {"note": "called back"}, SUPERVISORS, 200)],
    "recurring-problem-list": [("get", "/api/v1/recurring-problems", None, SUPERVISORS, 200)],
    "schema": [("get", "/api/v1/schema/?format=json", None, SIGNED_IN, 200)],
    "docs": [("get", "/api/v1/docs/", None, PUBLIC, 200)],  # Swagger UI's shell; the schema needs a login
    "context-lookup": [("post", "/api/v1/context/lookup", {"phone": "(212) 555-0100"}, AGENTS, 200)],
    "call-events": [
        (
            "post",
            "/api/v1/calls",
            {"event": "ringing", "agent": "alice", "channel": "phone", "phone": "(212) 555-0100", "call_id": "m-1"},
            INTEGRATIONS,
            202,
        )
    ],
    # issue 17: from loopback (the test client's address) any caller reads the metrics; the address
    # and bearer-token rule is tested in tests/unit/operations/test_observability.py.
    "metrics": [("get", "/metrics", None, PUBLIC, 200)],
    # issue 13: undo a merge (an unknown merge_id here: the supervisor passes the role check, then 404).
    "customer-unmerge": [("post", "/api/v1/customers/{jim}/unmerge", {"merge_id": 999999}, SUPERVISORS, 404)],
    # issue 12: verified on this call, by any agent on the call (a transfer's next agent too). Jim has no
    # phone on file here: past the role check, 400.
    "interaction-verify": [("post", "/api/v1/interactions/{interaction}/verify", {"kind": "phone"}, AGENTS, 400)],
    # issue 15: bulk import (supervisors). The body here is JSON, not multipart: past the role check, 415.
    "import-list": [("post", "/api/v1/imports", {"kind": "customers"}, SUPERVISORS, 415)],
    "import-detail": [("get", "/api/v1/imports/00000000-0000-4000-8000-000000000000", None, SUPERVISORS, 404)],
    "import-errors": [("get", "/api/v1/imports/00000000-0000-4000-8000-000000000000/errors", None, SUPERVISORS, 404)],
    "agent-recognitions": [("page-get", "/agent/recognitions", None, AGENT_PAGES, 200)],
    # issue 13: "/" sends each role to its desk; the favicon is public.
    "landing": [("page-get", "/", None, {**PUBLIC, AGENT: 302, OTHER: 302, SUP: 302}, 200)],
    "favicon": [("page-get", "/favicon.ico", None, PUBLIC, 200)],
    # issue 16: platform adapters. Twilio proves itself by its signature alone (none here: 403 for all);
    # Connect and Genesys post with an integration token (an empty body here: past the role check, 400).
    "calls-twilio": [("post", "/api/v1/calls/twilio", {"CallSid": "CA1"}, dict.fromkeys(PERSONAS, 403), None)],
    "calls-amazon-connect": [("post", "/api/v1/calls/amazon-connect", {}, INTEGRATIONS, 400)],
    "calls-genesys": [("post", "/api/v1/calls/genesys", {}, INTEGRATIONS, 400)],
    # Pages (session).
    "feedback-form": [("page-get", "/feedback/", None, PUBLIC, 200)],
    "feedback-thanks": [("page-get", "/feedback/thanks/", None, PUBLIC, 200)],
    "agent-login": [("page-get", "/agent/login/", None, {ANON: 200, **dict.fromkeys(PERSONAS[1:], 302)}, None)],
    "agent-logout": [("page-post", "/agent/logout/", None, dict.fromkeys(PERSONAS, 302), None)],
    "agent-page": [("page-get", "/agent/", None, AGENT_PAGES, 200)],
    "agent-events": [("page-get", "/agent/events", None, {**AGENT_PAGES, ANON: 401}, 200)],
    "agent-dismiss": [("page-post", "/agent/dismiss", {"interaction_id": "{interaction}"}, AGENT_PAGES, 200)],
}


def routes(patterns=None, prefix="", namespace=None):
    """(path pattern, name, namespace) of every route the site serves."""
    for p in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(p, URLResolver):
            yield from routes(p.url_patterns, prefix + str(p.pattern), p.namespace or namespace)
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), p.name, namespace


def test_every_route_has_a_row():
    site_routes = {name for _, name, ns in routes() if ns != "admin"}
    assert site_routes - set(ROWS) == set(), "a route without a row in the permission matrix"
    assert set(ROWS) - site_routes == set(), "a row for a route that no longer exists"


@pytest.fixture
def world(db):
    alice = UserFactory(username="alice", role="agent")
    jim = CustomerFactory(display_name="Jim Okafor")
    return {
        "users": {
            AGENT: alice,
            OTHER: UserFactory(username="bob", role="agent"),
            SUP: UserFactory(username="sam", role="supervisor", is_staff=True),
            INTEG: UserFactory(username="ivy", role="integration"),
            NOBODY: UserFactory(username="nobody"),
        },
        "jim": jim,
        "duplicate": CustomerFactory(display_name="Jim Okafor"),
        "interaction": InteractionFactory(customer=jim, agent=alice),
        "feedback": FeedbackFactory(customer=jim, rating=2),
        "follow_up": FollowUp.objects.create(
            kind=FollowUpKind.CALLBACK, customer=jim, due_at=timezone.now() + dt.timedelta(days=1)
        ),
    }


def fill(value, world):
    ids = {k: str(v.pk) for k, v in world.items() if hasattr(v, "pk")}
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {k: fill(v, world) for k, v in value.items()}
    return value


def client_of(world, persona, method):
    """A session for pages, a token (issued as a login would) for the API; None: anonymous."""
    user = world["users"].get(persona)
    if not method.startswith("page-"):
        return client_for(user)
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def send(client, method, path, body):
    if method.startswith("page-"):
        if method == "page-post":
            return client.post(path, body or {}, content_type="application/json")
        return client.get(path)
    if body is None:
        return getattr(client, method)(path)
    return getattr(client, method)(path, body, format="json")


CASES = [(name, i) for name, rows in ROWS.items() for i in range(len(rows))]


@pytest.mark.parametrize(("route", "row"), CASES, ids=[f"{n}-{i}" for n, i in CASES])
def test_each_route_answers_each_persona_as_the_contract_says(world, route, row):
    # A granted event stream is not read (its generator never starts), only its status checked.
    method, path, body, who, success = ROWS[route][row]
    wrong = {}
    for persona in PLAY_ORDER:
        expected = who[persona]
        client = client_of(world, persona, method)
        before = row_counts()
        response = send(client, method, fill(path, world), fill(body, world))
        if expected not in ("ok", 302) and row_counts() != before:
            wrong[persona] = "a refused request wrote rows"
            continue
        if expected == "ok":
            ok = response.status_code == success
        elif expected == "login":
            ok = response.status_code == 302 and response["Location"].startswith("/agent/login/")
        else:
            ok = response.status_code == expected
        if ok and expected == 401 and path.startswith("/api/"):
            ok = response["WWW-Authenticate"] == "Token"
        if not ok:
            wrong[persona] = (response.status_code, response.content[:200])
    assert wrong == {}, f"{method} {path}: expected {who}"


def admin_paths():
    """Every admin route, its converters filled with a value of the right form."""
    samples = {"uuid": str(uuid.uuid4()), "path": "1", "int": "1", "str": "crm"}
    for pattern, name, namespace in routes():
        if namespace != "admin":
            continue
        path = "/" + pattern.replace("^", "").replace("$", "").replace("\\Z", "")
        for converter, sample in samples.items():
            while f"<{converter}:" in path:
                start = path.index(f"<{converter}:")
                path = path[:start] + sample + path[path.index(">", start) + 1 :]
        if "(?P<" in path:  # the app index: a regular expression of app labels
            path = "/admin/crm/"
        yield name, path


@pytest.mark.parametrize("persona", [ANON, AGENT, OTHER, INTEG, NOBODY])
def test_no_admin_page_opens_to_anyone_but_supervisors(world, persona):
    client = Client()
    if persona != ANON:
        client.force_login(world["users"][persona])
    opened = {}
    for name, path in admin_paths():
        if name in ("login", "logout", "javascript-catalog", "view_on_site", "autocomplete"):
            continue  # the login page itself, and shells that show no data (checked by name below)
        response = client.get(path)
        if not (response.status_code == 302 and response["Location"].startswith("/admin/login/")):
            opened[name] = response.status_code
    assert opened == {}
    # The autocomplete answers 403 JSON rather than a redirect: still nothing.
    assert client.get("/admin/autocomplete/").status_code in (302, 403)


def test_supervisors_open_the_admin_and_only_superusers_the_token_page(world):
    client = Client()
    client.force_login(world["users"][SUP])
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/crm/customer/").status_code == 200
    assert client.get(f"/admin/crm/customer/{world['jim'].pk}/360/").status_code == 200
    assert client.get("/admin/knox/authtoken/").status_code == 403
    assert client.get("/admin/axes/accessattempt/").status_code == 403
