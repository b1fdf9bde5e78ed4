"""Request middleware: the request id, access line and HTTP metrics (issue 17); the privacy headers (issue 10).

`RequestObservabilityMiddleware`, outermost: the X-Request-ID, one JSON access-log line and
the HTTP metrics per request.

`PrivacyHeadersMiddleware`: `Cache-Control: no-store` on every response except static files
and the public health and metrics probes: nearly every page and API answer carries customer
data, and a response that does not costs nothing uncached. The agent page gets a strict
Content-Security-Policy: it loads only its own script and styles (it has no inline script),
so an injected <script> in a customer's name or note cannot run there.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings

from crm import metrics, observability

logger = logging.getLogger("goldfish.access")

# Probes and scrapes come every few seconds: logged at DEBUG, counted all the same.
QUIET_ROUTES = frozenset({"healthz", "readyz", "metrics"})


def _route(request) -> str:
    """The URL pattern's name (bounded, never a raw path that could carry an identifier)."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "unmatched"
    return match.view_name or match.route or "unnamed"


class RequestObservabilityMiddleware:
    """Outermost middleware: binds the request id for every log line and task of the request."""

    def __init__(self, get_response):
        self.get_response = get_response
        # CRM_ACCESS_LOG=false drops the per-request line (its write is most of this
        # middleware's cost); the request id, metrics and every other log line stay.
        self.access_log = getattr(settings, "CRM_ACCESS_LOG", True)

    def __call__(self, request):
        request_id = observability.request_id_accept(request.META.get("HTTP_X_REQUEST_ID"))
        request.request_id = request_id
        tokens = observability.request_bind(request_id, request)
        request.started_at = time.time()
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            duration = time.perf_counter() - started
            response["X-Request-ID"] = request_id
            route = _route(request)
            metrics.http_observe(route, request.method, response.status_code, duration)
            if self.access_log:
                self._log(request, route, response.status_code, duration)
            return response
        finally:
            observability.request_unbind(tokens)

    @staticmethod
    def _log(request, route: str, status: int, duration: float) -> None:
        logger.log(
            logging.DEBUG if route in QUIET_ROUTES else logging.INFO,
            "request",
            extra={
                "method": request.method,
                "route": route,
                "status": status,
                "duration_ms": round(duration * 1000, 2),
            },
        )


# --- issue 10: privacy headers ---------------------------------------------------------------
AGENT_PAGE_CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
CACHEABLE_PREFIXES = ("/healthz", "/readyz", "/metrics")


class PrivacyHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.static = "/" + settings.STATIC_URL.lstrip("/")

    def __call__(self, request):
        response = self.get_response(request)
        path = request.path
        public = path.startswith(self.static) or path.startswith(CACHEABLE_PREFIXES)
        if not public and "no-store" not in response.get("Cache-Control", ""):
            response["Cache-Control"] = "no-store"
        if path.startswith("/agent/"):
            response.setdefault("Content-Security-Policy", AGENT_PAGE_CSP)
        return response
