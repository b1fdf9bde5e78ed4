"""A number that could exist but that the phone metadata does not list as assigned (issue 11, CONTRACT.md)."""

import pytest

from crm.models import Feedback, Identity, Interaction

pytestmark = pytest.mark.django_db

NEW_RANGE = "+44 7700 900123"  # right length for the UK, in a range libphonenumber marks unassigned
E164 = "+447700900123"


def test_lookup_with_a_possible_number_pops_no_match_instead_of_refusing(agent_api):
    response = agent_api.post("/api/v1/context/lookup", {"phone": NEW_RANGE}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["match"] == "none"


def test_lookup_finds_the_customer_who_holds_a_possible_number(agent_api, jim):
    Identity.objects.create(customer=jim, kind="phone", value=NEW_RANGE, normalized=E164)

    response = agent_api.post("/api/v1/context/lookup", {"phone": "0044 7700 900 123"}, format="json")

    assert response.status_code == 200
    assert (response.json()["match"], response.json()["customer"]["id"]) == ("unique", str(jim.pk))


def test_a_call_from_a_possible_number_is_recorded_in_e164(integration_api, alice, django_capture_on_commit_callbacks):
    body = {"event": "ringing", "agent": "alice", "channel": "phone", "phone": NEW_RANGE, "call_id": "call-new"}
    with django_capture_on_commit_callbacks(execute=True):
        response = integration_api.post("/api/v1/calls", body, format="json")

    assert response.status_code == 202, response.json()
    assert Interaction.objects.get().identifiers == {"phone": E164}


def test_feedback_and_identities_accept_a_possible_number(anon_api, agent_api, jim):
    feedback = anon_api.post("/api/v1/feedback", {"phone": NEW_RANGE, "rating": 5}, format="json")
    identity = agent_api.post(
        f"/api/v1/customers/{jim.pk}/identities", {"kind": "phone", "value": NEW_RANGE}, format="json"
    )

    assert feedback.status_code == 202, feedback.json()
    assert Feedback.objects.get().pk is not None
    assert identity.status_code == 201, identity.json()
    assert Identity.objects.filter(customer=jim, normalized=E164).exists()
