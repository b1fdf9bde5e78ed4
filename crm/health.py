"""Liveness and readiness for load balancers and orchestrators (public)."""

import threading
import time

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse

from crm.celery import app


def healthz(request):
    """The process serves."""
    return JsonResponse({"status": "ok"})


def _check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def _check_cache() -> str:
    cache.set("readyz", "1", timeout=5)
    if cache.get("readyz") != "1":
        raise RuntimeError("cache did not return what was set")
    return "ok"


def _check_broker() -> str:
    if not settings.REDIS_URL:
        return "in-process"
    # The configured URL, read now: one attempt with a short timeout, so a broker
    # that is down makes readiness fail fast instead of hanging the probe.
    seconds = settings.CRM_REDIS_TIMEOUT_MS / 1000
    options = {"socket_connect_timeout": seconds, "socket_timeout": seconds}
    with app.connection_for_write(settings.CELERY_BROKER_URL, transport_options=options) as conn:
        conn.ensure_connection(max_retries=0, interval_start=0, interval_step=0, timeout=seconds)
        conn.default_channel.client.ping()  # connected is not enough: a frozen Redis accepts connections
    return "ok"


# Redis checks that have not answered by then count as down: the probe itself must
# answer fast (issue 11: within 0.5 s even with Redis frozen).
READYZ_DEADLINE_SECONDS = 0.3


def _run_bounded(checks: dict, deadline: float) -> dict[str, str]:
    """Run the checks side by side in daemon threads; one still running at the deadline is reported as a timeout."""
    states: dict[str, str] = {}

    def run(name, check):
        try:
            states[name] = check()
        except Exception as exc:  # noqa: BLE001 - any failure means not ready; report its type only
            states[name] = f"down: {type(exc).__name__}"

    threads = [threading.Thread(target=run, args=item, daemon=True) for item in checks.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return {name: states.get(name, "down: Timeout") for name in checks}


def readyz(request):
    """Each dependency's state; 503 when one the service needs is down. Redis checks are bounded in time."""
    deadline = time.monotonic() + READYZ_DEADLINE_SECONDS
    states = _run_bounded({"cache": _check_cache, "broker": _check_broker}, deadline)
    try:
        states["database"] = _check_database()  # this request's connection, in this thread
    except Exception as exc:  # noqa: BLE001 - any failure means not ready; report its type only
        states["database"] = f"down: {type(exc).__name__}"
    ready = all(not state.startswith("down") for state in states.values())
    states = {name: states[name] for name in ("database", "cache", "broker")}
    response = JsonResponse({"status": "ready" if ready else "unavailable", **states}, status=200 if ready else 503)
    # "Not ready" is this probe's answer, not a server error: no ERROR log line per probe
    # (a load balancer asks every few seconds through a whole outage).
    response._has_been_logged = True
    return response
