"""Bad-input battery: malformed bodies on every write endpoint.

Each must get a 4xx (never a 500) whose JSON body names the offending field, and
must change nothing: the rows of the customer memory, the access audit and the
API tokens are counted before and after.
"""

import datetime as dt
import json
import uuid

import pytest
from django.forms.models import model_to_dict
from django.utils import timezone

from crm.models import Interaction
from tests.factories import CustomerFactory, IdentityFactory, InteractionFactory
from tests.fixtures.crm import row_counts

pytestmark = pytest.mark.django_db

NOT_JSON = object()  # marker: send a body that is not JSON at all
UNKNOWN_ID = "7a0c2f1e-3b7d-4c55-9d1e-000000000000"
LONG = "x" * 5000


def _bad_common(valid: dict) -> list:
    """Shapes that are wrong for any endpoint taking a JSON object."""
    return [
        ("a list instead of an object", [valid], "non_field_errors", 400),
        ("a JSON string", "just text", "non_field_errors", 400),
        ("not JSON", NOT_JSON, "detail", 400),
        ("an unknown field", {**valid, "colour": "blue"}, "colour", 400),
    ]


CUSTOMER_CREATE = {"display_name": "Maria Garcia"}
CUSTOMER_CREATE_CASES = [
    *_bad_common(CUSTOMER_CREATE),
    ("no display name", {}, "display_name", 400),
    ("a blank display name", {"display_name": " "}, "display_name", 400),
    ("a list as display name", {"display_name": ["Maria"]}, "display_name", 400),
    ("a boolean as display name", {"display_name": True}, "display_name", 400),
    ("an oversized display name", {"display_name": LONG}, "display_name", 400),
    ("a NUL in the display name", {"display_name": "Ma\x00ria"}, "display_name", 400),
    ("an unknown tier", {**CUSTOMER_CREATE, "tier": "gold"}, "tier", 400),
    ("an unknown time zone", {**CUSTOMER_CREATE, "timezone": "Mars/Olympus"}, "timezone", 400),
    ("identities as an object", {**CUSTOMER_CREATE, "identities": {"kind": "phone"}}, "identities", 400),
    ("an unknown identity kind", {**CUSTOMER_CREATE, "identities": [{"kind": "fax", "value": "1"}]}, "identities", 400),
    ("a phone 'abc'", {**CUSTOMER_CREATE, "identities": [{"kind": "phone", "value": "abc"}]}, "identities", 400),
    ("a phone '12'", {**CUSTOMER_CREATE, "identities": [{"kind": "phone", "value": "12"}]}, "identities", 400),
    (
        "a good phone then a bad e-mail",
        {
            **CUSTOMER_CREATE,
            "identities": [{"kind": "phone", "value": "+1 212 555 0123"}, {"kind": "email", "value": "nope"}],
        },
        "identities",
        400,
    ),
    (
        "another customer's account",
        {**CUSTOMER_CREATE, "identities": [{"kind": "account", "value": "AC 1234 5678"}]},
        "identities",
        409,
    ),
    (
        "too many identities",
        {**CUSTOMER_CREATE, "identities": [{"kind": "phone", "value": f"+1212555{n:04d}"} for n in range(21)]},
        "identities",
        400,
    ),
]

CUSTOMER_PATCH_CASES = [
    *_bad_common({"tier": "vip"}),
    ("an unknown tier", {"tier": "gold"}, "tier", 400),
    ("a blank display name", {"display_name": ""}, "display_name", 400),
    ("an object as display name", {"display_name": {"first": "Jim"}}, "display_name", 400),
    ("an oversized preferred name", {"preferred_name": LONG}, "preferred_name", 400),
    ("an unknown time zone", {"timezone": "Nowhere/Special"}, "timezone", 400),
    ("identities are not patched here", {"identities": []}, "identities", 400),
    ("a valid change beside an invalid one", {"preferred_name": "Jimmy", "tier": "gold"}, "tier", 400),
]

IDENTITY_CASES = [
    *_bad_common({"kind": "email", "value": "jim.o@example.com"}),
    ("an unknown kind", {"kind": "fax", "value": "0207"}, "kind", 400),
    ("no value", {"kind": "phone"}, "value", 400),
    ("a phone 'abc'", {"kind": "phone", "value": "abc"}, "value", 400),
    ("a phone '12'", {"kind": "phone", "value": "12"}, "value", 400),
    ("a number as phone", {"kind": "phone", "value": 12}, "value", 400),
    ("a bad e-mail", {"kind": "email", "value": "jim at example"}, "value", 400),
    ("a bad account", {"kind": "account", "value": "a!"}, "value", 400),
    ("an oversized value", {"kind": "email", "value": LONG + "@example.com"}, "value", 400),
    ("verified is not a boolean", {"kind": "email", "value": "a@example.com", "verified": "maybe"}, "verified", 400),
    ("another customer's account", {"kind": "account", "value": "zz-9999-0000"}, "value", 409),
]

INTERACTION_CREATE = {"channel": "chat"}
INTERACTION_CREATE_CASES = [
    *_bad_common(INTERACTION_CREATE),
    ("no channel", {"summary": "hi"}, "channel", 400),
    ("an unknown channel", {"channel": "fax"}, "channel", 400),
    ("an unknown direction", {**INTERACTION_CREATE, "direction": "sideways"}, "direction", 400),
    ("a phone 'abc'", {**INTERACTION_CREATE, "phone": "abc"}, "phone", 400),
    ("a phone '12'", {**INTERACTION_CREATE, "phone": "12"}, "phone", 400),
    ("a bad e-mail", {**INTERACTION_CREATE, "email": "nope"}, "email", 400),
    ("an unknown reason", {**INTERACTION_CREATE, "reason": "alien_abduction"}, "reason", 400),
    ("an unknown outcome", {**INTERACTION_CREATE, "outcome": "maybe"}, "outcome", 400),
    ("an unknown agent", {**INTERACTION_CREATE, "agent": "ghost"}, "agent", 400),
    ("a customer_id that is not an id", {**INTERACTION_CREATE, "customer_id": "jim"}, "customer_id", 400),
    ("an unknown customer_id", {**INTERACTION_CREATE, "customer_id": UNKNOWN_ID}, "customer_id", 404),
    ("started_at is not a time", {**INTERACTION_CREATE, "started_at": "yesterday"}, "started_at", 400),
    (
        "ended before it started",
        {**INTERACTION_CREATE, "started_at": "2026-03-02T10:00:00Z", "ended_at": "2026-03-01T10:00:00Z"},
        "ended_at",
        400,
    ),
    ("a list as summary", {**INTERACTION_CREATE, "summary": ["a", "b"]}, "summary", 400),
    ("an oversized external_id", {**INTERACTION_CREATE, "external_id": LONG}, "external_id", 400),
    ("a NUL in the summary", {**INTERACTION_CREATE, "summary": "a\x00b"}, "summary", 400),
]

WRAP_UP_CASES = [
    *_bad_common({"outcome": "resolved"}),
    ("an unknown reason", {"reason": "alien_abduction"}, "reason", 400),
    ("an unknown outcome", {"outcome": "maybe"}, "outcome", 400),
    ("a blank outcome", {"outcome": ""}, "outcome", 400),
    ("ended_at is not a time", {"ended_at": "soon"}, "ended_at", 400),
    ("ended before it started", {"ended_at": "2001-01-01T00:00:00Z"}, "ended_at", 400),
    ("a customer_id that is not an id", {"customer_id": "jim"}, "customer_id", 400),
    ("an unknown customer_id", {"customer_id": UNKNOWN_ID}, "customer_id", 404),
    ("facts as an object", {"facts": {"key": "a", "value": "b"}}, "facts", 400),
    ("a fact without value", {"facts": [{"key": "router_model"}]}, "facts", 400),
    ("a fact key with spaces", {"facts": [{"key": "router model", "value": "Hub"}]}, "facts", 400),
    ("an oversized fact value", {"facts": [{"key": "note", "value": LONG}]}, "facts", 400),
    ("too many facts", {"facts": [{"key": f"k{n}", "value": "v"} for n in range(51)]}, "facts", 400),
    ("preferences as a list", {"preferences": ["sms"]}, "preferences", 400),
    ("a nested preference value", {"preferences": {"channel": {"sms": True}}}, "preferences", 400),
    ("a null preference value", {"preferences": {"channel": None}}, "preferences", 400),
    ("an oversized preference key", {"preferences": {"k" * 65: "v"}}, "preferences", 400),
    ("a preference key with a null character", {"preferences": {"a\u0000b": "v"}}, "preferences", 400),
    ("a valid summary beside an unknown reason", {"summary": "Sorted", "reason": "alien_abduction"}, "reason", 400),
    (
        "a valid summary beside a fact with no value",
        {"summary": "Sorted", "facts": [{"key": "router_model"}]},
        "facts",
        400,
    ),
    (
        "a valid summary, then an end before the start",
        {"summary": "Sorted", "ended_at": "2001-01-01T00:00Z"},
        "ended_at",
        400,
    ),
    # Linking to another customer is an explicit relink now (issue 10): tests/unit/crm/test_trust.py.
    ("linking to an erased customer", {"customer_id": "{erased}"}, "customer_id", 404),
    ("a summary over 10,000 characters", {"summary": "x" * 10_001}, "summary", 400),
]

LOOKUP = {"phone": "+1 212 555 0100"}
LOOKUP_CASES = [
    *_bad_common(LOOKUP),
    ("no identifier", {"channel": "phone"}, "phone", 400),
    ("a phone 'abc'", {"phone": "abc"}, "phone", 400),
    ("a phone '12'", {"phone": "12"}, "phone", 400),
    ("a bad e-mail", {"email": "nope"}, "email", 400),
    ("a bad account", {"account": "a!"}, "account", 400),
    ("an unknown channel", {**LOOKUP, "channel": "fax"}, "channel", 400),
    ("a customer_id that is not an id", {"customer_id": "jim"}, "customer_id", 400),
    ("an unknown customer_id", {"customer_id": UNKNOWN_ID}, "customer_id", 404),
    ("verified as a string", {**LOOKUP, "verified": "account"}, "verified", 400),
    ("an unknown verified kind", {**LOOKUP, "verified": ["fingerprint"]}, "verified", 400),
    ("ivr as a string", {**LOOKUP, "ivr": "billing"}, "ivr", 400),
    ("a NUL inside ivr", {**LOOKUP, "ivr": {"intent": "bill\x00ing"}}, "ivr", 400),
    ("an oversized ivr", {**LOOKUP, "ivr": {"transcript": LONG}}, "ivr", 400),
    ("a list as ivr intent", {**LOOKUP, "ivr": {"intent": ["billing"]}}, "ivr", 400),
    ("an object as ivr intent", {**LOOKUP, "ivr": {"intent": {"code": "billing"}}}, "ivr", 400),
    ("an empty ivr key", {**LOOKUP, "ivr": {"": "x"}}, "ivr", 400),
    ("an oversized call_id", {**LOOKUP, "call_id": LONG}, "call_id", 400),
    ("a blank call_id", {**LOOKUP, "call_id": ""}, "call_id", 400),
]

TOKEN_CASES = [
    *_bad_common({"username": "alice", "password": "pw-for-tests"}),
    ("no fields", {}, "username", 400),
    ("no password", {"username": "alice"}, "password", 400),
    ("a list as username", {"username": ["alice"], "password": "pw-for-tests"}, "username", 400),
    ("an oversized username", {"username": LONG, "password": "pw-for-tests"}, "username", 400),
    ("an oversized password", {"username": "alice", "password": LONG}, "password", 400),
]


@pytest.fixture
def other(db):
    """A second customer, owner of account ZZ99990000."""
    customer = CustomerFactory(display_name="Olga Novak")
    IdentityFactory(customer=customer, kind="account", value="ZZ-9999-0000", normalized="ZZ99990000")
    return customer


@pytest.fixture
def interaction(jim, alice):
    return InteractionFactory(customer=jim, agent=alice, summary="Before", started_at=timezone.now())


def _send(client, method, path, body):
    if body is NOT_JSON:
        return getattr(client, method)(path, data="display_name=Maria&{", content_type="application/json")
    # json.dumps escapes everything non-ASCII, so even a lone surrogate reaches the server as valid JSON.
    return getattr(client, method)(path, data=json.dumps(body), content_type="application/json")


def _assert_rejected(response, field, status):
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body, dict)
    assert field in body, body


def _fill(body, **ids):
    if isinstance(body, dict):
        return {k: (v.format(**ids) if isinstance(v, str) and v.startswith("{") else v) for k, v in body.items()}
    return body


def _ids(cases):
    return [c[0] for c in cases]


def _params(cases):
    return [c[1:] for c in cases]


@pytest.mark.parametrize(("body", "field", "status"), _params(CUSTOMER_CREATE_CASES), ids=_ids(CUSTOMER_CREATE_CASES))
def test_bad_customer_create_is_refused_and_writes_nothing(agent_api, jim, body, field, status):
    before = row_counts()
    response = _send(agent_api, "post", "/api/v1/customers", body)
    _assert_rejected(response, field, status)
    assert row_counts() == before


@pytest.mark.parametrize(("body", "field", "status"), _params(CUSTOMER_PATCH_CASES), ids=_ids(CUSTOMER_PATCH_CASES))
def test_bad_customer_patch_is_refused_and_changes_nothing(agent_api, jim, body, field, status):
    before, fields_before = row_counts(), model_to_dict(jim)
    response = _send(agent_api, "patch", f"/api/v1/customers/{jim.pk}", body)
    _assert_rejected(response, field, status)
    jim.refresh_from_db()
    assert (row_counts(), model_to_dict(jim)) == (before, fields_before)


@pytest.mark.parametrize(("body", "field", "status"), _params(IDENTITY_CASES), ids=_ids(IDENTITY_CASES))
def test_bad_identity_is_refused_and_writes_nothing(agent_api, jim, other, body, field, status):
    before = row_counts()
    response = _send(agent_api, "post", f"/api/v1/customers/{jim.pk}/identities", body)
    _assert_rejected(response, field, status)
    assert row_counts() == before


@pytest.mark.parametrize(
    ("body", "field", "status"), _params(INTERACTION_CREATE_CASES), ids=_ids(INTERACTION_CREATE_CASES)
)
def test_bad_interaction_is_refused_and_writes_nothing(agent_api, jim, body, field, status):
    before = row_counts()
    response = _send(agent_api, "post", "/api/v1/interactions", body)
    _assert_rejected(response, field, status)
    assert row_counts() == before


@pytest.mark.parametrize(("body", "field", "status"), _params(WRAP_UP_CASES), ids=_ids(WRAP_UP_CASES))
def test_bad_wrap_up_is_refused_and_changes_nothing(agent_api, interaction, other, body, field, status):
    erased = CustomerFactory(display_name="", erased_at=timezone.now())
    body = _fill(body, other=other.pk, erased=erased.pk)
    before, fields_before = row_counts(), model_to_dict(interaction)
    response = _send(agent_api, "patch", f"/api/v1/interactions/{interaction.pk}", body)
    _assert_rejected(response, field, status)
    interaction.refresh_from_db()
    assert (row_counts(), model_to_dict(interaction)) == (before, fields_before)


def test_facts_on_an_unlinked_contact_are_refused_and_the_summary_is_not_half_saved(agent_api, alice):
    unlinked = InteractionFactory(customer=None, agent=alice, summary="Before")
    before = row_counts()
    response = agent_api.patch(
        f"/api/v1/interactions/{unlinked.pk}",
        {"summary": "After", "facts": [{"key": "router_model", "value": "Hub 6"}]},
        format="json",
    )
    _assert_rejected(response, "facts", 400)
    unlinked.refresh_from_db()
    assert (unlinked.summary, row_counts()) == ("Before", before)


@pytest.mark.parametrize(("body", "field", "status"), _params(LOOKUP_CASES), ids=_ids(LOOKUP_CASES))
def test_bad_lookup_is_refused_and_opens_nothing(agent_api, jim, body, field, status):
    before = row_counts()
    response = _send(agent_api, "post", "/api/v1/context/lookup", body)
    _assert_rejected(response, field, status)
    assert row_counts() == before


@pytest.mark.parametrize(("body", "field", "status"), _params(TOKEN_CASES), ids=_ids(TOKEN_CASES))
def test_bad_token_request_is_refused_and_issues_nothing(anon_api, alice, body, field, status):
    before = row_counts()
    response = _send(anon_api, "post", "/api/v1/auth/token", body)
    _assert_rejected(response, field, status)
    assert row_counts() == before


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("patch", "/api/v1/customers/{id}"),
        ("post", "/api/v1/customers/{id}/identities"),
        ("patch", "/api/v1/interactions/{id}"),
        ("get", "/api/v1/customers/{id}"),
        ("get", "/api/v1/interactions/{id}"),
    ],
)
def test_an_unknown_id_in_the_path_is_a_json_404(agent_api, method, path):
    before = row_counts()
    path = path.format(id=uuid.uuid4())
    response = agent_api.get(path) if method == "get" else _send(agent_api, method, path, {"tier": "vip"})
    assert response.status_code == 404
    assert response.json()["detail"]
    assert row_counts() == before


def test_a_malformed_id_in_the_path_is_a_json_404(agent_api):
    response = agent_api.get("/api/v1/customers/not-a-uuid")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("a body over the size limit", b'{"display_name": "' + b"x" * 300_000 + b'"}'),
        ("nesting deeper than the parser goes", b"[" * 100_000 + b"]" * 100_000),
        ("bytes that are not UTF-8", b'{"display_name": "\xff\xfe"}'),
        ("NaN, which is not JSON", b'{"display_name": NaN}'),
    ],
)
def test_unreadable_bodies_are_400_not_500(agent_api, name, raw):
    before = row_counts()
    response = agent_api.generic("POST", "/api/v1/customers", raw, content_type="application/json")
    _assert_rejected(response, "detail", 400)
    assert row_counts() == before


def test_a_form_encoded_body_is_415(agent_api):
    response = agent_api.post("/api/v1/customers", {"display_name": "Maria"})
    _assert_rejected(response, "detail", 415)


def test_a_search_with_a_nul_is_400_not_500(agent_api, jim):
    response = agent_api.get("/api/v1/customers", {"search": "oka\x00for"})
    _assert_rejected(response, "search", 400)


def test_a_repeated_external_id_with_a_bad_body_changes_nothing(agent_api, jim):
    """The repeat returns the first contact as it was; it is not a way to edit it."""
    first = agent_api.post(
        "/api/v1/interactions",
        {"channel": "chat", "customer_id": str(jim.pk), "external_id": "chat-1", "summary": "First"},
        format="json",
    )
    assert first.status_code == 201
    before = row_counts()
    again = agent_api.post(
        "/api/v1/interactions",
        {"channel": "chat", "external_id": "chat-1", "summary": "Second", "outcome": "maybe"},
        format="json",
    )
    _assert_rejected(again, "outcome", 400)
    assert row_counts() == before
    assert Interaction.objects.get(external_id="chat-1").summary == "First"


def test_the_wrap_up_end_may_equal_the_start(agent_api, interaction):
    response = agent_api.patch(
        f"/api/v1/interactions/{interaction.pk}",
        {"ended_at": (interaction.started_at + dt.timedelta(seconds=0)).isoformat()},
        format="json",
    )
    assert response.status_code == 200


def test_a_flat_ivr_object_is_accepted_and_echoed(agent_api, jim):
    ivr = {"intent": "billing", "postcode": "SW1A 1AA", "attempts": 2, "authenticated": True, "note": None}
    response = agent_api.post("/api/v1/context/lookup", {**LOOKUP, "ivr": ivr}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["ivr"] == ivr


# Every field of every write endpoint, given each wrong-typed or extreme value:
# whatever the answer, it is never a 500, and a refusal names the field and writes nothing.
ODD_VALUES = [None, True, 10**30, -1, 3.5, [], ["x"], {}, {"a": "b"}, "", "\x00", "\ud800", "x" * 5000]
WRITE_ENDPOINTS = {
    "customer-create": ("post", "/api/v1/customers", {"display_name": "Maria Garcia"}),
    "customer-patch": ("patch", "/api/v1/customers/{jim}", {}),
    "identity-add": ("post", "/api/v1/customers/{jim}/identities", {"kind": "email", "value": "m@example.com"}),
    "interaction-create": ("post", "/api/v1/interactions", {"channel": "chat"}),
    "interaction-wrap-up": ("patch", "/api/v1/interactions/{interaction}", {}),
    "lookup": ("post", "/api/v1/context/lookup", {"phone": "+1 212 555 0100"}),
    "token": ("post", "/api/v1/auth/token", {"username": "alice", "password": "pw-for-tests"}),
}
FIELDS = {
    "customer-create": ["display_name", "preferred_name", "language", "timezone", "tier", "identities"],
    "customer-patch": ["display_name", "preferred_name", "language", "timezone", "tier"],
    "identity-add": ["kind", "value", "verified"],
    "interaction-create": [
        "channel",
        "direction",
        "customer_id",
        "phone",
        "email",
        "account",
        "started_at",
        "ended_at",
        "reason",
        "reason_text",
        "summary",
        "outcome",
        "agent",
        "queue",
        "external_id",
    ],
    "interaction-wrap-up": [
        "reason",
        "reason_text",
        "summary",
        "outcome",
        "ended_at",
        "customer_id",
        "facts",
        "preferences",
    ],
    "lookup": ["channel", "phone", "email", "account", "customer_id", "call_id", "verified", "ivr"],
    "token": ["username", "password"],
}
FIELD_CASES = [(endpoint, field) for endpoint, fields in FIELDS.items() for field in fields]


@pytest.mark.parametrize(("endpoint", "field"), FIELD_CASES, ids=[f"{e}.{f}" for e, f in FIELD_CASES])
def test_odd_values_in_any_field_are_never_a_500(agent_api, jim, interaction, endpoint, field):
    method, path, valid = WRITE_ENDPOINTS[endpoint]
    path = path.format(jim=jim.pk, interaction=interaction.pk)
    for value in ODD_VALUES:
        before = row_counts()
        response = _send(agent_api, method, path, {**valid, field: value})
        assert response.status_code < 500, (field, value, response.content[:300])
        if response.status_code >= 400:
            # Wrong credentials are not a field error: the token endpoint does not say which was wrong.
            named = response.json() if endpoint != "token" else {**response.json(), field: None}
            assert field in named, (field, value, response.json())
            assert row_counts() == before, (field, value)
