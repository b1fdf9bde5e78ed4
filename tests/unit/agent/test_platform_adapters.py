"""POST /api/v1/calls/{twilio,amazon-connect,genesys}: the vendors' sample payloads (tests/data/cti) pop the card.

Each platform's events map onto the call events: the platform's call id is the
interaction's call_id, its agent identity (on StaffProfile) picks the agent whose
page is told, and the end of the call closes the contact. Bad signatures,
unknown agents and malformed bodies are refused (or acknowledged) with nothing written.
"""

import hashlib
import hmac
import json
import logging
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest
from django.test import Client
from twilio.request_validator import RequestValidator

from context import events
from crm.models import AccessAudit, Interaction, PlatformEvent, StaffProfile
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

CTI = Path(__file__).resolve().parents[2] / "data" / "cti"
TOKEN = "fake_auth_token_0123456789abcdef"
TWILIO_URL = "/api/v1/calls/twilio"
CONNECT_URL = "/api/v1/calls/amazon-connect"
GENESYS_URL = "/api/v1/calls/genesys"
CALL_SID = "CA11111111111111111111111111111111"
CONTACT_ID = "cccccccc-0000-4000-8000-000000000001"
CONVERSATION_ID = "99999999-0000-4000-8000-000000000001"


@pytest.fixture
def alice_profile(alice):
    """Alice is set up on all three platforms, with the identities the samples carry."""
    return StaffProfile.objects.create(
        user=alice,
        twilio_worker_sid="WKaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        twilio_contact_uri="client:agent_alice",
        connect_agent="dddddddd-0000-4000-8000-000000000001",
        genesys_user_id="77777777-0000-4000-8000-000000000001",
    )


@pytest.fixture(autouse=True)
def _twilio_token(settings):
    settings.CRM_TWILIO_AUTH_TOKEN = TOKEN
    settings.CRM_TWILIO_PUBLIC_URL = ""


def sample(platform: str, name: str) -> str:
    return (CTI / platform / name).read_text()


def twilio_post(body: str, *, signature: str | None = None):
    params = dict(parse_qsl(body, keep_blank_values=True))
    if signature is None:
        signature = RequestValidator(TOKEN).compute_signature(f"http://testserver{TWILIO_URL}", params)
    return Client().post(
        TWILIO_URL, data=body, content_type="application/x-www-form-urlencoded", HTTP_X_TWILIO_SIGNATURE=signature
    )


def nothing_written() -> bool:
    return not Interaction.objects.exists() and not PlatformEvent.objects.exists() and not AccessAudit.objects.exists()


@pytest.fixture
def commit(django_capture_on_commit_callbacks):
    """Run a request and the after-commit pushes it queued."""

    def run(call):
        with django_capture_on_commit_callbacks(execute=True):
            return call()

    return run


# --- Twilio ------------------------------------------------------------------------------------


def test_the_sample_voice_callbacks_pop_jims_card_for_alice_and_the_customer_leg_closes_it(
    alice_profile, alice, jim, commit
):
    # the customer's call arrives (Voice URL): no agent yet, nothing to pop
    first = commit(lambda: twilio_post(sample("twilio", "voice_inbound_ringing.txt")))
    assert first.status_code == 202 and first.json()["status"] == "ignored", first.content
    assert not Interaction.objects.exists()

    # the agent leg <Dial> made rings at client:agent_alice: her page shows Jim
    ringing = commit(lambda: twilio_post(sample("twilio", "voice_status_ringing.txt")))
    assert ringing.status_code == 202, ringing.content
    assert ringing.json()["status"] == "applied"
    interaction = Interaction.objects.get()
    assert (interaction.call_id, interaction.agent, interaction.customer) == (CALL_SID, alice, jim)
    pushed = events.current_get(alice.pk)
    assert pushed["event"] == "ringing" and pushed["card"]["customer"]["preferred_name"] == "Jim"

    answered = commit(lambda: twilio_post(sample("twilio", "voice_status_in-progress.txt")))
    assert answered.json()["interaction_id"] == str(interaction.pk)
    assert events.current_get(alice.pk)["event"] == "connected"

    # her leg ending alone does not close the call; the customer's hang-up does
    commit(lambda: twilio_post(sample("twilio", "voice_status_completed.txt")))
    interaction.refresh_from_db()
    assert interaction.ended_at is None
    ended = commit(lambda: twilio_post(sample("twilio", "voice_status_completed_parent.txt")))
    assert ended.status_code == 202 and ended.json()["status"] == "applied", ended.content
    interaction.refresh_from_db()
    assert interaction.ended_at is not None
    assert events.current_get(alice.pk)["ended_at"] is not None
    assert Interaction.objects.count() == 1


def test_taskrouter_reservations_pop_the_card_for_the_worker_with_the_task_attributes_as_ivr(
    alice_profile, alice, jim, commit
):
    created = commit(lambda: twilio_post(sample("twilio", "taskrouter_event_reservation_created.txt")))
    assert created.status_code == 202 and created.json()["status"] == "applied", created.content
    accepted = commit(lambda: twilio_post(sample("twilio", "taskrouter_event_reservation_accepted.txt")))
    assert accepted.json()["interaction_id"] == created.json()["interaction_id"]
    interaction = Interaction.objects.get()
    assert (interaction.call_id, interaction.agent, interaction.customer) == (CALL_SID, alice, jim)
    assert interaction.ivr == {"selected_language": "en"}
    assert events.current_get(alice.pk)["event"] == "connected"


def test_an_assignment_callback_is_acknowledged_and_changes_nothing(alice_profile, jim):
    response = twilio_post(sample("twilio", "taskrouter_assignment_callback.txt"))
    assert response.status_code == 202 and response.json()["status"] == "ignored"
    assert nothing_written()


@pytest.mark.parametrize(
    "case", ["wrong signature", "no signature", "other token", "other url", "tampered body", "no token configured"]
)
def test_a_twilio_request_that_twilio_did_not_sign_is_refused_and_changes_nothing(case, alice_profile, jim, settings):
    body = sample("twilio", "voice_status_ringing.txt")
    params = dict(parse_qsl(body, keep_blank_values=True))
    signature = {
        "wrong signature": "AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "no signature": "",
        "other token": RequestValidator("another-token").compute_signature(f"http://testserver{TWILIO_URL}", params),
        "other url": RequestValidator(TOKEN).compute_signature("https://crm.example.test/api/v1/calls/twilio", params),
    }.get(case)
    if case == "tampered body":
        signature = RequestValidator(TOKEN).compute_signature(f"http://testserver{TWILIO_URL}", params)
        body = body.replace("agent_alice", "agent_mallory")
    if case == "no token configured":
        settings.CRM_TWILIO_AUTH_TOKEN = ""
    response = twilio_post(body, signature=signature)
    assert response.status_code == 403, response.content
    assert nothing_written()


def test_the_public_url_setting_is_what_the_signature_covers_behind_a_proxy(alice_profile, jim, settings):
    settings.CRM_TWILIO_PUBLIC_URL = "https://crm.example.test/api/v1/calls/twilio"
    signatures = dict(
        line.split("\t") for line in sample("twilio", "SIGNATURES.txt").splitlines() if line and line[0] != "#"
    )
    body = sample("twilio", "voice_status_ringing.txt")
    response = twilio_post(body, signature=signatures["voice_status_ringing.txt"])
    assert response.status_code == 202, response.content
    assert Interaction.objects.filter(call_id=CALL_SID).exists()


def test_a_replayed_twilio_callback_changes_nothing(alice_profile, alice, jim, commit):
    first = commit(lambda: twilio_post(sample("twilio", "voice_status_ringing.txt")))
    events.current_clear(alice.pk)
    again = commit(lambda: twilio_post(sample("twilio", "voice_status_ringing.txt")))
    assert again.status_code == 202
    assert again.json() == {
        "status": "duplicate",
        "outcome": "applied",
        "interaction_id": first.json()["interaction_id"],
    }
    assert Interaction.objects.count() == 1 and PlatformEvent.objects.count() == 1
    assert events.current_get(alice.pk) is None  # not pushed twice


def test_a_call_for_an_agent_nobody_set_up_is_accepted_with_a_warning_and_listed(jim, caplog):
    with caplog.at_level(logging.WARNING, logger="context.adapters"):
        response = twilio_post(sample("twilio", "voice_status_ringing.txt"))
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "unmatched_agent"
    assert "client:agent_alice" in response.json()["warning"]
    assert "client:agent_alice" in caplog.text
    assert not Interaction.objects.exists()
    unmatched = PlatformEvent.objects.get()
    assert (unmatched.outcome, unmatched.agent_identity, unmatched.call_id) == (
        "unmatched_agent",
        "client:agent_alice",
        CALL_SID,
    )
    # the platform retrying it adds no second row
    assert twilio_post(sample("twilio", "voice_status_ringing.txt")).status_code == 202
    assert PlatformEvent.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("AccountSid=AC1&From=%2B12125550100", "CallSid"),
        ("CallSid=CA1&ParentCallSid=CA0&To=client%3Aagent_alice", "CallStatus"),
        ("EventType=reservation.created&TaskSid=WT1&WorkerSid=WK1&TaskAttributes=%7Bnot+json", "TaskAttributes"),
        ("EventType=reservation.created&TaskSid=WT1&TaskAttributes=%7B%7D", "WorkerSid"),
        (
            "EventType=reservation.created&TaskSid=WT1&WorkerSid=WKaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa&TaskAttributes="
            + "%7B%22call_sid%22%3A%22CA1%22%2C%22menu%22%3A%22"
            + "x" * 5000
            + "%22%7D",
            "ivr",
        ),
    ],
)
def test_a_signed_but_malformed_twilio_body_is_a_clear_400_and_changes_nothing(alice_profile, body, field):
    response = twilio_post(body)
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert nothing_written()


# --- Amazon Connect ----------------------------------------------------------------------------


def connect_post(client, name_or_body, *, headers=None):
    body = sample("connect", name_or_body) if name_or_body.endswith(".json") else name_or_body
    return client.post(CONNECT_URL, data=body, content_type="application/json", headers=headers or {})


def test_the_contact_flow_lookup_answers_a_flat_string_map_and_connected_to_agent_pops_that_card(
    alice_profile, alice, ivy, jim, commit
):
    api = client_for(ivy)
    looked_up = commit(lambda: connect_post(api, "contact_flow_lambda_event.json"))
    assert looked_up.status_code == 200, looked_up.content
    answer = looked_up.json()
    assert set(answer) == {"match", "customer_name", "flags", "repeat_contact", "interaction_id"}
    assert all(isinstance(value, str) for value in answer.values())
    assert (answer["match"], answer["customer_name"], answer["repeat_contact"]) == ("true", "Jim", "false")
    interaction = Interaction.objects.get(pk=answer["interaction_id"])
    assert (interaction.call_id, interaction.customer) == (CONTACT_ID, jim)
    assert interaction.ivr == {"ivr_intent": "billing", "ivr_verified": "true"}

    # INITIATED has no agent: acknowledged; CONNECTED_TO_AGENT pops the same contact for Alice
    assert commit(lambda: connect_post(api, "contact_event_initiated.json")).json()["status"] == "ignored"
    connected = commit(lambda: connect_post(api, "contact_event_connected_to_agent.json"))
    assert connected.status_code == 202 and connected.json()["interaction_id"] == answer["interaction_id"]
    interaction.refresh_from_db()
    assert interaction.agent == alice
    assert events.current_get(alice.pk)["card"]["customer"]["preferred_name"] == "Jim"

    ended = commit(lambda: connect_post(api, "contact_event_disconnected.json"))
    assert ended.status_code == 202 and ended.json()["status"] == "applied"
    interaction.refresh_from_db()
    assert interaction.ended_at is not None
    assert Interaction.objects.count() == 1


def test_connect_posts_need_the_integration_token_or_the_shared_secret(alice_profile, jim, settings, norole_api):
    settings.CRM_CONNECT_SHARED_SECRET = "s3cret-api-key"
    anonymous = Client()
    assert connect_post(anonymous, "contact_event_connected_to_agent.json").status_code in (401, 403)
    wrong = connect_post(anonymous, "contact_event_connected_to_agent.json", headers={"X-Goldfish-Key": "guess"})
    assert wrong.status_code in (401, 403)
    assert connect_post(norole_api, "contact_event_connected_to_agent.json").status_code == 403
    assert nothing_written()
    right = connect_post(
        anonymous, "contact_event_connected_to_agent.json", headers={"X-Goldfish-Key": "s3cret-api-key"}
    )
    assert right.status_code == 202, right.content
    assert Interaction.objects.filter(call_id=CONTACT_ID).exists()


def test_genesys_posts_signed_with_the_shared_secret_are_accepted_and_tampered_ones_refused(
    alice_profile, alice, jim, settings
):
    settings.CRM_GENESYS_SHARED_SECRET = "genesys-shared-secret"
    body = sample("genesys", "eventbridge_user_start.json").encode()

    def post(data, signature):
        return Client().post(
            GENESYS_URL, data=data, content_type="application/json", headers={"X-Goldfish-Signature": signature}
        )

    good = "sha256=" + hmac.new(b"genesys-shared-secret", body, hashlib.sha256).hexdigest()
    assert post(body.replace(b"VOICE", b"CHAT"), good).status_code in (401, 403)  # tampered body
    assert post(body, "sha256=" + "0" * 64).status_code in (401, 403)
    other = "sha256=" + hmac.new(b"another-secret", body, hashlib.sha256).hexdigest()
    assert post(body, other).status_code in (401, 403)
    assert nothing_written()
    response = post(body, good)
    assert response.status_code == 202 and response.json()["status"] == "applied", response.content
    assert Interaction.objects.get().agent == alice


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("not json", "detail"),
        ("[]", "detail-type"),
        ('{"detail-type": "Something Else"}', "detail-type"),
        (
            '{"detail-type": "Amazon Connect Contact Event", "id": "e1",'
            ' "detail": {"eventType": "CONNECTED_TO_AGENT"}}',
            "contactId",
        ),
        (
            '{"detail-type": "Amazon Connect Contact Event", "id": "e1",'
            ' "detail": {"eventType": "CONNECTED_TO_AGENT", "contactId": "c1"}}',
            "agentInfo",
        ),
        ('{"Name": "ContactFlowEvent", "Details": {}}', "Details"),
        (
            '{"Name": "ContactFlowEvent", "Details": {"ContactData": {"ContactId": "c1", "Attributes": {"k": "'
            + "x" * 5000
            + '"}}}}',
            "ivr",
        ),
    ],
)
def test_a_malformed_connect_body_is_a_clear_400_and_changes_nothing(alice_profile, ivy, body, field):
    response = connect_post(client_for(ivy), body)
    assert response.status_code == 400, response.content
    if field:
        assert field in response.json()
    assert nothing_written()


def test_a_replayed_eventbridge_event_changes_nothing(alice_profile, ivy, jim, commit):
    api = client_for(ivy)
    first = commit(lambda: connect_post(api, "contact_event_connected_to_agent.json"))
    again = commit(lambda: connect_post(api, "contact_event_connected_to_agent.json"))
    assert again.json()["status"] == "duplicate" and again.json()["interaction_id"] == first.json()["interaction_id"]
    assert PlatformEvent.objects.count() == 1


# --- Genesys Cloud -----------------------------------------------------------------------------


def test_genesys_user_start_pops_the_card_for_the_user_and_customer_end_closes_it(
    alice_profile, alice, ivy, jim, commit
):
    api = client_for(ivy)

    def post(name):
        return commit(lambda: api.post(GENESYS_URL, data=sample("genesys", name), content_type="application/json"))

    assert post("eventbridge_customer_start.json").json()["status"] == "ignored"
    started = post("eventbridge_user_start.json")
    assert started.status_code == 202 and started.json()["status"] == "applied", started.content
    interaction = Interaction.objects.get()
    assert (interaction.call_id, interaction.agent, interaction.customer) == (CONVERSATION_ID, alice, jim)
    assert events.current_get(alice.pk)["card"]["customer"]["preferred_name"] == "Jim"
    assert post("eventbridge_user_end.json").json()["status"] == "ignored"
    assert post("eventbridge_customer_end.json").json()["status"] == "applied"
    assert post("eventbridge_acw.json").json()["status"] == "ignored"
    interaction.refresh_from_db()
    assert interaction.ended_at is not None
    # the same event again (an EventBridge retry) changes nothing
    assert post("eventbridge_user_start.json").json()["status"] == "duplicate"
    assert Interaction.objects.count() == 1


def test_genesys_accepts_the_bare_notification_a_workflow_data_action_posts(alice_profile, alice, ivy, jim):
    detail = json.loads(sample("genesys", "eventbridge_user_start.json"))["detail"]
    bare = {"topicName": detail["topicName"], "eventBody": detail["eventBody"]}
    response = client_for(ivy).post(GENESYS_URL, bare, format="json")
    assert response.status_code == 202 and response.json()["status"] == "applied", response.content
    assert Interaction.objects.get().agent == alice


def test_a_genesys_user_nobody_set_up_is_a_202_with_a_warning(ivy, jim):
    response = client_for(ivy).post(
        GENESYS_URL, data=sample("genesys", "eventbridge_user_start.json"), content_type="application/json"
    )
    assert response.status_code == 202 and response.json()["status"] == "unmatched_agent"
    assert PlatformEvent.objects.get().agent_identity == "77777777-0000-4000-8000-000000000001"
    assert not Interaction.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"topicName": "v2.users.1.presence", "eventBody": {}}, "topicName"),
        ({"topicName": f"v2.detail.events.conversation.{CONVERSATION_ID}.user.start"}, "eventBody"),
        (
            {
                "topicName": f"v2.detail.events.conversation.{CONVERSATION_ID}.user.start",
                "eventBody": {"conversationId": "x"},
            },
            "conversationId",
        ),
        (
            {
                "topicName": f"v2.detail.events.conversation.{CONVERSATION_ID}.user.start",
                "eventBody": {"ani": "tel:+1"},
            },
            "userId",
        ),
    ],
)
def test_a_malformed_genesys_body_is_a_clear_400_and_changes_nothing(alice_profile, ivy, body, field):
    response = client_for(ivy).post(GENESYS_URL, body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert nothing_written()


def test_genesys_needs_the_integration_token(alice_profile, jim, agent_api):
    body = sample("genesys", "eventbridge_user_start.json")
    assert Client().post(GENESYS_URL, data=body, content_type="application/json").status_code in (401, 403)
    assert agent_api.post(GENESYS_URL, data=body, content_type="application/json").status_code == 403
    assert nothing_written()


def test_form_encoding_of_samples_is_what_twilio_posts():
    # The sample bodies are one line of application/x-www-form-urlencoded, as posted.
    for path in (CTI / "twilio").glob("*.txt"):
        if path.name != "SIGNATURES.txt":
            text = path.read_text()
            assert "\n" not in text.strip()
            assert urlencode(parse_qsl(text, keep_blank_values=True))
