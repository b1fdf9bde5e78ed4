"""Middleware that turns a refused or failed request into a fast JSON answer instead of an HTML page or a traceback."""

from __future__ import annotations

from django.conf import settings
from django.http import JsonResponse

from crm.resilience import RETRY_AFTER_SECONDS, database_outage, is_database_down_error


def service_unavailable(what: str = "The database") -> JsonResponse:
    """503 with Retry-After; marked as logged, since the outage itself is logged once (crm.resilience)."""
    response = JsonResponse(
        {"detail": f"{what} is unavailable; retry in a few seconds."},
        status=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )
    response._has_been_logged = True  # type: ignore[attr-defined]  # Django's log_response skips it
    return response


def body_too_large() -> JsonResponse:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return JsonResponse({"detail": f"The request body is larger than {limit} bytes."}, status=413)


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
