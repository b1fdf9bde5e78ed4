"""Domain exceptions and the one handler that maps them to the API's JSON errors."""

import sys

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from crm.resilience import body_too_large, database_outage, is_database_down_error, service_unavailable


class DomainError(Exception):
    """A request the domain refuses; `field` names the offending input when there is one."""

    status_code: int = status.HTTP_400_BAD_REQUEST

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(DomainError):
    status_code = status.HTTP_404_NOT_FOUND


class Conflict(DomainError):
    status_code = status.HTTP_409_CONFLICT


class Forbidden(DomainError):
    """Outside what this user may do to this object (the role alone allows the call)."""

    status_code = status.HTTP_403_FORBIDDEN


def api_exception_handler(exc, context):
    """DRF's handler plus domain errors, in the same shape: {field: [message]} or {detail}."""
    if isinstance(exc, DomainError):
        body = {exc.field: [exc.message]} if exc.field else {}
        body["detail"] = exc.message
        headers = {"Retry-After": str(exc.retry_after)} if getattr(exc, "retry_after", None) else None
        return Response(body, status=exc.status_code, headers=headers)
    if is_database_down_error(exc):
        database_outage.down(exc)
        return service_unavailable()
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    return exception_handler(exc, context)


def not_found(request, exception=None):
    """URLs that match nothing: JSON under /api/ (the contract's error shape), Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=status.HTTP_404_NOT_FOUND)
    return defaults.page_not_found(request, exception)


def bad_request(request, exception=None):
    """A request Django refused before any view (an oversized body, a bad Host): JSON under /api/, 413 for size."""
    if isinstance(exception, RequestDataTooBig):
        return body_too_large()
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Bad request."}, status=status.HTTP_400_BAD_REQUEST)
    return defaults.bad_request(request, exception)


def server_error(request):
    """An unexpected failure: JSON under /api/ so clients can parse it, Django's page elsewhere.

    A database that went away outside a view (in a middleware) still gets the outage's 503.
    """
    exc = sys.exc_info()[1]
    if exc is not None and is_database_down_error(exc):
        database_outage.down(exc)
        return service_unavailable()
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Internal error; it has been logged."}, status=500)
    return defaults.server_error(request)
