"""The outbox sweep re-sends what the broker lost, not what is still waiting in its queue (a real Redis, no worker)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from bench.faultkit import broker_at
from crm import outbox
from crm.models import Feedback
from crm.queue import publish
from tests.factories import FeedbackFactory

pytestmark = [pytest.mark.postgres]


def test_with_a_backlog_only_the_messages_older_than_the_queue_are_resent(transactional_db, redis, settings):
    settings.CRM_OUTBOX_RESEND_SECONDS = 30
    start = timezone.now() - dt.timedelta(minutes=10)
    # ten feedback sent a minute apart; the last six are still in the queue, the first four were lost
    rows = [
        FeedbackFactory(
            rating=5, received_at=start + dt.timedelta(minutes=n), dispatched_at=start + dt.timedelta(minutes=n)
        )
        for n in range(10)
    ]
    with broker_at(redis.url()):
        for row in rows[4:]:
            publish(outbox.FEEDBACK_PROCESS_TASK, str(row.pk))
        assert outbox.broker_backlog() == 6

        sent, has_more = outbox.feedback_outbox_sweep()

        assert (sent, has_more) == (4, False)
        resent = set(
            Feedback.objects.filter(dispatched_at__gt=timezone.now() - dt.timedelta(seconds=30)).values_list(
                "pk", flat=True
            )
        )
        assert resent == {row.pk for row in rows[:4]}
        assert outbox.broker_backlog() == 10
        # the next sweep, the queue unchanged: nothing more
        assert outbox.feedback_outbox_sweep() == (0, False)


def test_when_the_queue_holds_more_than_is_unprocessed_nothing_is_resent(transactional_db, redis, settings):
    settings.CRM_OUTBOX_RESEND_SECONDS = 30
    old = timezone.now() - dt.timedelta(minutes=10)
    rows = [FeedbackFactory(rating=5, received_at=old, dispatched_at=old) for _ in range(3)]
    with broker_at(redis.url()):
        for row in rows * 2:  # each queued twice (an earlier re-send): all may still be waiting
            publish(outbox.FEEDBACK_PROCESS_TASK, str(row.pk))

        assert outbox.feedback_outbox_sweep() == (0, False)
