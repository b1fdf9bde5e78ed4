"""Request middleware: the request id, access line and HTTP metrics (issue 17); the privacy headers (issue 10);
fast JSON refusals for oversized bodies and a database that is down (issue 11); the
browser-only middleware that an API call carrying its own token skips (issue 14).

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
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware

from crm import metrics, observability
from crm.resilience import body_too_large, database_outage, is_database_down_error, service_unavailable

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


# --- issue 11: fast JSON refusals ------------------------------------------------------------


class BodySizeLimitMiddleware:
    """A declared Content-Length over DATA_UPLOAD_MAX_MEMORY_SIZE: 413 JSON before anything reads the body.

    Bodies sent without a length are still capped where they are read (Django's
    RequestDataTooBig, handled by crm.exceptions.bad_request; the JSON parser's cap).
    Multipart uploads are left to Django, which streams their files to disk and counts
    only the other fields against the limit (a bulk import file may be larger).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        multipart = request.META.get("CONTENT_TYPE", "").startswith("multipart/")
        if limit is not None and length > limit and not multipart:
            return body_too_large()
        return self.get_response(request)


class DatabaseUnavailableMiddleware:
    """A view that cannot reach the database answers 503 JSON with Retry-After, and the outage is logged once.

    The API's views get the same from the DRF exception handler; this covers the
    pages (agent page, admin, feedback form).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not is_database_down_error(exception):
            return None
        database_outage.down(exception)
        return service_unavailable()


# --- issue 14: browser-only middleware --------------------------------------------------------


def carries_credentials(request) -> bool:
    """A request that authenticates itself with an API token (`Authorization: Token …`).

    Such a call is never authenticated by a session (DRF tries the token first and
    fails with 401 on a bad one), so it needs no session, messages or `request.user`
    from a cookie. A browser sends no token; one behind a proxy's HTTP Basic
    authentication sends `Authorization: Basic …` and keeps every middleware.
    """
    scheme = f"{settings.REST_KNOX['AUTH_HEADER_PREFIX']} "  # knox's own prefix, compared as knox does: any case
    return request.META.get("HTTP_AUTHORIZATION", "")[: len(scheme)].lower() == scheme.lower()


class BrowserOnly:
    """Skips the wrapped middleware for requests that carry their own credentials.

    Sessions, auth-from-a-cookie and messages did nothing for a screen pop but cost 4 % of
    its CPU. Django's CSRF middleware stays as it is (it already lets a DRF view decide,
    and `manage.py check --deploy` looks for it by name).
    """

    sync_capable = True
    async_capable = False

    def __call__(self, request):
        if carries_credentials(request):
            return self.get_response(request)
        return super().__call__(request)


class BrowserSessionMiddleware(BrowserOnly, SessionMiddleware):
    pass


class BrowserAuthenticationMiddleware(BrowserOnly, AuthenticationMiddleware):
    pass


class BrowserMessageMiddleware(BrowserOnly, MessageMiddleware):
    pass
