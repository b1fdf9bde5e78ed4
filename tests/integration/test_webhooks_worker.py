"""Webhooks out through Redis and a real Celery worker on the "webhooks" queue.

The module starts its own worker (`-Q webhooks --pool threads`, as in production)
on the test database, with CRM_WEBHOOK_ALLOW_PRIVATE=true so it may post to the
receivers on 127.0.0.1, and a short backoff base so retries take a second, not minutes.
Events come from the real domain functions, committed for real, so the outbox
rows and the after-commit enqueue run as in production.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from standardwebhooks.webhooks import Webhook

from crm.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from crm.privacy import customer_erase
from tests.factories import CustomerFactory, UserFactory
from tests.fixtures.receiver import Receiver
from tests.fixtures.workers import worker_start, worker_stop

pytestmark = [pytest.mark.worker, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
WORKER_TIMEOUT = 6  # CRM_WEBHOOK_TIMEOUT in the worker: a hanging receiver costs this per attempt


@pytest.fixture(scope="module")
def webhook_worker(django_db_setup, django_db_blocker, tmp_path_factory, reinstall_migration_data):
    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        pytest.fail("The webhook worker tests need PostgreSQL (DATABASE_URL) and Redis (REDIS_URL).")
    log = tmp_path_factory.mktemp("webhook-worker") / "worker.log"
    env = {
        "CRM_WEBHOOK_ALLOW_PRIVATE": "true",
        "CRM_WEBHOOK_BACKOFF_BASE": "0.3",
        "CRM_WEBHOOK_TIMEOUT": str(WORKER_TIMEOUT),
    }
    worker = worker_start(
        log, "-Q", "webhooks", "--purge", "--pool", "threads", "--concurrency", "4", name="webhooks", env=env
    )
    try:
        yield log
    finally:
        worker_stop(worker)


@pytest.fixture
def receivers():
    started: list[Receiver] = []

    def start(**behaviour) -> Receiver:
        started.append(Receiver(**behaviour).start())
        return started[-1]

    yield start
    for receiver in started:
        receiver.stop()


def wait_for(condition, what: str, seconds: float = 30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.05)
    pytest.fail(f"Timed out after {seconds}s waiting for {what}")


def erase_someone():
    supervisor = UserFactory(username=f"sup-{uuid.uuid4().hex[:6]}", role="supervisor")
    customer = CustomerFactory(display_name="Erin Example")
    customer_erase(actor=supervisor, customer=customer)  # commits: the outbox row and the enqueue
    return customer


def test_a_receiver_that_fails_twice_gets_the_event_exactly_once_on_the_third_attempt(webhook_worker, receivers):
    receiver = receivers(fail_first=2)
    hook = WebhookEndpoint.objects.create(url=receiver.url, event_types=["customer.erased"])

    customer = erase_someone()

    wait_for(lambda: receiver.accepted(), "the receiver to accept the event")
    time.sleep(1.5)  # long enough for a (wrong) further retry at this backoff
    assert [r.status for r in receiver.requests] == [500, 500, 200]
    ids = {r.headers["webhook-id"] for r in receiver.requests}
    assert len(ids) == 1  # one event, retried under one id
    payload = Webhook(hook.secret).verify(receiver.accepted()[0].body, receiver.accepted()[0].headers)
    assert payload["type"] == "customer.erased" and payload["data"] == {"customer_id": str(customer.pk)}
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("succeeded", 3)
    assert list(WebhookAttempt.objects.filter(delivery=delivery).values_list("status_code", flat=True)) == [
        500,
        500,
        200,
    ]


def test_a_hanging_receiver_does_not_hold_up_another_endpoint(webhook_worker, receivers):
    hanging = receivers(hang=WORKER_TIMEOUT * 3)
    healthy = receivers()
    slow = WebhookEndpoint.objects.create(url=hanging.url, event_types=["customer.erased"])
    WebhookEndpoint.objects.create(url=healthy.url, event_types=["customer.erased"])

    started = time.monotonic()
    erase_someone()

    wait_for(lambda: healthy.accepted(), "the healthy endpoint to get the event", seconds=WORKER_TIMEOUT)
    elapsed = time.monotonic() - started
    assert elapsed < WORKER_TIMEOUT, f"the healthy endpoint waited {elapsed:.1f}s"
    assert WebhookDelivery.objects.get(endpoint=slow).status == "sending"  # still waiting on the hang
    # the hang ends in a timeout, logged, and the delivery is rescheduled, not lost
    attempt = wait_for(
        lambda: WebhookAttempt.objects.filter(delivery__endpoint=slow).first(), "the timed-out attempt", 20
    )
    assert attempt.status_code is None and "Timeout" in attempt.error
    assert WebhookDelivery.objects.get(endpoint=slow).status in ("pending", "sending")
    WebhookEndpoint.objects.filter(pk=slow.pk).update(active=False)  # stop retrying into the next test
