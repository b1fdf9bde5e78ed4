"""Prometheus metrics and GET /metrics (issue 17; CONTRACT.md "Operations").

Counters and histograms are updated where things happen (the request middleware,
the lookup view, the agent stream, Celery's signals). With PROMETHEUS_MULTIPROC_DIR
set, prometheus-client writes them to per-process files in that directory and
/metrics sums every gunicorn worker's and Celery worker's files; unset, a process
reports only its own (fine for `make run`). The state of the workflows (outbox,
notifications, queue depth, dependencies) is read from the database and Redis at
scrape time instead, so it is right whichever process answers the scrape.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import json
import logging
import os
import time
from collections.abc import Iterator
from typing import Any

import redis
from celery import signals
from django.conf import settings
from django.db.models import Count, Min, Q
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from crm import health, observability
from crm.models import EmailStatus, Feedback, FeedbackStatus, OutboundEmail
from crm.outbox import broker_breaker

logger = logging.getLogger(__name__)

MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")

# --- HTTP ---------------------------------------------------------------------------------------
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
http_requests = Counter(
    "goldfish_http_requests_total",
    "HTTP requests by route name, method and status class",
    ["route", "method", "status"],
)
http_duration = Histogram(
    "goldfish_http_request_duration_seconds",
    "Time to the response (headers, for streams) by route name and status class",
    ["route", "status"],
    buckets=HTTP_BUCKETS,
)

# --- The screen-pop lookup -------------------------------------------------------------------------
LOOKUP_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)
lookup_duration = Histogram(
    "goldfish_lookup_duration_seconds",
    "The lookup service (resolve, open the contact, build the card) by match kind",
    ["match"],
    buckets=LOOKUP_BUCKETS,
)

# --- The agent desk --------------------------------------------------------------------------------
agent_streams = Gauge("goldfish_agent_streams", "Agent pages with an open event stream", multiprocess_mode="livesum")
agent_pops = Counter("goldfish_agent_pops_pushed_total", "Call events pushed to an open agent page")
agent_push_latency = Histogram(
    "goldfish_agent_event_to_push_seconds",
    "From the call event reaching the service to its push down an agent's stream",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)

# --- Workflows (Celery) ----------------------------------------------------------------------------
TASK_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
tasks_started = Counter("goldfish_tasks_started_total", "Celery tasks started", ["task"])
tasks_succeeded = Counter("goldfish_tasks_succeeded_total", "Celery tasks that succeeded", ["task"])
tasks_failed = Counter(
    "goldfish_tasks_failed_total", "Celery tasks that failed for good (no retry left): dead letters", ["task"]
)
tasks_retried = Counter("goldfish_tasks_retried_total", "Celery task retries scheduled", ["task"])
task_wait = Histogram(
    "goldfish_task_queue_wait_seconds", "From enqueue to the task starting", ["task"], buckets=TASK_BUCKETS
)
task_runtime = Histogram("goldfish_task_runtime_seconds", "Task run time", ["task"], buckets=TASK_BUCKETS)

# The Celery message header carrying the enqueue time (seconds since the epoch).
SENT_AT_HEADER = "goldfish_sent_at"


# Labelled children, looked up once: .labels() costs more than the update itself (per request).
_http_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
_lookup_children: dict[str, Any] = {}


HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def http_observe(route: str, method: str, status: int, seconds: float) -> None:
    method = method if method in HTTP_METHODS else "other"  # a client's made-up verbs are not new series
    key = (route, method, status // 100)
    children = _http_children.get(key)
    if children is None:
        status_class = f"{status // 100}xx"
        children = (http_requests.labels(route, method, status_class), http_duration.labels(route, status_class))
        _http_children[key] = children
    children[0].inc()
    children[1].observe(seconds)


def lookup_observe(match: str, seconds: float) -> None:
    child = _lookup_children.get(match)
    if child is None:
        child = _lookup_children[match] = lookup_duration.labels(match)
    child.observe(seconds)


def pop_pushed(event_at: float | None) -> None:
    """One event went down an agent's stream; `event_at` is when its call event arrived (epoch seconds)."""
    agent_pops.inc()
    if event_at is not None:
        agent_push_latency.observe(max(0.0, time.time() - event_at))


# --- Celery signals: request id in, metrics out ---------------------------------------------------

_running: dict[str, tuple[float, Any]] = {}


@signals.before_task_publish.connect(dispatch_uid="goldfish-before-publish")
def _on_publish(sender=None, headers=None, **kwargs) -> None:
    """Stamp each message with the enqueuing request's id and the time it was sent."""
    if headers is None:
        return
    request_id = observability.request_id_current()
    if request_id and not headers.get(observability.REQUEST_ID_HEADER):
        headers[observability.REQUEST_ID_HEADER] = request_id
    headers[SENT_AT_HEADER] = time.time()


def _header(task, name: str):
    request = getattr(task, "request", None)
    return getattr(request, name, None) if request is not None else None


@signals.task_prerun.connect(dispatch_uid="goldfish-task-prerun")
def _on_task_start(task_id=None, task=None, **kwargs) -> None:
    name = getattr(task, "name", "unknown")
    # Eager tasks (no broker) run inside the request: its id is already bound.
    request_id = _header(task, observability.REQUEST_ID_HEADER) or observability.request_id_current()
    tokens = observability.task_bind(name, str(task_id), request_id)
    _running[str(task_id)] = (time.perf_counter(), tokens)
    tasks_started.labels(name).inc()
    sent_at = _header(task, SENT_AT_HEADER)
    if isinstance(sent_at, int | float):
        task_wait.labels(name).observe(max(0.0, time.time() - sent_at))


@signals.task_postrun.connect(dispatch_uid="goldfish-task-postrun")
def _on_task_end(task_id=None, task=None, **kwargs) -> None:
    started = _running.pop(str(task_id), None)
    if started is None:
        return
    task_runtime.labels(getattr(task, "name", "unknown")).observe(time.perf_counter() - started[0])
    with contextlib.suppress(ValueError):  # bound in another context (should not happen)
        observability.task_unbind(started[1])


@signals.task_success.connect(dispatch_uid="goldfish-task-success")
def _on_task_success(sender=None, **kwargs) -> None:
    tasks_succeeded.labels(getattr(sender, "name", "unknown")).inc()


@signals.task_failure.connect(dispatch_uid="goldfish-task-failure")
def _on_task_failure(sender=None, task_id=None, exception=None, **kwargs) -> None:
    name = getattr(sender, "name", "unknown")
    tasks_failed.labels(name).inc()
    # Type only: an exception's message can quote a value (an e-mail in a constraint error).
    logger.error("task %s failed for good: %s", name, type(exception).__name__)


@signals.task_retry.connect(dispatch_uid="goldfish-task-retry")
def _on_task_retry(sender=None, reason=None, **kwargs) -> None:
    tasks_retried.labels(getattr(sender, "name", "unknown")).inc()


@signals.worker_process_shutdown.connect(dispatch_uid="goldfish-worker-process-shutdown")
def _on_worker_process_shutdown(pid=None, **kwargs) -> None:
    """A prefork child that ends takes its live gauges with it."""
    if MULTIPROC_DIR:
        multiprocess.mark_process_dead(pid or os.getpid())


# --- State read at scrape time -------------------------------------------------------------------


class StateCollector(Collector):
    """Workflow backlogs and dependency states, read when /metrics is scraped.

    Each part is read on its own: a database that is down still leaves the
    dependency gauges (which say so) in the answer.
    """

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for part in (self._dependencies, self._outbox, self._notifications, self._queue, self._breaker):
            try:
                yield from part()
            except Exception as exc:  # noqa: BLE001 - a scrape reports what it can read
                logger.warning("metrics: %s unavailable (%s)", part.__name__.strip("_"), type(exc).__name__)

    @staticmethod
    def _dependencies() -> Iterator[GaugeMetricFamily]:
        body = json.loads(health.readyz(None).content)
        up = GaugeMetricFamily("goldfish_dependency_up", "1 when /readyz sees the dependency up", labels=["dependency"])
        for name, state in body.items():
            if name != "status" and isinstance(state, str):
                up.add_metric([name], 0.0 if state.startswith("down") else 1.0)
        yield up
        yield GaugeMetricFamily("goldfish_ready", "1 when /readyz answers 200", value=float(body["status"] == "ready"))

    @staticmethod
    def _outbox() -> Iterator[GaugeMetricFamily]:
        now = timezone.now()
        row = Feedback.objects.filter(status=FeedbackStatus.RECEIVED).aggregate(
            unsent=Count("pk", filter=Q(dispatched_at__isnull=True)),
            queued=Count("pk", filter=Q(dispatched_at__isnull=False)),
            oldest=Min("received_at"),
        )
        backlog = GaugeMetricFamily(
            "goldfish_outbox_backlog",
            "Feedback whose workflow has not run: unsent (not yet on the broker) or queued",
            labels=["state"],
        )
        backlog.add_metric(["unsent"], row["unsent"])
        backlog.add_metric(["queued"], row["queued"])
        yield backlog
        age = (now - row["oldest"]).total_seconds() if row["oldest"] else 0.0
        yield GaugeMetricFamily(
            "goldfish_outbox_oldest_age_seconds", "Age of the oldest feedback whose workflow has not run", value=age
        )

    @staticmethod
    def _notifications() -> Iterator[GaugeMetricFamily]:
        """The e-mail outbox (crm/emails.py, issue 11): e-mails owed, and the dead letters a person must retry."""
        row = OutboundEmail.objects.aggregate(
            pending=Count("pk", filter=Q(status=EmailStatus.PENDING)),
            failed=Count("pk", filter=Q(status=EmailStatus.FAILED)),
        )
        dead_workflows = Feedback.objects.filter(failed_at__isnull=False, status=FeedbackStatus.RECEIVED).count()
        yield GaugeMetricFamily(
            "goldfish_notifications_pending",
            "E-mails in the outbox not sent yet (staff and customers)",
            value=row["pending"],
        )
        dead = GaugeMetricFamily(
            "goldfish_dead_letters",
            "Work given up after its attempts, waiting for a person to retry it",
            labels=["kind"],
        )
        dead.add_metric(["email"], row["failed"])
        dead.add_metric(["feedback_workflow"], dead_workflows)
        yield dead

    @staticmethod
    def _queue() -> Iterator[GaugeMetricFamily]:
        """Depth of the default queue and of the webhooks queue (a dead webhook worker shows here)."""
        queues = [
            getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery"),
            getattr(settings, "CRM_WEBHOOK_QUEUE", "webhooks"),
        ]
        depths = dict.fromkeys(queues, 0)  # no broker (REDIS_URL unset): tasks run in-process, nothing waits
        if settings.REDIS_URL:
            client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=1, socket_timeout=1)
            try:
                depths = {name: client.llen(name) for name in queues}
            finally:
                client.close()
        depth_family = GaugeMetricFamily("goldfish_queue_depth", "Messages waiting on the broker", labels=["queue"])
        for name, depth in depths.items():
            depth_family.add_metric([name], float(depth))
        yield depth_family

    @staticmethod
    def _breaker() -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "goldfish_broker_breaker_open",
            "1 while this web process skips the broker after a failed publish",
            value=float(broker_breaker.is_open()),
        )


def exposition() -> bytes:
    """Every process's metrics (multiprocess mode) or this one's, then the state read now."""
    state = CollectorRegistry(auto_describe=False)
    state.register(StateCollector())
    if MULTIPROC_DIR:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry) + generate_latest(state)
    return generate_latest(REGISTRY) + generate_latest(state)


# --- GET /metrics -----------------------------------------------------------------------------------


def _allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    allow = getattr(settings, "CRM_METRICS_ALLOW", ["127.0.0.1", "::1"])
    return [ipaddress.ip_network(item, strict=False) for item in allow]


def metrics_allowed(request: HttpRequest) -> bool:
    """The contract's rule: an address in CRM_METRICS_ALLOW, or the bearer token CRM_METRICS_TOKEN.

    A request that came through a proxy (X-Forwarded-For) is let in by token only:
    behind a proxy on the same host every request would look like loopback.
    """
    token = getattr(settings, "CRM_METRICS_TOKEN", "")
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if token and header.startswith("Bearer ") and hmac.compare_digest(header[7:].strip().encode(), token.encode()):
        return True
    if request.META.get("HTTP_X_FORWARDED_FOR"):
        return False
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in network for network in _allowed_networks())


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus text exposition, for the scraper only."""
    if not metrics_allowed(request):
        return HttpResponse("Metrics are for the monitoring system.\n", status=403, content_type="text/plain")
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_PLAIN_0_0_4)
