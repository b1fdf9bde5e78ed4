"""Celery tasks: entry points that take ids, call one service, and may run twice safely.

Tasks import the domain modules, never the other way round: those enqueue by task
name through crm.queue. The names below are what the beat schedule and queued
messages use; do not change them.

Every task is acknowledged late (a worker killed mid-task leaves the message to
another worker), retried with exponential backoff and jitter on transient errors
(database, broker, mail server), a finite number of times, under time limits.
Idempotency comes from the services: constraints and conditional updates.
"""

from __future__ import annotations

import logging
import smtplib
import time

from celery import shared_task
from django.db import InterfaceError as DbInterfaceError
from django.db import OperationalError as DbOperationalError
from kombu.exceptions import OperationalError as BrokerOperationalError

from crm import emails, feedback, follow_ups, imports, outbox, recurring, webhooks
from crm.models import ImportStatus

logger = logging.getLogger(__name__)

# Errors that go away by themselves: a database failover, a broker blip, an SMTP outage.
TRANSIENT_ERRORS = (
    DbOperationalError,
    DbInterfaceError,
    BrokerOperationalError,
    smtplib.SMTPException,
    ConnectionError,
    TimeoutError,
)
RETRY_POLICY = {
    "autoretry_for": TRANSIENT_ERRORS,
    "retry_backoff": 2,  # first retry within 2 s, then 4, 8, ... (full jitter)
    "retry_backoff_max": 120,
    "retry_jitter": True,
    "max_retries": 6,
    "acks_late": True,
    "reject_on_worker_lost": True,
}
WORKFLOW_LIMITS = {"soft_time_limit": 45, "time_limit": 60}
SWEEP_LIMITS = {"soft_time_limit": 240, "time_limit": 300}


@shared_task(name="crm.feedback_process", **RETRY_POLICY, **WORKFLOW_LIMITS)
def feedback_process_task(feedback_id: str) -> str:
    """Classify one feedback and run its workflow (recognition, thanks, service recovery)."""
    return feedback.feedback_process(feedback_id)


# A sweep drains its backlog in batches for at most this long, well inside its soft time limit.
SWEEP_BUDGET_SECONDS = 180


@shared_task(name="crm.feedback_outbox_sweep", **RETRY_POLICY, **SWEEP_LIMITS)
def feedback_outbox_sweep_task() -> int:
    """Periodic: send the workflow of feedback stored while the broker was unreachable, or lost by it.

    Drains batch after batch until has_more is false (or a batch sent nothing: the
    broker is still down), within the budget; beat starts the next run.
    """
    stop_at = time.monotonic() + SWEEP_BUDGET_SECONDS
    total = 0
    while True:
        sent, has_more = outbox.feedback_outbox_sweep()
        total += sent
        if not has_more or not sent or time.monotonic() > stop_at:
            return total


@shared_task(name="crm.emails_send_pending", **RETRY_POLICY, **SWEEP_LIMITS)
def emails_send_pending_task() -> int:
    """Periodic: send e-mails a first attempt left behind (failed, or its worker died mid-send)."""
    stop_at = time.monotonic() + SWEEP_BUDGET_SECONDS
    total = 0
    while True:
        sent, has_more = emails.emails_send_pending(budget_seconds=max(stop_at - time.monotonic(), 0))
        total += sent
        if not has_more or time.monotonic() > stop_at:
            return total


@shared_task(name="crm.follow_ups_escalate", **RETRY_POLICY, **SWEEP_LIMITS)
def follow_ups_escalate_task() -> int:
    """Periodic: escalate overdue open follow-ups to the next level, each once."""
    escalated, has_more = follow_ups.follow_ups_escalate()
    if has_more:
        # The rest in a fresh task, so one run stays short.
        follow_ups_escalate_task.apply_async(countdown=1)
    return escalated


@shared_task(name="crm.recurring_problem_check", **RETRY_POLICY, **WORKFLOW_LIMITS)
def recurring_problem_check_task(interaction_id: str) -> int | None:
    """After a contact got its reason: surface a recurring problem at the third contact."""
    problem = recurring.recurring_problem_check(interaction_id)
    return problem.pk if problem else None


# --- issue 15: bulk import ---------------------------------------------------------------
# A task runs an import for at most IMPORT_BUDGET_SECONDS, then hands the job back (resume point
# kept) and publishes it again: each task stays far inside the broker's visibility timeout, so
# Redis never redelivers a healthy import, and a killed one costs at most one batch.
IMPORT_BUDGET_SECONDS = 240
IMPORT_LIMITS = {"soft_time_limit": IMPORT_BUDGET_SECONDS + 60, "time_limit": IMPORT_BUDGET_SECONDS + 90}


@shared_task(name="crm.import_run", **RETRY_POLICY, **IMPORT_LIMITS)
def import_run_task(job_id: str) -> str:
    job = imports.import_run(job_id, runner=import_run_task.request.id or None, budget_seconds=IMPORT_BUDGET_SECONDS)
    if job.status == ImportStatus.QUEUED and job.rows_done:
        imports.import_enqueue(job)  # continue where this run stopped
    return job.status


@shared_task(name="crm.imports_sweep", **RETRY_POLICY, **SWEEP_LIMITS)
def imports_sweep_task() -> int:
    """Imports never started (broker lost the message) or whose worker died: run them again."""
    return imports.imports_sweep()


@shared_task(name="crm.imports_purge", **RETRY_POLICY, **SWEEP_LIMITS)
def imports_purge_task() -> int:
    """Periodic: ended imports' uploads, and after CRM_IMPORT_KEEP_DAYS their problems and error files, removed."""
    return imports.imports_purge()


# --- issue 16: webhooks out


@shared_task(name="crm.webhook_deliver", **RETRY_POLICY, **WORKFLOW_LIMITS)
def webhook_deliver_task(delivery_id: str) -> str:
    """One attempt at one webhook delivery. The receiver's failures are retried on the delivery
    row's own schedule (crm.webhooks); Celery's retries are for our database or broker blips."""
    return webhooks.webhook_deliver(delivery_id)


@shared_task(name="crm.webhook_sweep", **RETRY_POLICY, **SWEEP_LIMITS)
def webhook_sweep_task() -> int:
    """Periodic: re-send webhook deliveries whose message never reached (or was lost by) the broker."""
    return webhooks.webhook_sweep()
