"""The feedback workflows as services: classification, recognition, thanks, recovery, escalation."""

import datetime as dt

import pytest
from django.core import mail
from django.utils import timezone

from crm import feedback as workflows
from crm import feedback_selectors, follow_ups
from crm.models import (
    Case,
    CaseKind,
    Feedback,
    FollowUp,
    FollowUpKind,
    FollowUpStatus,
    Notification,
    Preference,
    Recognition,
)
from tests.factories import CustomerFactory, IdentityFactory, InteractionFactory


@pytest.mark.parametrize(
    ("rating", "nps", "text", "expected"),
    [
        (5, None, "", "positive"),
        (1, None, "", "negative"),
        (3, None, "", "neutral"),
        (None, 10, "", "positive"),
        (None, 8, "", "neutral"),
        (None, 2, "", "negative"),
        (None, None, "Jane sorted it in minutes, brilliant service!", "positive"),
        (None, None, "Terrible. I waited two hours and nobody called back.", "negative"),
        (None, None, "I called about my bill.", "neutral"),
        (4, None, "Great help, thank you", "positive"),
        (2, None, "Lovely agent but the fault is still there", "negative"),
        (3, None, "Awful, useless, a total waste of my time", "negative"),
    ],
)
def test_classification_combines_rating_nps_and_the_texts_tone(rating, nps, text, expected):
    sentiment, score = workflows.feedback_classify(rating=rating, nps=nps, text=text)
    assert sentiment == expected
    assert -1.0 <= score <= 1.0


def submit(**kwargs) -> Feedback:
    return workflows.feedback_submit(**kwargs)


def test_praise_for_the_agent_of_the_contact_recognizes_them_and_tells_their_supervisor(jane, sofia, jim):
    # given a contact Jane handled
    interaction = InteractionFactory(customer=jim, agent=jane)
    feedback = submit(interaction_id=interaction.pk, rating=5, text="So helpful, thank you!")

    # when the workflow runs
    assert workflows.feedback_process(str(feedback.pk)) == "processed"

    # then
    feedback.refresh_from_db()
    assert (feedback.status, feedback.sentiment, feedback.customer) == ("processed", "positive", jim)
    recognition = Recognition.objects.get()
    assert (recognition.staff, recognition.interaction, recognition.quote) == (
        jane,
        interaction,
        "So helpful, thank you!",
    )
    notified = set(Notification.objects.filter(kind="recognition").values_list("recipient__username", flat=True))
    assert notified == {"jane", "sofia"}
    assert Notification.objects.filter(emailed_at__isnull=True).count() == 0
    assert sorted(m.to[0] for m in mail.outbox if m.subject.startswith("A customer praised")) == [
        "jane@goldfish.example",
        "sofia@goldfish.example",
    ]


def test_staff_named_in_the_field_and_by_first_name_in_the_text_are_recognized(jane, omar, jim):
    # given Omar and Jane handled recent contacts; the customer names him in the text and Jane in `staff`
    InteractionFactory(customer=jim, agent=omar, started_at=timezone.now() - dt.timedelta(days=3))
    InteractionFactory(customer=jim, agent=jane, started_at=timezone.now() - dt.timedelta(days=5))
    feedback = submit(email="jim@example.com", rating=5, text="Omar sorted it in minutes", staff=["jane", "ghost"])

    workflows.feedback_process(str(feedback.pk))

    assert set(Recognition.objects.values_list("staff__username", flat=True)) == {"jane", "omar"}


def test_a_first_name_is_matched_as_a_word_only(jane, jim):
    InteractionFactory(customer=jim, agent=jane)
    feedback = submit(email="jim@example.com", rating=5, text="Janet at the shop was great")

    workflows.feedback_process(str(feedback.pk))

    assert not Recognition.objects.exists()


def test_thanks_go_by_email_when_an_address_and_consent_are_on_file(jane, jim):
    Preference.objects.create(customer=jim, key="contact_consent", value="true", recorded_at=timezone.now())
    feedback = submit(phone="(212) 555-0100", rating=5, staff=["jane"])

    workflows.feedback_process(str(feedback.pk))

    follow_up = FollowUp.objects.get(feedback=feedback)
    assert (follow_up.kind, follow_up.status, follow_up.customer) == (FollowUpKind.THANK_YOU_EMAIL, "done", jim)
    assert [m.to for m in mail.outbox if m.subject == "Thank you for your feedback"] == [["jim@example.com"]]


def test_consent_ticked_with_an_address_on_file_is_enough(jim):
    feedback = submit(email="JIM@example.com", rating=5, text="Lovely", contact_consent=True)

    workflows.feedback_process(str(feedback.pk))

    assert FollowUp.objects.get(feedback=feedback).kind == FollowUpKind.THANK_YOU_EMAIL
    assert [m.to for m in mail.outbox if m.subject == "Thank you for your feedback"] == [["jim@example.com"]]


def test_an_unknown_address_is_never_emailed_even_with_consent_ticked(db):
    feedback = submit(email="New.Person@Example.com", rating=5, text="Lovely", contact_consent=True)

    workflows.feedback_process(str(feedback.pk))

    assert not FollowUp.objects.filter(feedback=feedback).exists()
    assert mail.outbox == []


def test_without_consent_the_thanks_become_a_callback_task_for_the_agent(jane, jim):
    interaction = InteractionFactory(customer=jim, agent=jane)
    feedback = submit(interaction_id=interaction.pk, rating=5)

    workflows.feedback_process(str(feedback.pk))

    follow_up = FollowUp.objects.get(feedback=feedback)
    assert (follow_up.kind, follow_up.status, follow_up.owner) == (FollowUpKind.THANK_YOU_CALLBACK, "open", jane)
    assert follow_up.due_at > timezone.now() + dt.timedelta(hours=47)
    assert not [m for m in mail.outbox if m.subject == "Thank you for your feedback"]


def test_customers_who_prefer_the_phone_get_a_callback_even_with_consent(jim):
    now = timezone.now()
    Preference.objects.create(customer=jim, key="marketing_opt_in", value="yes", recorded_at=now)
    Preference.objects.create(customer=jim, key="preferred_channel", value="sms", recorded_at=now)
    feedback = submit(account="ac 1234 5678", rating=5)

    workflows.feedback_process(str(feedback.pk))

    follow_up = FollowUp.objects.get(feedback=feedback)
    assert (follow_up.kind, follow_up.channel) == (FollowUpKind.THANK_YOU_CALLBACK, "sms")


def test_do_not_call_customers_without_email_consent_get_no_callback(jim):
    Preference.objects.create(customer=jim, key="do_not_call", value="true", recorded_at=timezone.now())
    feedback = submit(account="AC12345678", rating=5)

    workflows.feedback_process(str(feedback.pk))

    assert not FollowUp.objects.filter(feedback=feedback).exists()


def test_running_the_workflow_twice_recognizes_follows_up_and_emails_once(jane, sofia, jim):
    Preference.objects.create(customer=jim, key="contact_consent", value="true", recorded_at=timezone.now())
    interaction = InteractionFactory(customer=jim, agent=jane)
    feedback = submit(interaction_id=interaction.pk, rating=5, text="Brilliant")

    workflows.feedback_process(str(feedback.pk))
    # A redelivery of the same message after a crash, before it was marked processed:
    Feedback.objects.filter(pk=feedback.pk).update(status="received", processed_at=None)
    workflows.feedback_process(str(feedback.pk))
    workflows.feedback_process(str(feedback.pk))

    assert Recognition.objects.count() == 1
    assert FollowUp.objects.count() == 1
    assert Notification.objects.count() == 2
    assert len(mail.outbox) == 3  # jane, sofia, and the customer's thank-you


def test_a_complaint_opens_a_service_recovery_case_owned_by_the_team_supervisor(jane, sofia, jim, settings):
    settings.CRM_RECOVERY_DEADLINE_HOURS = 24
    interaction = InteractionFactory(customer=jim, agent=jane)
    before = timezone.now()
    feedback = submit(interaction_id=interaction.pk, rating=1, text="Nobody called back. Awful.")

    workflows.feedback_process(str(feedback.pk))

    feedback.refresh_from_db()
    case = Case.objects.get()
    assert (feedback.sentiment, feedback.case, case.kind, case.owner, case.customer) == (
        "negative",
        case,
        CaseKind.SERVICE_RECOVERY,
        sofia,
        jim,
    )
    interaction.refresh_from_db()
    assert interaction.case == case
    follow_up = FollowUp.objects.get()
    assert (follow_up.kind, follow_up.owner, follow_up.case, follow_up.status) == (
        FollowUpKind.SERVICE_RECOVERY,
        sofia,
        case,
        "open",
    )
    assert before + dt.timedelta(hours=24) <= follow_up.due_at <= timezone.now() + dt.timedelta(hours=24)
    assert Notification.objects.get().recipient == sofia
    assert [m.to for m in mail.outbox] == [["sofia@goldfish.example"]]
    assert not Recognition.objects.exists()


def test_a_complaint_run_twice_opens_one_case(jane, sofia, jim):
    interaction = InteractionFactory(customer=jim, agent=jane)
    feedback = submit(interaction_id=interaction.pk, rating=1)

    workflows.feedback_process(str(feedback.pk))
    Feedback.objects.filter(pk=feedback.pk).update(status="received")
    workflows.feedback_process(str(feedback.pk))

    assert (Case.objects.count(), FollowUp.objects.count(), len(mail.outbox)) == (1, 1, 1)


def test_an_unlinked_complaint_is_still_processed_and_every_supervisor_hears_of_it(sofia, sam):
    feedback = submit(text="Terrible, rude and useless.")

    workflows.feedback_process(str(feedback.pk))

    feedback.refresh_from_db()
    assert (feedback.status, feedback.sentiment, feedback.customer) == ("processed", "negative", None)
    assert FollowUp.objects.get().owner is None
    assert set(Notification.objects.values_list("recipient__username", flat=True)) == {"sam", "sofia"}


def test_neutral_feedback_is_recorded_and_counted_only(jane, jim):
    interaction = InteractionFactory(customer=jim, agent=jane)
    feedback = submit(interaction_id=interaction.pk, rating=3, text="It was fine.")

    workflows.feedback_process(str(feedback.pk))

    feedback.refresh_from_db()
    assert (feedback.status, feedback.sentiment, feedback.interaction) == ("processed", "neutral", interaction)
    assert not (Recognition.objects.exists() or FollowUp.objects.exists() or Case.objects.exists())
    assert feedback_selectors.feedback_sentiment_counts() == {"positive": 0, "neutral": 1, "negative": 0}


def test_processing_feedback_that_no_longer_exists_does_nothing(db):
    assert workflows.feedback_process("00000000-0000-0000-0000-000000000000") == "missing"


# --- escalation -----------------------------------------------------------------------------


def overdue_recovery(owner, *, hours_late: int = 1) -> FollowUp:
    return FollowUp.objects.create(
        kind=FollowUpKind.SERVICE_RECOVERY,
        owner=owner,
        customer=CustomerFactory(),
        due_at=timezone.now() - dt.timedelta(hours=hours_late),
    )


def test_an_overdue_follow_up_is_escalated_once_however_often_the_sweep_runs(sofia, ada):
    # given Sofia's recovery follow-up is an hour late, and one due tomorrow
    late = overdue_recovery(sofia)
    on_time = FollowUp.objects.create(
        kind=FollowUpKind.SERVICE_RECOVERY, owner=sofia, due_at=timezone.now() + dt.timedelta(days=1)
    )

    # when the periodic task runs three times, at times the test chooses
    now = timezone.now()
    results = [follow_ups.follow_ups_escalate(now=now + dt.timedelta(minutes=m)) for m in (0, 1, 2)]

    # then
    assert results == [(1, False), (0, False), (0, False)]
    late.refresh_from_db()
    on_time.refresh_from_db()
    assert (late.status, late.escalation_level, late.escalated_at) == (FollowUpStatus.ESCALATED, 1, now)
    assert on_time.status == FollowUpStatus.OPEN
    notification = Notification.objects.get(kind="escalation")
    assert notification.recipient == ada  # Sofia has no supervisor above her: the administrators
    assert [m.to for m in mail.outbox] == [["ada@goldfish.example"]]


def test_an_agents_overdue_follow_up_goes_to_their_supervisor(jane, sofia):
    overdue_recovery(jane)

    follow_ups.follow_ups_escalate()

    assert Notification.objects.get(kind="escalation").recipient == sofia


def test_follow_ups_due_later_than_the_clock_are_left_alone(sofia, ada):
    follow_up = overdue_recovery(sofia)

    assert follow_ups.follow_ups_escalate(now=follow_up.due_at - dt.timedelta(minutes=5)) == (0, False)
    follow_up.refresh_from_db()
    assert follow_up.status == FollowUpStatus.OPEN


def test_escalation_works_in_bounded_batches(sofia, ada):
    for _ in range(3):
        overdue_recovery(sofia)

    assert follow_ups.follow_ups_escalate(batch=2) == (2, True)
    assert follow_ups.follow_ups_escalate(batch=2) == (1, False)


# --- identities used for linking --------------------------------------------------------------


def test_feedback_by_an_identifier_shared_by_two_customers_stays_unlinked(db):
    for customer in (CustomerFactory(), CustomerFactory()):
        IdentityFactory(customer=customer, kind="phone", value="+12125550199", normalized="+12125550199")

    feedback = submit(phone="212-555-0199", rating=4)

    assert feedback.customer is None
    assert feedback.identifiers == {"phone": "+12125550199"}


def test_feedback_for_a_customer_merged_away_before_the_workflow_runs_goes_to_the_survivor(jane, sofia, sam):
    from crm import privacy

    survivor, duplicate = CustomerFactory(), CustomerFactory()
    feedback = submit(interaction_id=InteractionFactory(customer=duplicate, agent=jane).pk, rating=1, text="Awful")
    privacy.customer_merge(actor=sam, survivor=survivor, duplicate_id=duplicate.pk)
    # as when the merge commits between the feedback's link and its insert
    Feedback.objects.filter(pk=feedback.pk).update(customer=duplicate)

    workflows.feedback_process(str(feedback.pk))

    feedback.refresh_from_db()
    assert feedback.customer == survivor
    assert Case.objects.get().customer == survivor
    assert FollowUp.objects.get().customer == survivor
