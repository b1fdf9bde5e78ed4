"""Feedback that reached a customer by a roundabout way is still theirs: linked, exported and erased.

Two roundabout ways: feedback about a contact from an unknown caller that an agent
links to the customer afterwards, and feedback never linked at all that carries one
of the customer's identifiers.
"""

import json

from crm import feedback as workflows
from crm import privacy
from crm.models import Case, Feedback, FollowUp, Interaction, Notification, Recognition
from crm.services import interaction_wrap_up
from tests.factories import CustomerFactory, IdentityFactory, InteractionFactory

SECRET = "SECRET-DIAGNOSIS"


def pat():
    customer = CustomerFactory(display_name="Pat Secret")
    IdentityFactory(customer=customer, kind="email", value="pat@x.example", normalized="pat@x.example")
    return customer


def words_left(feedback: Feedback) -> list[str]:
    """Every stored string that may quote the feedback: its text, recognition quotes, staff notifications."""
    feedback.refresh_from_db()
    return [
        feedback.text,
        *Recognition.objects.filter(feedback=feedback).values_list("quote", flat=True),
        *Notification.objects.values_list("body", flat=True),
        *Notification.objects.values_list("subject", flat=True),
        *Case.objects.values_list("subject", flat=True),
    ]


def test_linking_a_contact_to_a_customer_brings_its_feedback_case_and_follow_up_along(jane, sofia, sam):
    customer = pat()
    contact = InteractionFactory(customer=None, agent=jane)
    complaint = workflows.feedback_submit(interaction_id=contact.pk, rating=1, text="Still broken")
    workflows.feedback_process(str(complaint.pk))
    assert complaint.customer is None

    interaction_wrap_up(actor=sam, interaction=contact, customer_id=customer.pk)

    complaint.refresh_from_db()
    assert complaint.customer == customer
    assert Case.objects.get().customer == customer
    assert FollowUp.objects.get().customer == customer


def test_feedback_about_a_contact_linked_later_is_erased_with_the_customer(jane, sofia, sam):
    customer = pat()
    contact = InteractionFactory(customer=None, agent=jane)
    praise = workflows.feedback_submit(interaction_id=contact.pk, rating=5, text=f"Jane fixed my {SECRET} issue")
    workflows.feedback_process(str(praise.pk))
    assert any(SECRET in w for w in words_left(praise))  # the recognition and its notifications quote it

    interaction_wrap_up(actor=sam, interaction=contact, customer_id=customer.pk)
    privacy.customer_erase(actor=sam, customer=customer)

    assert not any(SECRET in w for w in words_left(praise))


def test_erasure_finds_feedback_through_the_contact_even_if_the_feedback_was_never_linked(jane, sofia, sam):
    # as for rows stored before contacts carried their feedback along: only the contact is linked
    customer = pat()
    contact = InteractionFactory(customer=None, agent=jane)
    praise = workflows.feedback_submit(interaction_id=contact.pk, rating=5, text=f"Jane fixed my {SECRET} issue")
    workflows.feedback_process(str(praise.pk))
    Interaction.objects.filter(pk=contact.pk).update(customer=customer)

    exported = json.dumps(privacy.customer_export(actor=sam, customer=customer), default=str)
    assert str(praise.pk) in exported and SECRET in exported

    privacy.customer_erase(actor=sam, customer=customer)

    assert not any(SECRET in w for w in words_left(praise))
    assert Recognition.objects.get().staff == jane  # the recognition itself still counts


def test_unlinked_feedback_found_by_identifier_loses_its_quotes_and_notifications_on_erasure(jane, sofia, sam):
    # an unknown caller's contact, and feedback on it giving an address nobody had yet
    contact = InteractionFactory(customer=None, agent=jane)
    praise = workflows.feedback_submit(
        interaction_id=contact.pk, email="pat@x.example", rating=5, text=f"{SECRET} thanks"
    )
    workflows.feedback_process(str(praise.pk))
    assert Recognition.objects.get(feedback=praise).quote == f"{SECRET} thanks"
    customer = pat()  # the address is on file only now

    counts = privacy.customer_erase(actor=sam, customer=customer)

    assert counts["unlinked_feedback"] == 1
    assert not any(SECRET in w for w in words_left(praise))
    assert Notification.objects.filter(kind="recognition").count() == 2  # rows kept, words dropped


def test_an_unlinked_complaint_found_by_identifier_has_its_follow_up_note_and_case_scrubbed(jane, sofia, sam):
    complaint = workflows.feedback_submit(email="pat@x.example", rating=1, text=f"{SECRET} awful")
    workflows.feedback_process(str(complaint.pk))
    FollowUp.objects.update(note=f"call about {SECRET}")
    customer = pat()

    privacy.customer_erase(actor=sam, customer=customer)

    assert FollowUp.objects.get().note == ""
    assert not any(SECRET in w for w in words_left(complaint))


def test_erasure_finds_staff_notifications_by_their_subject_not_by_text_in_their_key(jane, sofia, sam, ada):
    customer = pat()
    praise = workflows.feedback_submit(
        interaction_id=InteractionFactory(customer=customer, agent=jane).pk, rating=5, text=f"{SECRET} thanks"
    )
    workflows.feedback_process(str(praise.pk))
    recognition = Recognition.objects.get(feedback=praise)
    # A key that no longer names the subject is still found through the foreign key ...
    Notification.objects.filter(recognition=recognition).update(key="renamed")
    # ... and a notification about someone else is left alone even if its key mentions their id.
    other = Notification.objects.create(
        recipient=ada, kind="note", key=f"see {recognition.pk}", subject="About someone else", body="keep me"
    )

    counts = privacy.customer_erase(actor=sam, customer=customer)

    assert counts["notifications"] == 2
    assert not any(SECRET in w for w in words_left(praise) if w != "keep me")
    assert set(Notification.objects.filter(recognition=recognition).values_list("subject", "body")) == {
        ("(erased)", "")
    }
    other.refresh_from_db()
    assert (other.subject, other.body) == ("About someone else", "keep me")
