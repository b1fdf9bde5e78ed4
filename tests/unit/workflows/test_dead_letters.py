"""Workflows the broker lost are re-sent within seconds; one that keeps failing is dead-lettered for a person."""

import datetime as dt

import pytest
from django.contrib.messages import get_messages
from django.utils import timezone

from crm import feedback as workflows
from crm import outbox
from crm.models import AccessAudit, Feedback, FeedbackStatus, Recognition
from tests.factories import InteractionFactory


def broken_classifier(**kwargs):
    raise RuntimeError("classifier broke")


@pytest.fixture
def praise(jane, sofia, jim, mail_server):
    return workflows.feedback_submit(interaction_id=InteractionFactory(customer=jim, agent=jane).pk, rating=5)


def received_and_sent(feedback, *, seconds_ago: float) -> None:
    """As if the feedback came in and its message reached the broker `seconds_ago`."""
    then = timezone.now() - dt.timedelta(seconds=seconds_ago)
    Feedback.objects.filter(pk=feedback.pk).update(received_at=then, dispatched_at=then)


def test_a_workflow_the_broker_lost_is_sent_again_after_the_short_resend_delay(praise, settings, eager_tasks):
    settings.CRM_OUTBOX_RESEND_SECONDS = 30
    received_and_sent(praise, seconds_ago=20)
    assert outbox.feedback_outbox_sweep() == (0, False)  # still within the delay: it may be on its way

    received_and_sent(praise, seconds_ago=31)
    assert outbox.feedback_outbox_sweep() == (1, False)

    praise.refresh_from_db()
    assert praise.status == FeedbackStatus.PROCESSED
    assert Recognition.objects.count() == 1
    assert outbox.feedback_outbox_sweep() == (0, False)


def test_a_workflow_that_keeps_failing_is_dead_lettered_after_its_attempts(praise, settings, monkeypatch):
    settings.CRM_WORKFLOW_MAX_ATTEMPTS = 2
    monkeypatch.setattr(workflows, "feedback_classify", broken_classifier)  # a bug, not an outage

    for _ in range(2):
        with pytest.raises(RuntimeError):
            workflows.feedback_process(str(praise.pk))

    praise.refresh_from_db()
    assert (praise.status, praise.attempts, praise.last_error) == ("received", 2, "RuntimeError: classifier broke")
    assert praise.failed_at is not None
    assert outbox.feedback_dead_count() == 1
    received_and_sent(praise, seconds_ago=3600)
    assert outbox.feedback_outbox_sweep() == (0, False)  # the sweep leaves it to a person
    assert workflows.feedback_process(str(praise.pk)) == "dead"
    assert Feedback.objects.get(pk=praise.pk).attempts == 2


def test_runs_that_never_finished_count_too(praise, settings):
    # every earlier run was killed with its worker (nothing recorded but the start)
    settings.CRM_WORKFLOW_MAX_ATTEMPTS = 3
    Feedback.objects.filter(pk=praise.pk).update(attempts=3)

    assert workflows.feedback_process(str(praise.pk)) == "dead"

    praise.refresh_from_db()
    assert praise.failed_at is not None and "did not finish" in praise.last_error
    assert not Recognition.objects.exists()


def test_a_supervisor_sees_dead_letters_and_retries_them_once_audited(
    praise, settings, monkeypatch, supervisor_client, sam, eager_tasks, django_capture_on_commit_callbacks
):
    settings.CRM_WORKFLOW_MAX_ATTEMPTS = 1
    monkeypatch.setattr(workflows, "feedback_classify", broken_classifier)
    with pytest.raises(RuntimeError):
        workflows.feedback_process(str(praise.pk))
    monkeypatch.undo()  # the bug is fixed

    page = supervisor_client.get("/admin/crm/feedback/", {"workflow": "dead"})
    assert [f.pk for f in page.context["cl"].result_list] == [praise.pk]
    assert "1 feedback workflow(s) dead-lettered" in next(str(m) for m in get_messages(page.wsgi_request))

    with django_capture_on_commit_callbacks(execute=True):
        done = supervisor_client.post(
            "/admin/crm/feedback/", {"action": "retry_workflow", "_selected_action": [str(praise.pk)]}, follow=True
        )
    assert done.status_code == 200

    praise.refresh_from_db()
    assert (praise.status, praise.failed_at, praise.attempts) == ("processed", None, 1)
    assert Recognition.objects.count() == 1
    assert AccessAudit.objects.filter(actor=sam, detail__workflow_retry=str(praise.pk)).count() == 1
    assert outbox.feedback_retry(actor=sam, ids=[praise.pk]) == 0  # nothing dead any more


def test_a_supervisor_can_see_the_email_outbox(supervisor_client, praise):
    workflows.feedback_process(str(praise.pk))

    page = supervisor_client.get("/admin/crm/outboundemail/", {"status": "sent"})

    assert page.status_code == 200
    assert sorted(e.to for e in page.context["cl"].result_list) == ["jane@goldfish.example", "sofia@goldfish.example"]
