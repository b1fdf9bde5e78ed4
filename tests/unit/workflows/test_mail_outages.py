"""A mail server outage delays e-mails but loses none, sends none twice, and raises no false alarms.

Every e-mail is a row in the outbox (crm.emails): a failed send leaves it pending
with a back-off, and the e-mail sweep (beat, every CRM_SWEEP_SECONDS) sends it later.
"""

import datetime as dt

from django.core import mail
from django.utils import timezone

from crm import emails, follow_ups
from crm import feedback as workflows
from crm.models import EmailStatus, FollowUp, FollowUpKind, FollowUpStatus, Notification, OutboundEmail, Preference
from tests.factories import InteractionFactory

THANKS = "Thank you for your feedback"


def overdue(owner, n: int = 1) -> list[FollowUp]:
    due = timezone.now() - dt.timedelta(hours=1)
    return [FollowUp.objects.create(kind=FollowUpKind.SERVICE_RECOVERY, owner=owner, due_at=due) for _ in range(n)]


def recipients() -> list[str]:
    return sorted(address for m in mail.outbox for address in m.to)


def sweep(minutes: float = 10, **kwargs) -> int:
    """The e-mail sweep as beat runs it, `minutes` from now (past the back-off of a failed send)."""
    sent, _ = emails.emails_send_pending(now=timezone.now() + dt.timedelta(minutes=minutes), **kwargs)
    return sent


def test_escalation_mails_that_failed_are_sent_by_the_sweep_once(jane, sofia, ada, mail_server):
    overdue(jane, 2)
    mail_server.down()

    assert follow_ups.follow_ups_escalate() == (2, False)
    assert FollowUp.objects.filter(status=FollowUpStatus.ESCALATED).count() == 2
    # not marked sent: the server never took them
    assert Notification.objects.filter(kind="escalation", emailed_at__isnull=True).count() == 2
    assert list(OutboundEmail.objects.values_list("status", "attempts")) == [("pending", 1)] * 2

    mail_server.up()
    assert follow_ups.follow_ups_escalate() == (0, False)  # nothing new to escalate...
    assert sweep() == 2
    assert sweep() == 0

    # ...but both mails went, each once
    assert recipients() == ["sofia@goldfish.example", "sofia@goldfish.example"]
    assert not Notification.objects.filter(emailed_at__isnull=True).exists()


def test_a_failed_send_waits_for_its_back_off_before_the_sweep_tries_again(sofia, ada, mail_server):
    overdue(sofia)
    mail_server.down()
    follow_ups.follow_ups_escalate()
    mail_server.up()

    assert emails.emails_send_pending(now=timezone.now() + dt.timedelta(seconds=3)) == (0, False)  # back-off: 5 s
    assert sweep() == 1


def test_pending_emails_go_oldest_first_in_bounded_batches(sofia, ada, mail_server):
    overdue(sofia, 3)
    mail_server.down()
    follow_ups.follow_ups_escalate()
    mail_server.up()

    assert emails.emails_send_pending(now=timezone.now() + dt.timedelta(minutes=1), batch=2) == (2, True)
    assert emails.emails_send_pending(now=timezone.now() + dt.timedelta(minutes=1), batch=2) == (1, False)
    assert sweep(batch=2) == 0
    assert len(mail.outbox) == 3


def test_a_refused_recipient_does_not_hold_up_the_others(jane, omar, sofia, ada, mail_server):
    overdue(jane)
    overdue(ada)  # ada has no supervisor: goes to the administrators (ada) herself
    mail_server.refuse("sofia@goldfish.example")

    follow_ups.follow_ups_escalate()

    assert recipients() == ["ada@goldfish.example"]
    assert Notification.objects.filter(recipient=sofia, emailed_at__isnull=True).count() == 1
    assert OutboundEmail.objects.get(to="sofia@goldfish.example").last_error.startswith("SMTPRecipientsRefused")


def test_the_automatic_thank_you_is_not_overdue_while_its_sending_is_retried(jane, sofia, ada, jim, mail_server):
    Preference.objects.create(customer=jim, key="contact_consent", value="true", recorded_at=timezone.now())
    feedback = workflows.feedback_submit(
        interaction_id=InteractionFactory(customer=jim, agent=jane).pk, rating=5, text="great"
    )
    mail_server.down()
    assert workflows.feedback_process(str(feedback.pk)) == "processed"
    thank_you = FollowUp.objects.get(kind=FollowUpKind.THANK_YOU_EMAIL)
    assert thank_you.due_at >= timezone.now() + dt.timedelta(minutes=50)
    assert thank_you.status == FollowUpStatus.OPEN  # not done: the e-mail has not gone

    # beat runs the escalation while the e-mails wait for the sweep (the staff mails still cannot go)
    follow_ups.follow_ups_escalate()
    assert FollowUp.objects.get(pk=thank_you.pk).status == FollowUpStatus.OPEN
    mail_server.up()
    assert sweep() == 3

    thank_you.refresh_from_db()
    assert thank_you.status == FollowUpStatus.DONE
    assert recipients() == ["jane@goldfish.example", "jim@example.com", "sofia@goldfish.example"]
    assert not Notification.objects.filter(kind="escalation").exists()


def test_a_thank_you_escalated_after_a_long_outage_is_still_sent_once(jane, sofia, ada, jim, mail_server):
    Preference.objects.create(customer=jim, key="contact_consent", value="true", recorded_at=timezone.now())
    feedback = workflows.feedback_submit(email="jim@example.com", rating=5)
    mail_server.down("jim@example.com")
    workflows.feedback_process(str(feedback.pk))
    assert FollowUp.objects.get().status == FollowUpStatus.OPEN  # the failed send left it owed

    follow_ups.follow_ups_escalate(now=timezone.now() + dt.timedelta(hours=2))
    assert FollowUp.objects.get().status == FollowUpStatus.ESCALATED
    assert sweep() == 0  # still down: it stays pending, escalated
    assert FollowUp.objects.get().status == FollowUpStatus.ESCALATED

    mail_server.up()
    assert sweep(minutes=60) == 1
    assert sweep(minutes=120) == 0
    workflows.feedback_process(str(feedback.pk))  # a redelivery of the workflow changes nothing

    assert FollowUp.objects.get().status == FollowUpStatus.DONE
    assert [m.to for m in mail.outbox if m.subject == THANKS] == [["jim@example.com"]]


def test_the_thank_you_goes_before_staff_mail_so_a_staff_outage_does_not_hold_it(jane, sofia, jim, mail_server):
    Preference.objects.create(customer=jim, key="contact_consent", value="true", recorded_at=timezone.now())
    feedback = workflows.feedback_submit(interaction_id=InteractionFactory(customer=jim, agent=jane).pk, rating=5)
    mail_server.down("@goldfish.example")

    workflows.feedback_process(str(feedback.pk))

    assert recipients() == ["jim@example.com"]
    mail_server.up()
    sweep()
    assert recipients() == ["jane@goldfish.example", "jim@example.com", "sofia@goldfish.example"]
    assert set(OutboundEmail.objects.values_list("status", flat=True)) == {EmailStatus.SENT}
