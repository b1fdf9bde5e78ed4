"""Webhooks out: events for other systems, signed by the Standard Webhooks scheme, from an outbox.

`webhook_emit` is called where an event happens, inside that transaction: it
writes one WebhookDelivery per subscribed active endpoint, so an event and its
deliveries commit (or roll back) together. After commit each delivery is handed
to Celery on its own queue ("webhooks"), so a slow receiver never holds up the
workflow workers; the sweep re-sends what the broker never got.

A delivery is attempted with short timeouts, at most `max_in_flight` at once per
endpoint (claimed under the endpoint's row lock), retried with exponential
backoff and full jitter for CRM_WEBHOOK_RETRY_HOURS, then failed. Every attempt
is logged. Payloads carry ids, kinds and timestamps: never personal data.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import random
import socket
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import certifi
import urllib3
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from crm.celery import app
from crm.models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEndpoint,
    WebhookEventType,
)
from crm.queue import publish, task_get

logger = logging.getLogger(__name__)
# Retries further off than this are left to webhook_sweep (next_attempt_at is stored): a Celery
# countdown must stay well inside the broker's visibility timeout (crm/settings.py, 900 s).
COUNTDOWN_MAX_SECONDS = 600

WEBHOOK_DELIVER_TASK = "crm.webhook_deliver"
WEBHOOK_QUEUE = "webhooks"
EXCERPT_CHARS = 500
SWEEP_BATCH = 500
# A due delivery younger than this is left to its after-commit / countdown message.
SWEEP_GRACE = dt.timedelta(seconds=30)


class WebhookRefused(Exception):
    """The destination is not one we send to (SSRF guard): not retried."""


# --- emission ---------------------------------------------------------------------------------


def webhook_emit(event_type: str, *, key: str, data: dict[str, Any], at: dt.datetime | None = None) -> int:
    """Record `event_type` about `key` (e.g. "recognition:42") for every endpoint that wants it.

    Call inside the transaction that makes the event happen. Emitting the same
    event twice (a workflow that re-runs) adds nothing: one delivery per event
    per endpoint, by constraint. Returns the number of deliveries written.
    """
    if event_type not in WebhookEventType.values:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    at = at or timezone.now()
    endpoints = [
        e for e in WebhookEndpoint.objects.filter(active=True).only("pk", "event_types") if event_type in e.event_types
    ]
    if not endpoints:
        return 0
    # Ids as strings (UUIDs), times as ISO 8601: what the receiver gets, stored as such.
    payload = json.loads(json.dumps({"type": event_type, "timestamp": at, "data": data}, cls=DjangoJSONEncoder))
    rows = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                endpoint=e,
                event_type=event_type,
                event_key=key,
                payload=payload,
                next_attempt_at=at,
                give_up_at=at + dt.timedelta(hours=settings.CRM_WEBHOOK_RETRY_HOURS),
            )
            for e in endpoints
        ],
        ignore_conflicts=True,
    )
    # With ignore_conflicts the ids are the ones generated here; a conflicting row simply
    # is not there, and sending an id that does not exist does nothing.
    ids = [str(row.pk) for row in rows]
    transaction.on_commit(lambda: _send_all(ids))
    return len(rows)


def _send_all(ids: list[str]) -> None:
    for delivery_id in ids:
        webhook_dispatch(delivery_id)


def webhook_dispatch(delivery_id: str, *, countdown: float = 0) -> bool:
    """Hand one delivery to the broker; if it is down the sweep sends it later."""
    try:
        if countdown:
            task_get(WEBHOOK_DELIVER_TASK).apply_async(args=[delivery_id], countdown=countdown)
        else:
            publish(WEBHOOK_DELIVER_TASK, delivery_id)
    except Exception as exc:  # noqa: BLE001 - a broker outage must not fail the event's request
        logger.warning("webhook delivery %s not enqueued (%s); the sweep will send it", delivery_id, type(exc).__name__)
        return False
    return True


# --- SSRF guard -------------------------------------------------------------------------------


def _address_refused(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def webhook_url_check(url: str) -> str | None:
    """Refuse what is not http(s), and (unless CRM_WEBHOOK_ALLOW_PRIVATE) hosts that resolve to
    loopback, link-local, private or otherwise non-public addresses. Raises WebhookRefused.

    Returns the vetted address to connect to (None with the setting on), so a name that
    resolves differently a moment later (DNS rebinding) cannot redirect the request.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookRefused(f"only http(s) URLs with a host are allowed, not {parts.scheme or 'no scheme'}")
    if settings.CRM_WEBHOOK_ALLOW_PRIVATE:
        return None
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except (socket.gaierror, UnicodeError) as exc:
        raise WebhookRefused(f"host does not resolve ({exc.__class__.__name__})") from None
    for info in infos:
        if _address_refused(str(info[4][0])):
            raise WebhookRefused(f"{parts.hostname} resolves to a non-public address ({info[4][0]})")
    if not infos:
        raise WebhookRefused("host does not resolve")
    return str(infos[0][4][0])


# --- delivery ---------------------------------------------------------------------------------


def backoff_seconds(attempts: int) -> float:
    """Exponential backoff with full jitter: uniform(0, base * 2**(attempts-1)), capped."""
    ceiling = min(settings.CRM_WEBHOOK_BACKOFF_MAX, settings.CRM_WEBHOOK_BACKOFF_BASE * 2 ** max(attempts - 1, 0))
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not a secret


def _claim(delivery_id: str, now: dt.datetime) -> tuple[WebhookDelivery | None, str]:
    """Take a due delivery for sending, unless its endpoint already has max_in_flight going."""
    with transaction.atomic():
        delivery = WebhookDelivery.objects.filter(pk=delivery_id).select_related("endpoint").first()
        if delivery is None:
            return None, "missing"
        if delivery.status in (WebhookDeliveryStatus.SUCCEEDED, WebhookDeliveryStatus.FAILED):
            return None, "done"
        # The endpoint's row lock serializes claims per endpoint, not across endpoints.
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=delivery.endpoint_id)
        if not endpoint.active:
            return None, "inactive"
        in_flight = WebhookDelivery.objects.filter(
            endpoint=endpoint, status=WebhookDeliveryStatus.SENDING, lease_until__gt=now
        ).count()
        if in_flight >= endpoint.max_in_flight:
            return None, "busy"
        lease = now + dt.timedelta(seconds=settings.CRM_WEBHOOK_TIMEOUT * 2 + 10)
        claimed = (
            WebhookDelivery.objects.filter(pk=delivery_id, next_attempt_at__lte=now)
            .filter(
                Q(status=WebhookDeliveryStatus.PENDING) | Q(status=WebhookDeliveryStatus.SENDING, lease_until__lte=now)
            )
            .update(status=WebhookDeliveryStatus.SENDING, lease_until=lease)
        )
        if not claimed:
            return None, "not-due"
    delivery.endpoint = endpoint
    return delivery, "claimed"


def _post(delivery: WebhookDelivery) -> tuple[int | None, str, str]:
    """POST the signed payload to the vetted address; (status, excerpt, error). Never follows redirects."""
    url = delivery.endpoint.url
    address = webhook_url_check(url)
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True)
    msg_id = f"msg_{delivery.pk.hex if isinstance(delivery.pk, uuid.UUID) else delivery.pk}"
    now = dt.datetime.now(dt.UTC)  # sign() relabels the datetime as UTC: give it UTC
    signature = Webhook(delivery.endpoint.secret).sign(msg_id, now, body)
    headers = {
        "content-type": "application/json",
        "user-agent": "Goldfish-Webhooks/1",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    headers["host"] = parts.netloc.rpartition("@")[2]
    # Each socket wait is bounded; a receiver trickling bytes under that bound can still hold
    # a worker thread longer (the threads pool does not enforce Celery's time limits).
    connect = min(3.0, settings.CRM_WEBHOOK_TIMEOUT)
    timeout = urllib3.Timeout(
        total=connect + settings.CRM_WEBHOOK_TIMEOUT, connect=connect, read=settings.CRM_WEBHOOK_TIMEOUT
    )
    pool: urllib3.HTTPConnectionPool
    if parts.scheme == "https":
        # Connect to the vetted address; the certificate is still checked against the name.
        pool = urllib3.HTTPSConnectionPool(
            address or host, port, server_hostname=host, assert_hostname=host, ca_certs=certifi.where(), maxsize=1
        )
    else:
        pool = urllib3.HTTPConnectionPool(address or host, port, maxsize=1)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    try:
        response = pool.urlopen(
            "POST", target, body=body.encode(), headers=headers, timeout=timeout,
            retries=False, redirect=False, preload_content=False,
        )  # fmt: skip
        try:
            excerpt = response.read(EXCERPT_CHARS, decode_content=True).decode("utf-8", "replace")
        finally:
            response.release_conn()
        return response.status, excerpt, ""
    except urllib3.exceptions.HTTPError as exc:
        return None, "", f"{type(exc).__name__}"[:200]
    finally:
        pool.close()


def webhook_deliver(delivery_id: str, *, now: dt.datetime | None = None) -> str:
    """Attempt one delivery (the Celery task's body). Safe to run twice: claimed first."""
    now = now or timezone.now()
    delivery, state = _claim(delivery_id, now)
    if delivery is None:
        if state == "busy" and not app.conf.task_always_eager:
            webhook_dispatch(delivery_id, countdown=max(1.0, settings.CRM_WEBHOOK_BACKOFF_BASE))
        return state
    started = time.monotonic()
    try:
        status_code, excerpt, error = _post(delivery)
        refused = False
    except WebhookRefused as exc:
        status_code, excerpt, error, refused = None, "", f"refused: {exc}"[:200], True
    latency_ms = int((time.monotonic() - started) * 1000)
    ok = status_code is not None and 200 <= status_code < 300
    attempts = delivery.attempts + 1
    finished = timezone.now()
    with transaction.atomic():
        WebhookAttempt.objects.create(
            delivery_id=delivery.pk,
            status_code=status_code,
            latency_ms=latency_ms,
            error=error,
            response_excerpt=excerpt,
        )
        update: dict[str, Any] = {"attempts": attempts, "lease_until": None}
        if ok:
            update |= {"status": WebhookDeliveryStatus.SUCCEEDED, "delivered_at": finished}
        elif refused or finished >= delivery.give_up_at:
            update |= {"status": WebhookDeliveryStatus.FAILED}
        else:
            delay = backoff_seconds(attempts)
            update |= {
                "status": WebhookDeliveryStatus.PENDING,
                "next_attempt_at": finished + dt.timedelta(seconds=delay),
            }
        WebhookDelivery.objects.filter(pk=delivery.pk, status=WebhookDeliveryStatus.SENDING).update(**update)
    if ok:
        return "succeeded"
    if update["status"] == WebhookDeliveryStatus.FAILED:
        logger.warning("webhook delivery %s failed for good after %d attempts (%s)", delivery.pk, attempts, error)
        return "failed"
    logger.info("webhook delivery %s attempt %d: %s; retrying", delivery.pk, attempts, status_code or error)
    # In-process tasks ignore countdowns, and a countdown longer than the broker's visibility timeout
    # would be handed to another worker while it waits: those retries are the sweep's (next_attempt_at).
    if not app.conf.task_always_eager and delay < COUNTDOWN_MAX_SECONDS:
        webhook_dispatch(str(delivery.pk), countdown=delay)
    return "retrying"


def webhook_send_again(delivery_ids) -> int:
    """The admin's "send again": pending now, same webhook-id (receivers dedupe on it)."""
    now = timezone.now()
    ids = [
        str(pk)
        for pk in WebhookDelivery.objects.filter(pk__in=list(delivery_ids))
        .exclude(status=WebhookDeliveryStatus.SENDING, lease_until__gt=now)
        .values_list("pk", flat=True)
    ]
    WebhookDelivery.objects.filter(pk__in=ids).update(
        status=WebhookDeliveryStatus.PENDING,
        next_attempt_at=now,
        lease_until=None,
        give_up_at=now + dt.timedelta(hours=settings.CRM_WEBHOOK_RETRY_HOURS),
    )
    transaction.on_commit(lambda: _send_all(ids))
    return len(ids)


def webhook_sweep(*, now: dt.datetime | None = None, batch: int = SWEEP_BATCH) -> int:
    """Periodic: re-send due deliveries whose message was lost (broker down, worker killed)."""
    now = now or timezone.now()
    due = (
        WebhookDelivery.objects.filter(next_attempt_at__lt=now - SWEEP_GRACE)
        .filter(Q(status=WebhookDeliveryStatus.PENDING) | Q(status=WebhookDeliveryStatus.SENDING, lease_until__lt=now))
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:batch]
    )
    sent = 0
    for pk in due:
        if not webhook_dispatch(str(pk)):
            break
        sent += 1
    return sent
