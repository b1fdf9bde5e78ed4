"""The feedback outbox: hand the workflow to the broker, and re-send what never got there.

A feedback row whose dispatched_at is empty is an unsent message. The request
tries once after commit (unless the breaker says the broker is down); the sweep
sends the rest, and re-sends those the broker lost.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db.models import Q
from django.utils import timezone

from crm.models import Feedback, FeedbackStatus
from crm.queue import publish
from crm.resilience import Breaker

logger = logging.getLogger(__name__)

# The Celery task that runs the workflow (crm.tasks.feedback_process_task).
FEEDBACK_PROCESS_TASK = "crm.feedback_process"
# The outbox sweep leaves the first seconds to the after-commit enqueue.
OUTBOX_GRACE_SECONDS = 5
# A message that reached the broker but whose feedback is still unprocessed after
# this long was lost (broker restarted without persistence): send it again.
OUTBOX_RESEND_AFTER = dt.timedelta(minutes=15)
# After a failed publish, requests skip the broker this long (the sweep does not).
BROKER_BREAKER_SECONDS = 5.0
# Periodic work in bounded batches so one run never holds a worker for long.
SWEEP_BATCH = 500


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
    """Re-enqueue feedback whose workflow message never reached the broker (or was lost).

    Returns (sent, has_more). Safe to overlap with the workflow itself: processing
    is idempotent, so a message sent twice does nothing the second time.
    """
    now = now or timezone.now()
    pending = (
        Feedback.objects.filter(
            status=FeedbackStatus.RECEIVED, received_at__lt=now - dt.timedelta(seconds=OUTBOX_GRACE_SECONDS)
        )
        .filter(Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=now - OUTBOX_RESEND_AFTER))
        .order_by("received_at")
        .values_list("pk", flat=True)[: batch + 1]
    )
    ids = [str(pk) for pk in pending]
    sent = 0
    for feedback_id in ids[:batch]:
        # Re-sending one that was lost: clear the mark so dispatch records the new send.
        Feedback.objects.filter(pk=feedback_id, dispatched_at__lt=now - OUTBOX_RESEND_AFTER).update(dispatched_at=None)
        if not feedback_dispatch(feedback_id, force=True):
            break  # the broker is still down; the next sweep tries again
        sent += 1
    if ids:
        logger.info("outbox sweep re-enqueued %d feedback", sent)
    return sent, len(ids) > batch
