"""The public feedback intake reveals nothing about a customer and mails nobody it is told to.

Anyone can post feedback with a stranger's phone number and their own address: the
service may link the feedback to that customer (for the record), but e-mails only
addresses on file for the customer, and recognizes only staff who served them.
"""

from django.core import mail
from django.utils import timezone

from crm import feedback as workflows
from crm.models import Feedback, FollowUp, FollowUpKind, Notification, Preference, Recognition
from tests.factories import InteractionFactory

URL = "/api/v1/feedback"
THANKS = "Thank you for your feedback"


def post(client, body: dict) -> Feedback:
    response = client.post(URL, body, format="json")
    assert response.status_code == 202
    feedback = Feedback.objects.get(pk=response.json()["id"])
    assert response.json() == {"id": str(feedback.pk), "status": "received"}
    workflows.feedback_process(str(feedback.pk))
    feedback.refresh_from_db()
    return feedback


def mail_to(address: str) -> list:
    return [m for m in mail.outbox if address in m.to]


def test_a_stranger_who_knows_a_phone_number_learns_nothing_by_giving_their_own_address(anon_api, jim):
    feedback = post(
        anon_api,
        {"phone": "(212) 555-0100", "email": "attacker@evil.example", "contact_consent": True, "rating": 5},
    )

    assert feedback.customer == jim  # kept with Jim's record
    assert mail.outbox == []  # nobody is mailed: the ticked box came with an address not on file
    follow_up = FollowUp.objects.get(feedback=feedback)
    assert (follow_up.kind, follow_up.customer) == (FollowUpKind.THANK_YOU_CALLBACK, jim)


def test_with_consent_on_file_the_thanks_go_to_the_address_on_file_not_the_one_typed(anon_api, jim):
    Preference.objects.create(customer=jim, key="contact_consent", value="true", recorded_at=timezone.now())

    post(anon_api, {"phone": "212 555 0100", "email": "attacker@evil.example", "rating": 5, "text": "Great"})

    assert mail_to("attacker@evil.example") == []
    thanks = [m for m in mail.outbox if m.subject == THANKS]
    assert [m.to for m in thanks] == [["jim@example.com"]]
    assert "Dear Jim" in thanks[0].body


def test_a_typed_address_is_used_when_it_is_one_on_file(anon_api, jim):
    post(anon_api, {"email": "Jim@Example.com", "contact_consent": True, "rating": 5})

    assert [m.to for m in mail.outbox if m.subject == THANKS] == [["jim@example.com"]]


def test_consent_ticked_without_an_address_is_not_consent_to_email(anon_api, jane, jim):
    interaction = InteractionFactory(customer=jim, agent=jane)

    feedback = post(anon_api, {"interaction_id": str(interaction.pk), "contact_consent": True, "rating": 5})

    assert FollowUp.objects.get(feedback=feedback).kind == FollowUpKind.THANK_YOU_CALLBACK
    assert mail_to("jim@example.com") == []


def test_unlinked_feedback_mails_no_customer_and_recognizes_nobody_it_names(anon_api, jane, sofia):
    feedback = post(
        anon_api,
        {"email": "victim@else.example", "contact_consent": True, "staff": ["jane"], "rating": 5, "text": "x"},
    )

    assert feedback.customer is None
    assert feedback.staff_named == ["jane"]  # the names are kept
    assert not Recognition.objects.exists()
    assert not Notification.objects.exists()
    assert not FollowUp.objects.exists()
    assert mail.outbox == []


def test_staff_named_who_never_served_the_customer_are_not_recognized(anon_api, jane, omar, sofia, jim):
    InteractionFactory(customer=jim, agent=jane)

    feedback = post(anon_api, {"phone": "+1 212 555 0100", "staff": ["jane", "omar"], "rating": 5, "text": "Thanks"})

    assert feedback.staff_named == ["jane", "omar"]
    assert list(Recognition.objects.values_list("staff__username", flat=True)) == ["jane"]
    assert mail_to("omar@goldfish.example") == []
    assert sorted(m.to[0] for m in mail.outbox) == ["jane@goldfish.example", "sofia@goldfish.example"]


def test_staff_named_on_a_contact_are_recognized_only_if_they_served_the_customer(anon_api, jane, omar, jim):
    interaction = InteractionFactory(customer=jim, agent=jane)

    post(anon_api, {"interaction_id": str(interaction.pk), "staff": ["omar"], "rating": 5})

    assert list(Recognition.objects.values_list("staff__username", flat=True)) == ["jane"]


def test_a_customer_erased_before_the_workflow_runs_is_not_contacted(anon_api, jim, sam):
    from crm import privacy

    Preference.objects.create(customer=jim, key="contact_consent", value="true", recorded_at=timezone.now())
    response = anon_api.post(URL, {"email": "jim@example.com", "rating": 5}, format="json")
    privacy.customer_erase(actor=sam, customer=jim)

    workflows.feedback_process(response.json()["id"])

    assert not FollowUp.objects.exists()
    assert mail.outbox == []
