"""The feedback outbox: hand the workflow to the broker, and re-send what never got there.

A feedback row whose dispatched_at is empty is an unsent message. The request
tries once after commit (unless the breaker says the broker is down); the sweep
sends the rest, and re-sends those the broker lost.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from crm.celery import app
from crm.models import AuditAction, Feedback, FeedbackStatus
from crm.queue import publish
from crm.resilience import Breaker
from crm.services import audit_record

logger = logging.getLogger(__name__)

# The Celery task that runs the workflow (crm.tasks.feedback_process_task).
FEEDBACK_PROCESS_TASK = "crm.feedback_process"
# The outbox sweep leaves the first seconds to the after-commit enqueue.
OUTBOX_GRACE_SECONDS = 5
# A message that reached the broker but whose feedback is still unprocessed after
# settings.CRM_OUTBOX_RESEND_SECONDS was lost (Redis restarted without persistence, a
# worker killed with it reserved): send it again. Short (tens of seconds) because a
# second delivery costs one locked read: the workflow is idempotent.
# After a failed publish, requests skip the broker this long (the sweep does not).
BROKER_BREAKER_SECONDS = 5.0
# Periodic work in bounded batches so one run never holds a worker for long.
SWEEP_BATCH = 500
NEVER = dt.datetime.min.replace(tzinfo=dt.UTC)


# After a failed publish, every thread of this process skips the broker for a few
# seconds: while it is down or frozen each attempt costs its timeouts, and without a
# shared breaker every request thread would pay them. Skipped feedback waits in the
# outbox like any other unsent one.
broker_breaker = Breaker("broker", BROKER_BREAKER_SECONDS)


def feedback_dispatch(feedback_id: str, *, force: bool = False) -> bool:
    """Hand the workflow to the broker; on success mark the outbox row as sent.

    A broker that is down must not fail the request that stored the feedback:
    the error is logged, dispatched_at stays empty and the outbox sweep sends it
    later. `force` (the sweep) tries even while the breaker is open.
    """
    if not force and broker_breaker.is_open():
        logger.info("feedback %s left to the outbox sweep (broker recently unreachable)", feedback_id)
        return False
    try:
        publish(FEEDBACK_PROCESS_TASK, feedback_id)
    except Exception as exc:  # noqa: BLE001 - any publish failure leaves the row to the sweep
        broker_breaker.trip()
        logger.warning("feedback %s not enqueued (%s); the outbox sweep will retry", feedback_id, type(exc).__name__)
        return False
    broker_breaker.reset()
    Feedback.objects.filter(pk=feedback_id, dispatched_at__isnull=True).update(dispatched_at=timezone.now())
    return True


def feedback_outbox_sweep(*, now: dt.datetime | None = None, batch: int = SWEEP_BATCH) -> tuple[int, bool]:
    """Send the workflow of feedback whose message never reached the broker, and re-send those it lost.

    Returns (sent, has_more). Each row is claimed (dispatched_at moved to now by a
    conditional update) before it is published, so overlapping sweeps never both
    send it; a failed publish gives the claim back. A message sent twice does
    nothing the second time (the workflow is idempotent), but re-sending a queue's
    whole backlog would double its work: the queue is first in, first out, so
    with B messages waiting, the B most recently sent are taken to be in it and
    only older ones still unprocessed after CRM_OUTBOX_RESEND_SECONDS are
    re-sent. Dead-lettered feedback waits for a person.
    """
    now = now or timezone.now()
    resend_before = now - dt.timedelta(seconds=settings.CRM_OUTBOX_RESEND_SECONDS)
    backlog = broker_backlog()
    if backlog:
        waiting_since = (
            Feedback.objects.filter(status=FeedbackStatus.RECEIVED, dispatched_at__isnull=False)
            .order_by("-dispatched_at")
            .values_list("dispatched_at", flat=True)[backlog - 1 : backlog]
            .first()
        )
        # Fewer unprocessed messages than the queue holds: every one of them may be in it, re-send none.
        resend_before = min(resend_before, waiting_since) if waiting_since is not None else NEVER
    pending = list(
        Feedback.objects.filter(
            status=FeedbackStatus.RECEIVED,
            failed_at__isnull=True,
            received_at__lt=now - dt.timedelta(seconds=OUTBOX_GRACE_SECONDS),
        )
        .filter(Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=resend_before))
        .order_by("received_at")
        .values_list("pk", "dispatched_at")[: batch + 1]
    )
    sent = 0
    for pk, previous in pending[:batch]:
        claimed = (
            Feedback.objects.filter(pk=pk, dispatched_at=previous)
            if previous
            else Feedback.objects.filter(pk=pk, dispatched_at__isnull=True)
        )
        if not claimed.update(dispatched_at=now):
            continue  # another sweep (or the request's own send) has it
        if not feedback_dispatch(str(pk), force=True):
            Feedback.objects.filter(pk=pk, dispatched_at=now).update(dispatched_at=None)
            return sent, True  # the broker is still down; the next sweep tries again
        sent += 1
    if pending:
        never = sum(previous is None for _, previous in pending)
        logger.info(
            "outbox sweep sent %d feedback (%d never sent; queue backlog %s, re-sent those sent before %s)",
            sent,
            never,
            backlog,
            resend_before.isoformat(timespec="seconds"),
        )
    return sent, len(pending) > batch


def broker_backlog() -> int | None:
    """Messages waiting in the workflow queue or reserved by workers; None when the broker cannot say."""
    if app.conf.task_always_eager:
        return None
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=1)
            channel = conn.default_channel
            waiting = channel.queue_declare(queue=app.conf.task_default_queue, passive=True).message_count
            # On Redis, messages workers have reserved but not finished sit in the `unacked` hash: they are
            # not lost either (a worker may prefetch many after reconnecting).
            unacked_key = getattr(channel, "unacked_key", None)
            reserved = channel.client.hlen(unacked_key) if unacked_key else 0
            return waiting + reserved
    except Exception:  # noqa: BLE001 - unknown backlog: behave as if there were none
        return None


def feedback_retry(*, actor, ids) -> int:
    """A person retries dead-lettered workflows: a fresh count of attempts, dispatched after commit (audited)."""
    with transaction.atomic():
        rows = list(
            Feedback.objects.select_for_update(of=("self",))
            .filter(pk__in=list(ids), failed_at__isnull=False, status=FeedbackStatus.RECEIVED)
            .values_list("pk", "customer_id")
        )
        retried = Feedback.objects.filter(pk__in=[pk for pk, _ in rows]).update(
            failed_at=None, attempts=0, last_error="", dispatched_at=None
        )
        for pk, customer_id in rows:
            audit_record(
                actor=actor, action=AuditAction.UPDATE, customer_id=customer_id, detail={"workflow_retry": str(pk)}
            )
            transaction.on_commit(functools.partial(feedback_dispatch, str(pk)))
    return retried


def feedback_dead_count() -> int:
    """Dead-lettered workflows, for the admin's warning."""
    return Feedback.objects.filter(failed_at__isnull=False, status=FeedbackStatus.RECEIVED).count()
