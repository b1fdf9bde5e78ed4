"""Enqueue Celery tasks by name, so domain modules never import crm.tasks (which imports them).

The task is looked up in the app's registry, not sent blind by name, so eager mode
(no REDIS_URL) still runs it in-process. A web process has not imported crm.tasks
yet: the first lookup asks Celery's loader to run its autodiscovery, once.
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.db import transaction
from kombu import Connection, pools

from crm.celery import app

logger = logging.getLogger(__name__)


# One thread of a process runs the autodiscovery; the others wait for it. Unguarded, a thread that
# came second saw crm.tasks half imported and its task "never registered": under gthread workers
# the first concurrent submissions after a start failed to publish and tripped the broker breaker.
_discovery_lock = threading.Lock()


def task_get(task_name: str):
    """The registered task; KeyError for a name no task module defines."""
    if task_name not in app.tasks:
        with _discovery_lock:
            if task_name not in app.tasks:
                app.loader.import_default_modules()  # autodiscovery: imports crm.tasks, which registers its tasks
    return app.tasks[task_name]


def _fail_fast_transport_options() -> dict:
    """Broker options for a publish someone waits for: one attempt, short socket timeouts (issue 11).

    The worker keeps settings.CELERY_BROKER_TRANSPORT_OPTIONS; a request must not pay
    kombu's connection retries (2 s) or a frozen Redis's read timeout.
    """
    seconds = settings.CRM_REDIS_TIMEOUT_MS / 1000
    return {"max_retries": 0, "interval_start": 0, "socket_connect_timeout": seconds, "socket_timeout": seconds}


# One connection description per broker URL and options: building one costs as much as the publish.
_publish_connections: dict[tuple, Connection] = {}


def _publish_connection() -> Connection:
    """The (unconnected) connection the publish pool is keyed by: the app's broker, fail-fast options."""
    options = _fail_fast_transport_options()
    key = (app.conf.broker_url, tuple(sorted(options.items())))
    connection = _publish_connections.get(key)
    if connection is None:
        connection = _publish_connections[key] = app.connection_for_write(transport_options=options)
    return connection


def publish(task_name: str, *args: str) -> None:
    """Send `task_name(*args)` now, once, with short timeouts; a broker failure is raised to the caller.

    The producer and its connection come from a per-process pool (kombu's, keyed by broker
    URL and these options): a fresh connection per message cost two TCP connects and the
    Redis hand-shake, about half of a feedback submission's time, and a fresh producer
    another 0.25 ms. A connection that failed is closed before it goes back, so the next
    publish connects afresh (once the breaker lets it try).
    """
    task = task_get(task_name)
    if app.conf.task_always_eager:
        task.apply_async(args=list(args))
        return
    # Bounded like every other Redis wait of a request: with more publishing threads than the
    # pool holds, a frozen broker must not hold the rest in an endless queue (LimitExceeded
    # is raised to the caller, a broker failure like any other).
    wait = settings.CRM_REDIS_TIMEOUT_MS / 1000
    with pools.producers[_publish_connection()].acquire(block=True, timeout=wait) as producer:
        try:
            task.apply_async(args=list(args), producer=producer, retry=False)
        except Exception:
            producer.connection.close()
            raise


def enqueue_on_commit(task_name: str, *args: str) -> None:
    """Send `task_name(*args)` once the current transaction commits; a broker outage is logged, not raised.

    For work that is recomputed on the next event anyway (recurring problems), a
    lost message is acceptable; the request that caused it must not fail.
    """

    def send() -> None:
        try:
            publish(task_name, *args)
        except Exception as exc:  # noqa: BLE001 - the broker being down must not fail the request
            logger.warning("%s not enqueued (%s)", task_name, type(exc).__name__)

    transaction.on_commit(send)
