"""The login limiter: django-axes, one limiter for every login path.

/agent/login/, /admin/login/ and POST /api/v1/auth/token all authenticate through
django.contrib.auth.authenticate(request, ...), where axes' backend counts failures
per username and per client address (AXES_LOCKOUT_PARAMETERS) and refuses every
attempt, the right password too, for CRM_LOGIN_COOLOFF_MINUTES once either count
reaches CRM_LOGIN_FAILURE_LIMIT. Each failure during a cool-off starts it again.
The views say so in their own way: a form error on the pages, 429 on the API.
"""

from __future__ import annotations

import math

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.http import JsonResponse
from rest_framework import status
from rest_framework.throttling import BaseThrottle

from crm.exceptions import DomainError

LOCKED_OUT_MESSAGE = "Too many failed logins for this account or from this address. Try again in {minutes} minutes."


def client_address(request) -> str | None:
    """REMOTE_ADDR, or the X-Forwarded-For entry CRM_NUM_PROXIES proxies back: the throttles' rule too."""
    return BaseThrottle().get_ident(request)


def cool_off_seconds() -> int:
    return int(settings.AXES_COOLOFF_TIME.total_seconds())


def locked_out_message() -> str:
    return LOCKED_OUT_MESSAGE.format(minutes=math.ceil(cool_off_seconds() / 60))


def is_locked_out(request) -> bool:
    """Did axes refuse this request's login (now, or as of the failure just counted)?"""
    return bool(getattr(request, "axes_locked_out", False))


class LoginLockedOut(DomainError):
    """The token endpoint's answer during a cool-off: 429 with Retry-After."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS

    def __init__(self):
        super().__init__(locked_out_message())
        self.retry_after = cool_off_seconds()


def lockout_response(request, original_response=None, credentials=None):
    """AXES_LOCKOUT_CALLABLE: keep the view's own answer (its form error, or its 429)."""
    if original_response is not None:
        return original_response
    response = JsonResponse({"detail": locked_out_message()}, status=429)
    response["Retry-After"] = str(cool_off_seconds())
    return response


class LockoutAwareAuthenticationForm(AuthenticationForm):
    """A login form that says "too many failed logins" rather than "wrong password" during a cool-off."""

    def clean(self):
        try:
            return super().clean()
        except forms.ValidationError:
            if self.request is not None and is_locked_out(self.request):
                raise forms.ValidationError(locked_out_message(), code="locked_out") from None
            raise
