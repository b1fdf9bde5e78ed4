"""POST /api/v1/calls: the CTI connector reports calls; the named agent's page hears of them."""

import pytest

from context import events
from crm.models import AccessAudit, Interaction
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/calls"


def ringing(**overrides):
    body = {
        "event": "ringing",
        "agent": "alice",
        "channel": "phone",
        "phone": "(212) 555-0100",
        "call_id": "call-1",
        "verified": ["phone"],
        "ivr": {"intent": "billing", "postcode": "SW1A 1AA"},
    }
    body.update(overrides)
    return body


@pytest.fixture
def post_call(integration_api, alice, django_capture_on_commit_callbacks):
    def post(body):
        with django_capture_on_commit_callbacks(execute=True):
            return integration_api.post(URL, body, format="json")

    return post


@pytest.mark.parametrize(
    ("client_fixture", "expected"),
    [
        ("anon_api", 401),
        ("norole_api", 403),
        ("agent_api", 403),
        ("supervisor_api", 403),
        ("integration_api", 202),
    ],
)
def test_only_the_integration_role_posts_call_events(request, alice, jim, client_fixture, expected):
    client = request.getfixturevalue(client_fixture)
    response = client.post(URL, ringing(), format="json")
    assert response.status_code == expected, response.content
    assert Interaction.objects.filter(call_id="call-1").count() == (1 if expected == 202 else 0)


def test_a_ringing_call_opens_the_contact_for_the_named_agent(post_call, alice, ivy, jim):
    response = post_call(ringing())
    assert response.status_code == 202, response.json()
    interaction = Interaction.objects.get(pk=response.json()["interaction_id"])
    assert (interaction.customer, interaction.agent, interaction.call_id) == (jim, alice, "call-1")
    assert interaction.ivr == {"intent": "billing", "postcode": "SW1A 1AA"}
    # The lookup is audited as done by the connector, for this contact.
    assert AccessAudit.objects.filter(actor=ivy, customer_id=jim.pk, interaction_id=interaction.pk).exists()


def test_the_call_is_the_same_interaction_a_lookup_with_its_call_id_returns(post_call, agent_api, jim):
    popped = post_call(ringing()).json()["interaction_id"]
    connected = post_call(ringing(event="connected")).json()["interaction_id"]
    looked_up = agent_api.post(
        "/api/v1/context/lookup", {"phone": "+12125550100", "call_id": "call-1"}, format="json"
    ).json()
    assert popped == connected == looked_up["interaction_id"]
    assert Interaction.objects.filter(call_id="call-1").count() == 1


def test_ringing_pushes_the_lookup_card_to_the_agent_after_commit(post_call, alice, jim):
    with events.subscribe(alice.pk) as subscription:
        response = post_call(ringing())
        payload = subscription.get(timeout=2)
    assert payload is not None, "no event reached the agent's subscription"
    card = payload["card"]
    assert (payload["type"], payload["event"]) == ("call", "ringing")
    assert payload["interaction_id"] == card["interaction_id"] == response.json()["interaction_id"]
    assert card["match"] == "unique" and card["customer"]["display_name"] == "James Okafor"
    assert card["verified"] is True
    assert {"phone", "intent", "postcode"} <= set(card["do_not_ask"])
    assert payload["call"]["phone"] == "(212) 555-0100"
    # Kept as the agent's current card, for a page that reconnects.
    assert events.current_get(alice.pk)["interaction_id"] == card["interaction_id"]


def test_nothing_is_pushed_while_the_transaction_is_open(
    integration_api, alice, jim, django_capture_on_commit_callbacks
):
    with events.subscribe(alice.pk) as subscription:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            integration_api.post(URL, ringing(), format="json")
        assert subscription.get(timeout=0.3) is None
        assert events.current_get(alice.pk) is None
        assert len(callbacks) == 1


def test_a_call_from_an_unknown_number_pops_with_match_none(post_call, alice):
    with events.subscribe(alice.pk) as subscription:
        post_call(ringing(phone="+1 646 555 0199", ivr={"intent": "outage"}))
        payload = subscription.get(timeout=2)
    assert payload["card"]["match"] == "none"
    assert payload["card"]["ivr"] == {"intent": "outage"}
    assert Interaction.objects.get(call_id="call-1").customer is None


def test_ended_closes_the_contact_and_tells_the_page(post_call, alice, jim):
    interaction_id = post_call(ringing()).json()["interaction_id"]
    with events.subscribe(alice.pk) as subscription:
        response = post_call({"event": "ended", "agent": "alice", "call_id": "call-1"})
        payload = subscription.get(timeout=2)
    assert response.status_code == 202, response.json()
    interaction = Interaction.objects.get(pk=interaction_id)
    assert interaction.ended_at is not None
    assert payload["type"] == "ended" and payload["interaction_id"] == interaction_id
    # The current card stays (the agent is wrapping up) but is marked ended.
    assert events.current_get(alice.pk)["ended_at"] is not None


def test_a_repeated_ended_keeps_the_first_end_time(post_call, alice, jim):
    post_call(ringing())
    post_call({"event": "ended", "agent": "alice", "call_id": "call-1"})
    first = Interaction.objects.get(call_id="call-1").ended_at
    assert post_call({"event": "ended", "agent": "alice", "call_id": "call-1"}).status_code == 202
    assert Interaction.objects.get(call_id="call-1").ended_at == first


def test_ended_for_an_unknown_call_is_404_naming_call_id(post_call, alice):
    response = post_call({"event": "ended", "agent": "alice", "call_id": "never-rang"})
    assert response.status_code == 404
    assert "call_id" in response.json()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"event": "on_hold"}, "event"),
        ({"agent": None}, "agent"),
        ({"agent": "nosuchagent"}, "agent"),
        ({"agent": "ivy"}, "agent"),  # the connector itself is not an agent
        ({"call_id": None}, "call_id"),
        ({"phone": "not a number"}, "phone"),
        ({"channel": "pigeon"}, "channel"),
        ({"verified": ["fingerprint"]}, "verified"),
        ({"ivr": "billing"}, "ivr"),
        ({"ivr": {"postcode": "SW1A\u0000"}}, "ivr"),  # PostgreSQL JSON refuses NUL
        ({"ivr": {"nested": {"deep": ["x" * 100] * 1000}}}, "ivr"),  # a document, not IVR answers
        ({"verified": ["phone", "email", "account", "customer_id", "phone"]}, "verified"),
        ({"queue": "sales"}, "queue"),  # unknown field
    ],
)
def test_bad_input_is_400_naming_the_field_and_changes_nothing(post_call, alice, jim, overrides, field):
    body = {k: v for k, v in ringing(**overrides).items() if v is not None}
    with events.subscribe(alice.pk) as subscription:
        response = post_call(body)
        assert subscription.get(timeout=0.2) is None
    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    assert not Interaction.objects.exists()


@pytest.mark.parametrize("caller_id", [None, "", "anonymous", "Withheld"])
def test_a_call_from_a_withheld_number_pops_as_an_unknown_caller(post_call, alice, caller_id):
    body = ringing(phone=caller_id, verified=[])
    if caller_id is None:
        body.pop("phone")
    with events.subscribe(alice.pk) as subscription:
        response = post_call(body)
        pushed = subscription.get(timeout=2)
    assert response.status_code == 202, response.content
    interaction = Interaction.objects.get(pk=response.json()["interaction_id"])
    assert interaction.customer_id is None and interaction.identifiers == {}
    assert pushed["card"]["match"] == "none"
    ended = post_call({"event": "ended", "agent": "alice", "call_id": body["call_id"]})
    assert ended.status_code == 202


def test_a_supervisor_can_take_calls(post_call, sam, jim):
    response = post_call(ringing(agent="sam"))
    assert response.status_code == 202
    assert Interaction.objects.get(call_id="call-1").agent == sam


def test_an_inactive_agent_cannot_be_put_through(post_call, jim):
    UserFactory(username="gone", role="agent", is_active=False)
    response = post_call(ringing(agent="gone"))
    assert response.status_code == 400 and "agent" in response.json()


def test_the_call_is_recorded_even_when_the_push_cannot_be_delivered(post_call, alice, jim, settings, caplog):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    response = post_call(ringing())
    assert response.status_code == 202
    assert Interaction.objects.filter(call_id="call-1", customer=jim).exists()
    assert "publish" in caplog.text or "Error calling" in caplog.text
