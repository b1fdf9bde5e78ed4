"""Domain exceptions and the one handler that maps them to the API's JSON errors."""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler


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


def server_error(request):
    """An unexpected failure: JSON under /api/ so clients can parse it, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Internal error; it has been logged."}, status=500)
    return defaults.server_error(request)
