"""The Celery side: beat runs tasks that exist, and every task declares how it survives failures."""

import pytest
from django.conf import settings

from crm import webhooks
from crm.celery import app
from crm.tasks import (
    emails_send_pending_task,
    feedback_outbox_sweep_task,
    feedback_process_task,
    follow_ups_escalate_task,
    import_run_task,
    imports_purge_task,
    imports_sweep_task,
    recurring_problem_check_task,
    webhook_deliver_task,
    webhook_sweep_task,
)

TASKS = [
    feedback_process_task,
    feedback_outbox_sweep_task,
    emails_send_pending_task,
    follow_ups_escalate_task,
    import_run_task,
    imports_purge_task,
    imports_sweep_task,
    recurring_problem_check_task,
    webhook_deliver_task,
    webhook_sweep_task,
]


def test_every_periodic_task_in_the_beat_schedule_is_a_registered_task():
    app.loader.import_default_modules()
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}

    assert scheduled == {
        "crm.follow_ups_escalate",
        "crm.feedback_outbox_sweep",
        "crm.emails_send_pending",
        "crm.imports_sweep",
        "crm.imports_purge",
        "crm.webhook_sweep",
    }
    assert scheduled <= set(app.tasks)


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.name)
def test_tasks_are_acked_late_retried_with_backoff_and_time_limited(task):
    assert task.acks_late is True
    assert task.reject_on_worker_lost is True
    assert task.max_retries and task.retry_backoff and task.retry_jitter
    assert ConnectionError in task.autoretry_for
    assert task.time_limit and task.soft_time_limit < task.time_limit


def test_a_sweep_with_nothing_pending_sends_nothing(db):
    assert feedback_outbox_sweep_task.apply().get() == 0
    assert emails_send_pending_task.apply().get() == 0


def test_the_broker_redelivers_a_lost_message_only_after_the_longest_legitimate_hold():
    # Retry countdowns (up to 120 s) and a sweep's hard limit (300 s) fit inside the visibility timeout,
    # so Redis never hands a healthy task to a second worker; fast recovery is the outbox sweeps' job.
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    assert visibility > max(t.time_limit for t in TASKS) + max(t.retry_backoff_max for t in TASKS)
    assert settings.CRM_OUTBOX_RESEND_SECONDS < 60 and settings.CELERY_WORKER_PREFETCH_MULTIPLIER == 1


def test_a_webhook_retry_never_waits_on_the_broker_longer_than_its_visibility_timeout():
    # Longer back-offs are the sweep's (the next attempt time is stored on the delivery).
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    assert webhooks.COUNTDOWN_MAX_SECONDS + webhook_deliver_task.time_limit < visibility
