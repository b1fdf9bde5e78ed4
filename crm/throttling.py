"""Rate limits per client address (REMOTE_ADDR, or X-Forwarded-For behind NUM_PROXIES proxies)."""

import logging

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

logger = logging.getLogger(__name__)


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
        try:
            return super().allow_request(request, view)
        except Exception as exc:  # noqa: BLE001 - cache down: let the request in
            logger.warning("%s throttle unavailable (%s); allowing", self.scope, type(exc).__name__)
            return True


class FeedbackThrottle(ClientAddressThrottle):
    scope = "feedback"
