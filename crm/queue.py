"""Enqueue Celery tasks by name, so domain modules never import crm.tasks (which imports them).

The task is looked up in the app's registry, not sent blind by name, so eager mode
(no REDIS_URL) still runs it in-process. A web process has not imported crm.tasks
yet: the first lookup asks Celery's loader to run its autodiscovery, once.
"""

from __future__ import annotations

import logging

from django.db import transaction

from crm.celery import app

logger = logging.getLogger(__name__)


def task_get(task_name: str):
    """The registered task; KeyError for a name no task module defines."""
    if task_name not in app.tasks:
        app.loader.import_default_modules()  # autodiscovery: imports crm.tasks, which registers its tasks
    return app.tasks[task_name]


def publish(task_name: str, *args: str) -> None:
    """Send `task_name(*args)` now; a broker failure is raised to the caller."""
    task_get(task_name).apply_async(args=list(args))


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
