"""Reads that tolerate replication lag go to a PostgreSQL read replica; everything else to the primary.

Off unless DATABASE_REPLICA_URL is set (crm/settings.py adds the "replica" alias and turns
CRM_READ_REPLICA on). Code marks a read as lag-tolerant with `reads_may_lag` (customer
search, the admin's 360 and reports: a supervisor can live with a second-old view; the
screen pop, wrap-ups and workflows never can). Writes, and any read inside a transaction
on the primary, stay on the primary, so a request never reads behind its own writes.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

REPLICA = "replica"
_lag_ok: contextvars.ContextVar[bool] = contextvars.ContextVar("crm_reads_may_lag", default=False)

F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def reads_may_lag_block() -> Iterator[None]:
    token = _lag_ok.set(True)
    try:
        yield
    finally:
        _lag_ok.reset(token)


def reads_may_lag(func: F) -> F:
    """Run `func`'s reads on the replica when there is one (see the module docstring)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with reads_may_lag_block():
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def replica_in_use() -> bool:
    return (
        getattr(settings, "CRM_READ_REPLICA", False)
        and REPLICA in settings.DATABASES
        and _lag_ok.get()
        and not connections[DEFAULT_DB_ALIAS].in_atomic_block
    )


class ReplicaRouter:
    def db_for_read(self, model, **hints) -> str | None:
        return REPLICA if replica_in_use() else None

    def db_for_write(self, model, **hints) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints) -> bool:
        # The replica is a copy of the primary: rows read from either relate freely.
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints) -> bool:
        return db == DEFAULT_DB_ALIAS
