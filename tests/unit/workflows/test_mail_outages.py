"""A mail server outage delays e-mails but loses none, sends none twice, and raises no false alarms."""

import datetime as dt
import smtplib

import pytest
from django.core import mail
from django.utils import timezone

from crm import feedback as workflows
from crm import follow_ups, notifications
from crm.models import FollowUp, FollowUpKind, FollowUpStatus, Notification, Preference
from tests.factories import InteractionFactory

THANKS = "Thank you for your feedback"


def overdue(owner, n: int = 1) -> list[FollowUp]:
    due = timezone.now() - dt.timedelta(hours=1)
    return [FollowUp.objects.create(kind=FollowUpKind.SERVICE_RECOVERY, owner=owner, due_at=due) for _ in range(n)]


def recipients() -> list[str]:
    return sorted(address for m in mail.outbox for address in m.to)


def test_escalation_mails_that_failed_are_sent_by_the_next_run_once(jane, sofia, ada, mail_server):
    overdue(jane, 2)
    mail_server.down()

    with pytest.raises(smtplib.SMTPException):
        follow_ups.follow_ups_escalate()
    assert FollowUp.objects.filter(status=FollowUpStatus.ESCALATED).count() == 2
    assert Notification.objects.filter(kind="escalation", emailed_at__isnull=True).count() == 2

    mail_server.up()
    assert follow_ups.follow_ups_escalate() == (0, False)  # nothing new to escalate...
    follow_ups.follow_ups_escalate()

    # ...but both mails went, each once
    assert recipients() == ["sofia@goldfish.example", "sofia@goldfish.example"]
    assert not Notification.objects.filter(emailed_at__isnull=True).exists()


def test_a_notification_another_run_has_claimed_is_not_sent_again_by_the_pending_sweep(sofia, ada, mail_server):
    overdue(sofia, 2)
    mail_server.down()
    with pytest.raises(smtplib.SMTPException):
        follow_ups.follow_ups_escalate()
    mail_server.up()
    claimed = Notification.objects.first()
    Notification.objects.filter(pk=claimed.pk).update(emailed_at=timezone.now())  # another run, mid-send

    assert notifications.notifications_deliver_pending() == 1
    assert notifications.notifications_deliver_pending() == 0
    assert len(mail.outbox) == 1


def test_pending_notifications_go_oldest_first_in_bounded_batches(sofia, ada, mail_server):
    overdue(sofia, 3)
    mail_server.down()
    with pytest.raises(smtplib.SMTPException):
        follow_ups.follow_ups_escalate()
    mail_server.up()

    assert notifications.notifications_deliver_pending(batch=2) == 2
    assert notifications.notifications_deliver_pending(batch=2) == 1
    assert notifications.notifications_deliver_pending(batch=2) == 0
    assert len(mail.outbox) == 3


def test_a_refused_recipient_does_not_hold_up_the_others(jane, omar, sofia, ada, mail_server):
    overdue(jane)
    overdue(ada)  # ada has no supervisor: goes to the administrators (ada) herself
    mail_server.refuse("sofia@goldfish.example")

    follow_ups.follow_ups_escalate()

    assert recipients() == ["ada@goldfish.example"]
    assert Notification.objects.filter(recipient=sofia, emailed_at__isnull=True).count() == 1


def test_the_automatic_thank_you_is_not_overdue_while_its_sending_is_retried(jane, sofia, ada, jim, mail_server):
    Preference.objects.create(customer=jim, key="contact_consent", value="true", recorded_at=timezone.now())
    feedback = workflows.feedback_submit(
        interaction_id=InteractionFactory(customer=jim, agent=jane).pk, rating=5, text="great"
    )
    mail_server.down()
    with pytest.raises(smtplib.SMTPException):
        workflows.feedback_process(str(feedback.pk))
    thank_you = FollowUp.objects.get(kind=FollowUpKind.THANK_YOU_EMAIL)
    assert thank_you.due_at >= timezone.now() + dt.timedelta(minutes=50)

    # beat runs the escalation while the task waits for its retry (the staff mails still cannot go)
    with pytest.raises(smtplib.SMTPException):
        follow_ups.follow_ups_escalate()
    assert FollowUp.objects.get(pk=thank_you.pk).status == FollowUpStatus.OPEN
    mail_server.up()
    assert workflows.feedback_process(str(feedback.pk)) == "processed"

    thank_you.refresh_from_db()
    assert thank_you.status == FollowUpStatus.DONE
    assert recipients() == ["jane@goldfish.example", "jim@example.com", "sofia@goldfish.example"]
    assert not Notification.objects.filter(kind="escalation").exists()


def test_a_thank_you_escalated_after_a_long_outage_is_still_sent_once(jane, sofia, ada, jim, mail_server):
    Preference.objects.create(customer=jim, key="contact_consent", value="true", recorded_at=timezone.now())
    feedback = workflows.feedback_submit(email="jim@example.com", rating=5)
    mail_server.down("jim@example.com")
    with pytest.raises(smtplib.SMTPException):
        workflows.feedback_process(str(feedback.pk))
    assert FollowUp.objects.get().status == FollowUpStatus.OPEN  # the failed send released its claim

    follow_ups.follow_ups_escalate(now=timezone.now() + dt.timedelta(hours=2))
    assert FollowUp.objects.get().status == FollowUpStatus.ESCALATED
    with pytest.raises(smtplib.SMTPException):  # still down: the claim goes back to escalated
        workflows.feedback_process(str(feedback.pk))
    assert FollowUp.objects.get().status == FollowUpStatus.ESCALATED

    mail_server.up()
    workflows.feedback_process(str(feedback.pk))
    workflows.feedback_process(str(feedback.pk))

    assert FollowUp.objects.get().status == FollowUpStatus.DONE
    assert [m.to for m in mail.outbox if m.subject == THANKS] == [["jim@example.com"]]


def test_the_thank_you_goes_before_staff_mail_so_a_staff_outage_does_not_hold_it(jane, sofia, jim, mail_server):
    Preference.objects.create(customer=jim, key="contact_consent", value="true", recorded_at=timezone.now())
    feedback = workflows.feedback_submit(interaction_id=InteractionFactory(customer=jim, agent=jane).pk, rating=5)
    mail_server.down("@goldfish.example")

    with pytest.raises(smtplib.SMTPException):
        workflows.feedback_process(str(feedback.pk))

    assert recipients() == ["jim@example.com"]
    mail_server.up()
    workflows.feedback_process(str(feedback.pk))
    assert recipients() == ["jane@goldfish.example", "jim@example.com", "sofia@goldfish.example"]
