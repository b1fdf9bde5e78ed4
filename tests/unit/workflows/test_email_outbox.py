"""The e-mail outbox: sent only after the server took it, under a lease, with the same Message-ID every time."""

import datetime as dt

import pytest
from django.core import mail
from django.utils import timezone

from crm import emails, privacy
from crm import feedback as workflows
from crm.models import AccessAudit, EmailStatus, FollowUp, FollowUpStatus, Identity, OutboundEmail, Preference
from tests.factories import InteractionFactory


@pytest.fixture
def praise(jane, sofia, jim, mail_server):
    """Jim, who agreed to e-mail, praises Jane: a thank-you to him, notifications to Jane and Sofia."""
    Preference.objects.create(customer=jim, key="contact_consent", value="true", recorded_at=timezone.now())
    return workflows.feedback_submit(interaction_id=InteractionFactory(customer=jim, agent=jane).pk, rating=5)


def later(minutes: float) -> dt.datetime:
    return timezone.now() + dt.timedelta(minutes=minutes)


def test_each_email_is_a_row_written_with_the_workflow_and_keyed_once(praise):
    workflows.feedback_process(str(praise.pk))
    workflows.feedback_process(str(praise.pk))

    keys = sorted(OutboundEmail.objects.values_list("key", flat=True))
    assert [k.split(":")[0] for k in keys] == ["notification", "notification", "thank-you"]
    assert OutboundEmail.objects.filter(status=EmailStatus.SENT).count() == 3
    assert len(mail.outbox) == 3


def test_the_message_id_is_the_rows_id_on_every_attempt(praise, mail_server):
    mail_server.down("jim@example.com")
    workflows.feedback_process(str(praise.pk))
    thanks = OutboundEmail.objects.get(key__startswith="thank-you:")
    mail_server.up()
    emails.emails_send_pending(now=later(10))

    # an unknown outcome (the worker died after the server's 250): the row is sent again
    OutboundEmail.objects.filter(pk=thanks.pk).update(status=EmailStatus.PENDING, sent_at=None)
    FollowUp.objects.filter(pk=thanks.follow_up_id).update(status=FollowUpStatus.OPEN)
    assert emails.email_send(thanks.pk) == "sent"

    sent = [m for m in mail.outbox if m.to == ["jim@example.com"]]
    assert [m.extra_headers["Message-ID"] for m in sent] == [f"<{thanks.pk}@localhost>"] * 2
    assert sent[0].message()["Message-ID"] == f"<{thanks.pk}@localhost>"


def test_a_failed_send_is_not_marked_sent_and_its_follow_up_stays_owed(praise, mail_server):
    mail_server.down()
    workflows.feedback_process(str(praise.pk))

    thanks = OutboundEmail.objects.get(key__startswith="thank-you:")
    assert (thanks.status, thanks.sent_at, thanks.attempts) == (EmailStatus.PENDING, None, 1)
    assert thanks.last_error.startswith("SMTPServerDisconnected")
    assert FollowUp.objects.get(pk=thanks.follow_up_id).status == FollowUpStatus.OPEN


def test_an_email_claimed_by_a_live_sender_is_not_sent_by_another(praise, mail_server, settings):
    mail_server.down()
    workflows.feedback_process(str(praise.pk))
    mail_server.up()
    # a worker claims the thank-you and is still sending it (its lease runs)
    thanks = OutboundEmail.objects.get(key__startswith="thank-you:")
    OutboundEmail.objects.filter(pk=thanks.pk).update(claimed_until=later(60), claimed_by="w1:42:abc")

    assert emails.email_send(thanks.pk) == "skipped"
    assert emails.emails_send_pending(now=later(10)) == (2, False)
    assert [m.to for m in mail.outbox] == [["jane@goldfish.example"], ["sofia@goldfish.example"]]


def test_a_dead_senders_claim_expires_and_the_sweep_sends_the_email_once(praise, mail_server, settings):
    mail_server.down()
    workflows.feedback_process(str(praise.pk))
    mail_server.up()
    # the worker that claimed it was killed mid-send: its lease (CRM_EMAIL_LEASE_SECONDS) runs out
    thanks = OutboundEmail.objects.get(key__startswith="thank-you:")
    lease_end = timezone.now() + dt.timedelta(seconds=settings.CRM_EMAIL_LEASE_SECONDS)
    OutboundEmail.objects.filter(pk=thanks.pk).update(claimed_until=lease_end, claimed_by="w1:42:abc")

    assert emails.emails_send_pending(now=lease_end - dt.timedelta(seconds=1)) == (2, False)
    assert emails.emails_send_pending(now=lease_end + dt.timedelta(seconds=1)) == (1, False)
    assert emails.emails_send_pending(now=lease_end + dt.timedelta(minutes=5)) == (0, False)
    assert [m.to for m in mail.outbox].count(["jim@example.com"]) == 1
    assert FollowUp.objects.get(pk=thanks.follow_up_id).status == FollowUpStatus.DONE


def test_an_email_that_keeps_failing_is_dead_lettered_then_retried_by_a_person(praise, mail_server, settings, sam):
    settings.CRM_EMAIL_MAX_ATTEMPTS = 2
    mail_server.down("jim@example.com")
    workflows.feedback_process(str(praise.pk))
    thanks = OutboundEmail.objects.get(key__startswith="thank-you:")

    emails.emails_send_pending(now=later(10))
    thanks.refresh_from_db()
    assert (thanks.status, thanks.attempts) == (EmailStatus.FAILED, 2)
    assert emails.emails_dead_count() == 1
    assert emails.emails_send_pending(now=later(120)) == (0, False)  # dead letters wait for a person

    mail_server.up()
    assert emails.emails_retry(actor=sam, ids=[thanks.pk]) == 1
    assert emails.emails_retry(actor=sam, ids=[thanks.pk]) == 0  # a second click changes nothing
    assert emails.emails_send_pending(now=later(1)) == (1, False)
    assert [m.to for m in mail.outbox].count(["jim@example.com"]) == 1
    assert AccessAudit.objects.filter(actor=sam, detail__email_retry=str(thanks.pk)).count() == 1


def test_a_thank_you_whose_address_left_the_file_is_cancelled_not_sent(praise, jim, mail_server):
    mail_server.down("jim@example.com")
    workflows.feedback_process(str(praise.pk))
    Identity.objects.filter(customer=jim, kind="email").delete()
    mail_server.up()

    emails.emails_send_pending(now=later(10))

    assert OutboundEmail.objects.get(key__startswith="thank-you:").status == EmailStatus.CANCELLED
    assert "jim@example.com" not in [m.to[0] for m in mail.outbox]


def test_erasure_cancels_the_unsent_emails_about_the_customer_and_drops_address_and_words(
    praise, jim, sam, mail_server
):
    mail_server.down()
    workflows.feedback_process(str(praise.pk))

    privacy.customer_erase(actor=sam, customer=jim)
    mail_server.up()
    emails.emails_send_pending(now=later(10))

    thanks = OutboundEmail.objects.get(key__startswith="thank-you:")
    assert (thanks.status, thanks.to, thanks.body) == (EmailStatus.CANCELLED, "", "")
    assert FollowUp.objects.get(pk=thanks.follow_up_id).status == FollowUpStatus.CANCELLED
    # the staff mails quoted them too: cancelled, their words gone (the notifications stay in the inbox)
    assert set(OutboundEmail.objects.values_list("status", "body")) == {(EmailStatus.CANCELLED, "")}
    assert mail.outbox == []
