"""The feedback outbox: hand the workflow to the broker, and re-send what never got there.

A feedback row whose dispatched_at is empty is an unsent message. The request
tries once after commit (unless the breaker says the broker is down); the sweep
sends the rest, and re-sends those the broker lost.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from crm.models import AuditAction, Feedback, FeedbackStatus
from crm.queue import publish
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


class _BrokerBreaker:
    """After a failed publish, skip publishing from this process for a few seconds.

    While the broker is down each attempt costs its connect timeouts (about 2 s);
    without this every feedback request would pay them. Skipped feedback waits in
    the outbox like any other unsent one. Per process, no locking: a race only
    means one extra attempt.
    """

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.open_until = 0.0

    def is_open(self) -> bool:
        return time.monotonic() < self.open_until

    def trip(self) -> None:
        self.open_until = time.monotonic() + self.seconds

    def reset(self) -> None:
        self.open_until = 0.0


broker_breaker = _BrokerBreaker(BROKER_BREAKER_SECONDS)


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
    """Re-enqueue feedback whose workflow message never reached the broker (or was lost).

    Returns (sent, has_more). Safe to overlap with the workflow itself: processing
    is idempotent, so a message sent twice does nothing the second time. A re-sent
    message gets a new dispatched_at, so each is re-sent at most once per delay.
    Dead-lettered feedback waits for a person.
    """
    now = now or timezone.now()
    resend_before = now - dt.timedelta(seconds=settings.CRM_OUTBOX_RESEND_SECONDS)
    pending = (
        Feedback.objects.filter(
            status=FeedbackStatus.RECEIVED,
            failed_at__isnull=True,
            received_at__lt=now - dt.timedelta(seconds=OUTBOX_GRACE_SECONDS),
        )
        .filter(Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=resend_before))
        .order_by("received_at")
        .values_list("pk", flat=True)[: batch + 1]
    )
    ids = [str(pk) for pk in pending]
    sent = 0
    for feedback_id in ids[:batch]:
        # Re-sending one that was lost: clear the mark so dispatch records the new send.
        Feedback.objects.filter(pk=feedback_id, dispatched_at__lt=resend_before).update(dispatched_at=None)
        if not feedback_dispatch(feedback_id, force=True):
            return sent, True  # the broker is still down; the next sweep tries again
        sent += 1
    if ids:
        logger.info("outbox sweep re-enqueued %d feedback", sent)
    return sent, len(ids) > batch


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
            transaction.on_commit(lambda feedback_id=str(pk): feedback_dispatch(feedback_id))
    return retried


def feedback_dead_count() -> int:
    """Dead-lettered workflows, for the admin's warning."""
    return Feedback.objects.filter(failed_at__isnull=False, status=FeedbackStatus.RECEIVED).count()
