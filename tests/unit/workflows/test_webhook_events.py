"""Each workflow event writes its webhook delivery where it happens, once, with ids and kinds only."""

import datetime as dt
import json

import pytest

from crm import feedback as workflows
from crm import follow_ups
from crm.models import Case, FollowUp, Recognition, WebhookDelivery, WebhookEndpoint, WebhookEventType
from tests.factories import InteractionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def endpoint(db):
    return WebhookEndpoint.objects.create(url="https://hooks.example.com/all", event_types=WebhookEventType.values)


def events() -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for delivery in WebhookDelivery.objects.order_by("created_at"):
        found.setdefault(delivery.event_type, []).append(delivery.payload["data"])
    return found


def test_praise_emits_recognition_created_and_feedback_processed_once(endpoint, jane, sofia, jim):
    interaction = InteractionFactory(customer=jim, agent=jane)
    feedback = workflows.feedback_submit(interaction_id=interaction.pk, rating=5, text="So helpful, thank you!")

    workflows.feedback_process(str(feedback.pk))
    workflows.feedback_process(str(feedback.pk))  # a redelivered message

    recognition = Recognition.objects.get()
    assert events() == {
        "recognition.created": [
            {
                "recognition_id": str(recognition.pk),
                "feedback_id": str(feedback.pk),
                "staff_id": jane.pk,
                "interaction_id": str(interaction.pk),
            }
        ],
        "feedback.processed": [
            {
                "feedback_id": str(feedback.pk),
                "sentiment": "positive",
                "interaction_id": str(interaction.pk),
                "customer_id": str(jim.pk),
                "case_id": None,
            }
        ],
    }
    assert "So helpful" not in json.dumps([d.payload for d in WebhookDelivery.objects.all()])


def test_a_complaint_emits_case_opened_and_an_overdue_follow_up_emits_follow_up_overdue(endpoint, jane, sofia, jim):
    interaction = InteractionFactory(customer=jim, agent=jane)
    feedback = workflows.feedback_submit(interaction_id=interaction.pk, rating=1, text="Nobody called me back.")
    workflows.feedback_process(str(feedback.pk))

    case = Case.objects.get()
    follow_up = FollowUp.objects.get(feedback=feedback)
    assert events()["case.opened"] == [
        {
            "case_id": str(case.pk),
            "kind": "service_recovery",
            "customer_id": str(jim.pk),
            "feedback_id": str(feedback.pk),
        }
    ]
    assert events()["feedback.processed"][0]["case_id"] == str(case.pk)

    follow_ups.follow_ups_escalate(now=follow_up.due_at + dt.timedelta(minutes=1))
    follow_ups.follow_ups_escalate(now=follow_up.due_at + dt.timedelta(minutes=2))  # a second sweep

    (overdue,) = events()["follow_up.overdue"]
    assert overdue["follow_up_id"] == str(follow_up.pk) and overdue["escalation_level"] == 1
    assert overdue["case_id"] == str(case.pk) and overdue["kind"] == follow_up.kind
    assert "Nobody called" not in json.dumps([d.payload for d in WebhookDelivery.objects.all()])


def test_no_endpoint_no_delivery(jane, sofia, jim):
    interaction = InteractionFactory(customer=jim, agent=jane)
    feedback = workflows.feedback_submit(interaction_id=interaction.pk, rating=5, text="Great")
    workflows.feedback_process(str(feedback.pk))
    assert not WebhookDelivery.objects.exists()
