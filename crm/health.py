"""Liveness and readiness for load balancers and orchestrators (public)."""

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
    with app.connection_for_write(settings.CELERY_BROKER_URL) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=1)
    return "ok"


def readyz(request):
    """Each dependency's state; 503 when one the service needs is down."""
    checks = {"database": _check_database, "cache": _check_cache, "broker": _check_broker}
    states, ready = {}, True
    for name, check in checks.items():
        try:
            states[name] = check()
        except Exception as exc:  # noqa: BLE001 - any failure means not ready; report its type only
            states[name] = f"down: {type(exc).__name__}"
            ready = False
    return JsonResponse({"status": "ready" if ready else "unavailable", **states}, status=200 if ready else 503)
