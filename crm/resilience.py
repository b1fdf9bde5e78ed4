"""Failing fast while a dependency is down: a breaker shared by a process's threads, and the database outage state.

A request must never pay a dead dependency's timeouts again and again: after one
failure the breaker makes the other threads skip it for a few seconds. A database
outage is logged once when it starts and once when it ends, not per request.
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.db.backends.signals import connection_created
from django.http import JsonResponse

logger = logging.getLogger(__name__)

# What a client is told to wait before retrying while a dependency is down.
RETRY_AFTER_SECONDS = 5


class Breaker:
    """After a failure, `is_open()` is true for `seconds`; one lock, so every thread of the process sees it."""

    def __init__(self, name: str, seconds: float):
        self.name = name
        self.seconds = seconds
        self._open_until = 0.0
        self._lock = threading.Lock()

    def is_open(self) -> bool:
        with self._lock:
            return time.monotonic() < self._open_until

    def trip(self) -> None:
        with self._lock:
            self._open_until = time.monotonic() + self.seconds

    def reset(self) -> None:
        with self._lock:
            self._open_until = 0.0


class _OutageState:
    """Whether the last database attempt of this process failed; logs one warning per change."""

    def __init__(self, name: str):
        self.name = name
        self._down_since: float | None = None
        self._lock = threading.Lock()

    @property
    def is_down(self) -> bool:
        return self._down_since is not None

    def down(self, exc: BaseException) -> None:
        with self._lock:
            if self._down_since is not None:
                return
            self._down_since = time.monotonic()
        logger.warning("%s unavailable (%s: %s); answering 503", self.name, type(exc).__name__, _first_line(exc))

    def up(self) -> None:
        if self._down_since is None:  # the common case, without the lock
            return
        with self._lock:
            if self._down_since is None:
                return
            seconds, self._down_since = time.monotonic() - self._down_since, None
        logger.warning("%s available again after %.1f s", self.name, seconds)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:200]


database_outage = _OutageState("database")

# The errors that mean "the database is unreachable", not "this query is wrong".
DATABASE_DOWN_ERRORS = (OperationalError, InterfaceError)


def is_database_down_error(exc: BaseException) -> bool:
    """OperationalError/InterfaceError, except the ones a query causes itself (serialization, deadlock, timeout)."""
    if not isinstance(exc, DATABASE_DOWN_ERRORS):
        return False
    # psycopg's SQLSTATE class 40 (transaction rollback) and 57014 (statement timeout) are
    # OperationalErrors raised by a live server; they are not an outage.
    cause = exc.__cause__
    sqlstate = getattr(cause, "sqlstate", None) or ""
    return not (sqlstate.startswith("40") or sqlstate == "57014")


def _connected(sender, connection, **kwargs) -> None:
    """A new database connection succeeded: an outage, if there was one, is over."""
    database_outage.up()


connection_created.connect(_connected, dispatch_uid="crm.resilience.database_outage_up")


# The fast refusals (middleware, the exception handlers): here, below both, so neither imports the other.


def service_unavailable(what: str = "The database") -> JsonResponse:
    """503 with Retry-After; marked as logged, since the outage itself is logged once (crm.resilience)."""
    response = JsonResponse(
        {"detail": f"{what} is unavailable; retry in a few seconds."},
        status=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )
    response._has_been_logged = True  # type: ignore[attr-defined]  # Django's log_response skips it
    return response


def body_too_large() -> JsonResponse:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return JsonResponse({"detail": f"The request body is larger than {limit} bytes."}, status=413)
