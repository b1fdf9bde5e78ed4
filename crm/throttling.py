"""Rate limits per client address (REMOTE_ADDR, or X-Forwarded-For behind NUM_PROXIES proxies)."""

import logging

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from crm.resilience import Breaker

logger = logging.getLogger(__name__)

# A throttle whose cache failed skips it for this long (every thread of the process):
# a frozen Redis would otherwise cost each request its socket timeout.
CACHE_BREAKER_SECONDS = 5.0
throttle_cache_breaker = Breaker("throttle cache", CACHE_BREAKER_SECONDS)


class ClientAddressThrottle(SimpleRateThrottle):
    """Per client address, for the endpoints that take anonymous requests.

    Fails open: throttling is best-effort protection, and a cache outage must not
    turn away a customer's feedback or a member of staff signing in.
    """

    scope: str

    def get_rate(self):
        # Read at request time so the rate follows settings (and test overrides).
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def allow_request(self, request, view):
        if throttle_cache_breaker.is_open():
            return True  # the cache failed moments ago: let the request in without waiting for it
        try:
            return super().allow_request(request, view)
        except Exception as exc:  # noqa: BLE001 - cache down: let the request in
            throttle_cache_breaker.trip()
            logger.warning("%s throttle unavailable (%s); allowing", self.scope, type(exc).__name__)
            return True


class FeedbackThrottle(ClientAddressThrottle):
    scope = "feedback"
