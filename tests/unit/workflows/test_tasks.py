"""The Celery side: beat runs tasks that exist, and every task declares how it survives failures."""

import pytest
from django.conf import settings

from crm.celery import app
from crm.tasks import (
    feedback_outbox_sweep_task,
    feedback_process_task,
    follow_ups_escalate_task,
    recurring_problem_check_task,
)

TASKS = [feedback_process_task, feedback_outbox_sweep_task, follow_ups_escalate_task, recurring_problem_check_task]


def test_every_periodic_task_in_the_beat_schedule_is_a_registered_task():
    app.loader.import_default_modules()
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}

    assert scheduled == {"crm.follow_ups_escalate", "crm.feedback_outbox_sweep", "crm.webhook_sweep"}
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
