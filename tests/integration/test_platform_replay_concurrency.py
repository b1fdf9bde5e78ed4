"""A platform delivering the same event twice at the same moment (an EventBridge retry racing) applies it once."""

import json
from pathlib import Path

import pytest
from django.test import Client

from context import events
from crm import tokens
from crm.models import Interaction, PlatformEvent, StaffProfile
from tests.concurrency import run_together
from tests.factories import CustomerFactory, IdentityFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "cti" / "genesys" / "eventbridge_user_start.json"


def test_the_same_genesys_event_posted_by_eight_threads_at_once_is_applied_once():
    agent = UserFactory(username="jane", role="agent")
    StaffProfile.objects.create(user=agent, genesys_user_id="77777777-0000-4000-8000-000000000001")
    customer = CustomerFactory(display_name="James Okafor")
    IdentityFactory(customer=customer, kind="phone", value="+12125550100", normalized="+12125550100")
    token = tokens.issue(UserFactory(username="cti", role="integration"))[0]
    body = SAMPLE.read_text()

    def post():
        response = Client().post(
            "/api/v1/calls/genesys", data=body, content_type="application/json", HTTP_AUTHORIZATION=f"Token {token}"
        )
        return response.status_code, json.loads(response.content)

    results = run_together(post, 8)

    assert not [r for r in results if isinstance(r, Exception)], results
    assert {status for status, _ in results} == {202}
    statuses = sorted(body["status"] for _, body in results)
    assert statuses == ["applied"] + ["duplicate"] * 7, statuses
    assert len({body["interaction_id"] for _, body in results}) == 1
    assert PlatformEvent.objects.count() == 1
    assert Interaction.objects.filter(call_id="99999999-0000-4000-8000-000000000001").count() == 1
    assert events.current_get(agent.pk)["event"] == "connected"
