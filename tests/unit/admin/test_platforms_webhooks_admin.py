"""The admin: agents' telephony identities, calls for unknown agents, webhook endpoints and deliveries."""

import pytest
from django.utils import timezone

from crm.models import PlatformEvent, StaffProfile, WebhookAttempt, WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db


def test_a_supervisor_sets_an_agents_platform_identities(supervisor_client, alice):
    profile = StaffProfile.objects.create(user=alice)
    url = f"/admin/crm/staffprofile/{profile.pk}/change/"
    page = supervisor_client.get(url)
    assert page.status_code == 200
    for field in ("twilio_worker_sid", "twilio_contact_uri", "connect_agent", "genesys_user_id"):
        assert f'name="{field}"' in page.content.decode()
    response = supervisor_client.post(
        url,
        {"user": alice.pk, "twilio_contact_uri": "client:alice", "connect_agent": "", "twilio_worker_sid": "",
         "genesys_user_id": "77777777-0000-4000-8000-000000000001"},
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:2000]
    profile.refresh_from_db()
    assert (profile.twilio_contact_uri, profile.genesys_user_id) == (
        "client:alice",
        "77777777-0000-4000-8000-000000000001",
    )


def test_calls_for_unknown_agents_are_listed_with_a_warning(supervisor_client):
    PlatformEvent.objects.create(
        platform="genesys", event_id="e1", event="connected", call_id="conv-1",
        agent_identity="77777777-0000-4000-8000-00000000dead", outcome="unmatched_agent",
    )  # fmt: skip
    page = supervisor_client.get("/admin/crm/platformevent/?outcome=unmatched_agent")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Calls arrived for agents nobody has set up" in text
    assert "77777777-0000-4000-8000-00000000dead" in text


def test_an_endpoint_with_a_refused_url_is_not_saved(supervisor_client, settings):
    settings.CRM_WEBHOOK_ALLOW_PRIVATE = False
    response = supervisor_client.post(
        "/admin/crm/webhookendpoint/add/",
        {"url": "http://169.254.169.254/latest", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
         "event_types": ["case.opened"], "active": "on", "max_in_flight": 4},
    )  # fmt: skip
    assert response.status_code == 200
    assert "Refused" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_a_delivery_shows_its_attempts_and_can_be_sent_again(supervisor_client):
    endpoint = WebhookEndpoint.objects.create(url="https://hooks.example.com/x", event_types=["case.opened"])
    now = timezone.now()
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint, event_type="case.opened", event_key="case:1", payload={"data": {"case_id": 1}},
        status="failed", attempts=1, next_attempt_at=now, give_up_at=now,
    )  # fmt: skip
    WebhookAttempt.objects.create(delivery=delivery, status_code=503, latency_ms=120, response_excerpt="busy, sorry")
    page = supervisor_client.get(f"/admin/crm/webhookdelivery/{delivery.pk}/change/")
    assert page.status_code == 200
    assert "busy, sorry" in page.content.decode() and "503" in page.content.decode()

    response = supervisor_client.post(
        "/admin/crm/webhookdelivery/", {"action": "send_again", "_selected_action": [str(delivery.pk)]}
    )
    assert response.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.give_up_at > now
