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

from celery import shared_task
from django.db import InterfaceError as DbInterfaceError
from django.db import OperationalError as DbOperationalError
from kombu.exceptions import OperationalError as BrokerOperationalError

from crm import feedback, follow_ups, outbox, recurring, webhooks

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


@shared_task(name="crm.feedback_outbox_sweep", **RETRY_POLICY, **SWEEP_LIMITS)
def feedback_outbox_sweep_task() -> int:
    """Periodic: send the workflow of feedback stored while the broker was unreachable."""
    sent, _has_more = outbox.feedback_outbox_sweep()
    return sent


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
