"""Response headers that keep customer data private (issue 10).

`Cache-Control: no-store` on every response except static files and the public health
and metrics probes: nearly every page and API answer carries customer data, and a
response that does not costs nothing uncached. The agent page gets a strict
Content-Security-Policy: it loads only its own script and styles (it has no inline
script), so an injected <script> in a customer's name or note cannot run there.
"""

from __future__ import annotations

from django.conf import settings

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
CACHEABLE_PREFIXES = ("/healthz", "/readyz")


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
