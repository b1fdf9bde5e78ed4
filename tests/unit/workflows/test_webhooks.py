"""Webhooks out: the outbox row is written with its event, signed deliveries, retries, SSRF refusals.

Delivery attempts here run in-process (webhook_deliver called directly) against a
real HTTP receiver on 127.0.0.1; tests/integration/test_webhooks_worker.py runs
them on a real Celery worker.
"""

import datetime as dt
import json

import pytest
from django.db import transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from crm import webhooks
from crm.admin import WebhookEndpointForm
from crm.models import Customer, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from crm.privacy import customer_erase, customer_merge
from tests.factories import CustomerFactory
from tests.fixtures.receiver import Receiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver():
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def private_ok(settings):
    settings.CRM_WEBHOOK_ALLOW_PRIVATE = True
    settings.CRM_WEBHOOK_TIMEOUT = 2
    settings.CRM_WEBHOOK_BACKOFF_BASE = 0.1


def endpoint(url, *types, **extra):
    return WebhookEndpoint.objects.create(url=url, event_types=list(types), **extra)


def test_an_event_writes_one_delivery_per_subscribed_active_endpoint_with_ids_only(jim, sam):
    erased = endpoint("https://hooks.example.com/a", "customer.erased", "customer.merged")
    endpoint("https://hooks.example.com/b", "case.opened")
    endpoint("https://hooks.example.com/c", "customer.erased", active=False)

    customer_erase(actor=sam, customer=jim)

    delivery = WebhookDelivery.objects.get()
    assert (delivery.endpoint, delivery.event_type, delivery.status) == (erased, "customer.erased", "pending")
    assert delivery.payload["type"] == "customer.erased"
    assert delivery.payload["data"] == {"customer_id": str(jim.pk)}
    assert "Okafor" not in json.dumps(delivery.payload) and "jim@" not in json.dumps(delivery.payload)
    assert delivery.give_up_at - delivery.created_at == pytest.approx(
        dt.timedelta(hours=24), abs=dt.timedelta(seconds=5)
    )


def test_no_delivery_without_its_event_a_rolled_back_event_leaves_none(jim, sam):
    endpoint("https://hooks.example.com/a", "customer.merged")
    duplicate = CustomerFactory(display_name="J. Okafor")
    with pytest.raises(RuntimeError), transaction.atomic():
        customer_merge(actor=sam, survivor=jim, duplicate_id=duplicate.pk)
        assert WebhookDelivery.objects.count() == 1
        raise RuntimeError("the merge's transaction fails after the event")
    assert not WebhookDelivery.objects.exists()
    assert Customer.objects.get(pk=duplicate.pk).merged_into is None


def test_the_same_event_emitted_twice_is_delivered_once():
    endpoint("https://hooks.example.com/a", "case.opened")
    assert webhooks.webhook_emit("case.opened", key="case:1", data={"case_id": 1}) == 1
    webhooks.webhook_emit("case.opened", key="case:1", data={"case_id": 1})
    assert WebhookDelivery.objects.count() == 1


def test_a_delivery_is_signed_so_the_standard_webhooks_library_verifies_it(receiver, private_ok):
    hook = endpoint(receiver.url, "case.opened")
    webhooks.webhook_emit("case.opened", key="case:7", data={"case_id": 7, "kind": "service_recovery"})
    delivery = WebhookDelivery.objects.get()

    assert webhooks.webhook_deliver(str(delivery.pk)) == "succeeded"

    (request,) = receiver.requests
    payload = Webhook(hook.secret).verify(request.body, request.headers)
    assert payload["type"] == "case.opened" and payload["data"]["case_id"] == 7
    assert request.headers["webhook-id"] == f"msg_{delivery.pk.hex}"
    with pytest.raises(WebhookVerificationError):
        Webhook(WebhookEndpoint(url="x").secret).verify(request.body, request.headers)  # another secret
    with pytest.raises(WebhookVerificationError):
        Webhook(hook.secret).verify(request.body.replace(b"7", b"8"), request.headers)  # altered body
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("succeeded", 1)
    attempt = WebhookAttempt.objects.get()
    assert (attempt.status_code, attempt.response_excerpt) == (200, "ok")


def test_a_failing_receiver_is_retried_with_backoff_then_the_same_webhook_id_succeeds(receiver, private_ok, settings):
    settings.CRM_WEBHOOK_BACKOFF_BASE = 60
    receiver.fail_first = 2
    endpoint(receiver.url, "case.opened")
    webhooks.webhook_emit("case.opened", key="case:7", data={"case_id": 7})
    delivery = WebhookDelivery.objects.get()

    assert webhooks.webhook_deliver(str(delivery.pk)) == "retrying"
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.next_attempt_at > timezone.now()
    # not due yet: a duplicate message does not send early
    assert webhooks.webhook_deliver(str(delivery.pk)) == "not-due"
    later = delivery.next_attempt_at + dt.timedelta(seconds=1)
    assert webhooks.webhook_deliver(str(delivery.pk), now=later) == "retrying"
    delivery.refresh_from_db()
    assert webhooks.webhook_deliver(str(delivery.pk), now=delivery.next_attempt_at + dt.timedelta(seconds=1)) == (
        "succeeded"
    )
    assert webhooks.webhook_deliver(str(delivery.pk), now=timezone.now() + dt.timedelta(hours=1)) == "done"

    assert [r.status for r in receiver.requests] == [500, 500, 200]
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    assert list(WebhookAttempt.objects.values_list("status_code", flat=True)) == [500, 500, 200]
    assert WebhookAttempt.objects.first().response_excerpt == "temporarily broken"


def test_after_the_retry_window_a_failing_delivery_is_failed(receiver, private_ok):
    receiver.fail_first = 100
    endpoint(receiver.url, "case.opened")
    webhooks.webhook_emit("case.opened", key="case:7", data={"case_id": 7})
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(give_up_at=timezone.now() - dt.timedelta(seconds=1))
    assert webhooks.webhook_deliver(str(delivery.pk)) == "failed"
    delivery.refresh_from_db()
    assert delivery.status == "failed"

    # "send again" from the admin: pending now, with a fresh window, the same id
    assert webhooks.webhook_send_again([delivery.pk]) == 1
    receiver.fail_first = 0
    assert webhooks.webhook_deliver(str(delivery.pk)) == "succeeded"
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1


def test_backoff_grows_exponentially_with_jitter_and_is_capped(settings):
    settings.CRM_WEBHOOK_BACKOFF_BASE = 30
    settings.CRM_WEBHOOK_BACKOFF_MAX = 3600
    for attempts, ceiling in [(1, 30), (2, 60), (3, 120), (10, 3600), (40, 3600)]:
        delays = {webhooks.backoff_seconds(attempts) for _ in range(20)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jittered


def test_an_endpoint_at_its_in_flight_limit_is_not_sent_more(receiver, private_ok):
    hook = endpoint(receiver.url, "case.opened", max_in_flight=1)
    for n in (1, 2):
        webhooks.webhook_emit("case.opened", key=f"case:{n}", data={"case_id": n})
    first, second = WebhookDelivery.objects.order_by("event_key")
    WebhookDelivery.objects.filter(pk=first.pk).update(
        status="sending", lease_until=timezone.now() + dt.timedelta(minutes=1)
    )
    assert webhooks.webhook_deliver(str(second.pk)) == "busy"
    assert receiver.requests == []
    WebhookEndpoint.objects.filter(pk=hook.pk).update(max_in_flight=2)
    assert webhooks.webhook_deliver(str(second.pk)) == "succeeded"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://hooks.example.com/x",
        "file:///etc/passwd",
        "gopher://127.0.0.1/",
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://172.16.0.1/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
    ],
)
def test_destinations_that_are_not_public_http_are_refused(url, settings):
    settings.CRM_WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(webhooks.WebhookRefused):
        webhooks.webhook_url_check(url)
    form = WebhookEndpointForm(
        data={
            "url": url,
            "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "event_types": ["case.opened"],
            "active": True,
            "max_in_flight": 4,
        }
    )
    assert not form.is_valid()
    assert "url" in form.errors


def test_a_refused_destination_fails_the_delivery_without_sending(receiver, settings):
    settings.CRM_WEBHOOK_ALLOW_PRIVATE = False
    hook = endpoint(receiver.url, "case.opened")  # saved directly, as if it was allowed when added
    webhooks.webhook_emit("case.opened", key="case:7", data={"case_id": 7})
    delivery = WebhookDelivery.objects.get(endpoint=hook)
    assert webhooks.webhook_deliver(str(delivery.pk)) == "failed"
    assert receiver.requests == []
    assert WebhookAttempt.objects.get().error.startswith("refused:")


def test_private_destinations_are_allowed_with_the_setting_on(settings):
    settings.CRM_WEBHOOK_ALLOW_PRIVATE = True
    webhooks.webhook_url_check("http://127.0.0.1:9/hook")
    with pytest.raises(webhooks.WebhookRefused):
        webhooks.webhook_url_check("file:///etc/passwd")  # the scheme is still checked


def test_a_public_https_destination_is_accepted(settings):
    settings.CRM_WEBHOOK_ALLOW_PRIVATE = False
    # the address checked is the one connected to (a later, different DNS answer is not used)
    assert webhooks.webhook_url_check("https://93.184.215.14/hook") == "93.184.215.14"
