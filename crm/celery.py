"""The Celery app. With REDIS_URL unset, tasks run in-process (eager)."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")

app = Celery("goldfish")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Celery's Django fix-up closes the database connection before and after every task unless
# this is set: each workflow then paid a new PostgreSQL backend, its connection set-up and
# re-planned statements (issue 14: about half the worker's and most of PostgreSQL's CPU per
# workflow). A worker's connection now lives like a web process's: `task_connections_check`
# below drops a broken or expired (CONN_MAX_AGE) one before each task, and the fix-up still
# recycles it after this many tasks. Read lazily (add_defaults), once Django's settings load.
TASKS_PER_CONNECTION = 1000
app.add_defaults({"CELERY_DB_REUSE_MAX": TASKS_PER_CONNECTION})


@signals.task_prerun.connect(dispatch_uid="goldfish-task-connections")
def task_connections_check(sender=None, **kwargs) -> None:
    """What Django does at each request's start: close connections that failed or outlived CONN_MAX_AGE.

    Also re-arms CONN_HEALTH_CHECKS, so a connection the database dropped while the worker
    was idle is replaced before the task's first query instead of failing it. Not for eager
    tasks: they run inside a web request, possibly inside its transaction.
    """
    if sender is not None and getattr(sender.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
