"""Redis stopped (crashed, no persistence) during a stream of feedback posts: all stored, all processed once.

Issue 11 measured on the old code: all stored and processed, but the workflows
Redis held when it died ran 14 min 40 s later (the sweep waited 15 minutes to
re-send). Here the test's own redis-server is SIGKILLed a third of the way into
the posts and started again (empty) after the next third; a worker with beat runs
the workflows. Every feedback must be processed within the bound after Redis is
back, with no recognition, case or e-mail made twice.
"""

from __future__ import annotations

import time

import pytest
from django.utils import timezone

from bench.faultkit import Worker, broker_at, percentile, wait_until
from crm import emails
from crm.models import Case, EmailStatus, Feedback, FollowUp, OutboundEmail, Recognition
from tests.conftest import client_for
from tests.factories import InteractionFactory
from tests.integration.faults.conftest import customer

pytestmark = [pytest.mark.worker, pytest.mark.postgres, pytest.mark.usefixtures("reinstall_migration_data")]

POSTS = 200
DOWN_AT, UP_AT = 60, 140  # Redis is down for posts 60..139
MIN_OUTAGE_SECONDS = 3
# The promise (docs/reliability.md): all processed within 60 s of Redis returning. The test runs the fast
# settings (sweep every 1 s, re-send after 3 s) but keeps the promised bound: on a loaded 2-core CI machine
# the 200 workflows themselves take ~25 s of the worker's time.
RECOVERY_BOUND_SECONDS = 60


def test_feedback_posted_while_redis_is_down_is_all_processed_once_soon_after_it_returns(
    floor, smtp, redis, worker_env, tmp_path
):
    # given Jim's contacts with Jane, and a worker (with beat) on this test's Redis
    jim = customer(0, consent=False)
    contacts = [InteractionFactory(customer=jim, agent=floor["jane"]) for _ in range(POSTS)]
    worker = Worker(worker_env, tmp_path / "worker.log", concurrency=2).start()
    anonymous = client_for(None)
    timings, statuses = [], []
    try:
        with broker_at(redis.url()):
            # when feedback streams in (praise and complaints alternating) and Redis crashes and comes back
            for i, contact in enumerate(contacts):
                if i == DOWN_AT:
                    redis.stop(crash=True)
                    down_since = time.monotonic()
                if i == UP_AT:
                    time.sleep(max(0.0, MIN_OUTAGE_SECONDS - (time.monotonic() - down_since)))
                    redis.start()
                    back_at = timezone.now()
                body = {"interaction_id": str(contact.pk), "rating": 5 if i % 2 == 0 else 1, "text": "Jane"}
                started = time.monotonic()
                statuses.append(anonymous.post("/api/v1/feedback", body, format="json").status_code)
                timings.append(time.monotonic() - started)

            # then every feedback is processed within the bound after Redis is back
            wait_until(
                lambda: not Feedback.objects.exclude(status="processed").exists(),
                "every feedback to be processed",
                RECOVERY_BOUND_SECONDS + 30,
                0.5,
            )
            last = max(Feedback.objects.values_list("processed_at", flat=True))
            expected_emails = POSTS // 2 * 2 + POSTS // 2  # praise: Jane and Sofia; complaint: Sofia
            wait_until(lambda: len(smtp.received()) >= expected_emails, "every e-mail", 30, 0.5)
    finally:
        worker.stop()

    assert statuses == [202] * POSTS
    assert (last - back_at).total_seconds() <= RECOVERY_BOUND_SECONDS
    # nothing made twice
    assert Recognition.objects.count() == POSTS // 2
    assert Case.objects.count() == POSTS // 2
    assert FollowUp.objects.filter(kind="service_recovery").count() == POSTS // 2
    rows = list(OutboundEmail.objects.all())
    assert len(rows) == expected_emails and {row.status for row in rows} == {EmailStatus.SENT}
    assert smtp.message_ids() == {emails.message_id(row): 1 for row in rows}
    # answered without waiting on the broker (loosely: a test, not a benchmark; see bench/faults.py)
    assert percentile(timings, 99) < 3.0, f"p99 {percentile(timings, 99):.2f}s"
