"""POST /api/v1/calls/{twilio,amazon-connect,genesys}: authenticate as the platform can, parse, apply.

Twilio signs its requests (X-Twilio-Signature, checked against CRM_TWILIO_AUTH_TOKEN);
Amazon Connect (EventBridge API destination) and Genesys Cloud send an integration
token (Authorization: Token ...) or, when CRM_<PLATFORM>_SHARED_SECRET is set, that
secret in X-Goldfish-Key (an EventBridge connection's API-key header), or an HMAC of the
body under it in X-Goldfish-Signature: sha256=<hex> (for a forwarder that can sign).
"""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from drf_spectacular.utils import OpenApiTypes, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from context.adapters import MalformedEvent, connect, genesys, platform_event_apply, twilio
from crm.exceptions import DomainError
from crm.permissions import is_integration

SHARED_SECRET_HEADER = "X-Goldfish-Key"  # noqa: S105 - a header name


SIGNATURE_HEADER = "X-Goldfish-Signature"


def _shared_secret_valid(request, setting: str) -> bool:
    """The platform's shared secret itself (API-key header), or an HMAC-SHA256 of the body under it."""
    secret = getattr(settings, setting, "")
    if not secret:
        return False
    given = request.headers.get(SHARED_SECRET_HEADER, "")
    if given:
        return hmac.compare_digest(given.encode(), secret.encode())
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if not signature.startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(signature.encode(), expected.encode())


class _PlatformPermission(BasePermission):
    secret_setting = ""
    message = (
        f"This needs the integration role, the platform's shared secret in {SHARED_SECRET_HEADER}, "
        f"or the body's HMAC in {SIGNATURE_HEADER}."
    )

    def has_permission(self, request, view) -> bool:
        return is_integration(request.user) or _shared_secret_valid(request, self.secret_setting)


class ConnectPermission(_PlatformPermission):
    secret_setting = "CRM_CONNECT_SHARED_SECRET"  # noqa: S105 - a setting name


class GenesysPermission(_PlatformPermission):
    secret_setting = "CRM_GENESYS_SHARED_SECRET"  # noqa: S105 - a setting name


# What an adapter answers a platform event: applied, ignored (why), duplicate or unmatched_agent (a warning).
PLATFORM_EVENT_RESULT = inline_serializer(
    "PlatformEventResult",
    {
        "status": serializers.CharField(help_text="applied, ignored, duplicate or unmatched_agent."),
        "event": serializers.CharField(required=False),
        "interaction_id": serializers.UUIDField(required=False, allow_null=True),
        "agent": serializers.CharField(required=False),
        "outcome": serializers.CharField(required=False),
        "reason": serializers.CharField(required=False),
        "warning": serializers.CharField(required=False),
    },
)
CONTACT_FLOW_ANSWER = inline_serializer(
    "ContactFlowAnswer",
    {
        "match": serializers.CharField(help_text='"true" when one customer matched, else "false".'),
        "customer_name": serializers.CharField(),
        "flags": serializers.CharField(help_text="Comma-separated card flags."),
        "repeat_contact": serializers.CharField(help_text='"true" or "false".'),
        "interaction_id": serializers.CharField(),
    },
)


def _actor(request):
    return request.user if request.user.is_authenticated else None


class ConnectCallApi(APIView):
    """Contact events → 202 {status, ...}; the contact-flow Lambda body → 200, a flat map of strings."""

    permission_classes = [ConnectPermission]

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={200: CONTACT_FLOW_ANSWER, 202: PLATFORM_EVENT_RESULT},
    )
    def post(self, request):
        if connect.connect_kind(request.data) == "lambda":
            return Response(connect.connect_flow_lookup(actor=_actor(request), body=request.data))
        call = connect.connect_contact_event_parse(request.data)
        result = platform_event_apply(platform=connect.PLATFORM, call=call, actor=_actor(request))
        return Response(result, status=status.HTTP_202_ACCEPTED)


class GenesysCallApi(APIView):
    """Conversation detail events → 202 {status, ...}."""

    permission_classes = [GenesysPermission]

    @extend_schema(request=OpenApiTypes.OBJECT, responses={202: PLATFORM_EVENT_RESULT})
    def post(self, request):
        call = genesys.genesys_call_parse(request.data)
        result = platform_event_apply(platform=genesys.PLATFORM, call=call, actor=_actor(request))
        return Response(result, status=status.HTTP_202_ACCEPTED)


def _twilio_url(request) -> str:
    """The URL Twilio signed: as configured publicly (behind a proxy), else as this request arrived."""
    public = settings.CRM_TWILIO_PUBLIC_URL
    if not public:
        return request.build_absolute_uri()
    query = request.META.get("QUERY_STRING", "")
    return f"{public}?{query}" if query else public


@csrf_exempt
@require_POST
def twilio_call_view(request):
    """Twilio voice status callbacks and TaskRouter events: 403 unless Twilio signed them."""
    if not twilio.twilio_signature_valid(
        _twilio_url(request), request.POST, request.headers.get("X-Twilio-Signature", "")
    ):
        return JsonResponse({"detail": "Invalid or missing X-Twilio-Signature."}, status=403)
    try:
        call = twilio.twilio_call_parse(request.POST)
        result = platform_event_apply(platform=twilio.PLATFORM, call=call)
    except DomainError as exc:
        body = {exc.field: [exc.message]} if exc.field else {}
        return JsonResponse({**body, "detail": exc.message}, status=exc.status_code)
    return JsonResponse(result, status=202)


__all__ = ["ConnectCallApi", "GenesysCallApi", "MalformedEvent", "twilio_call_view"]
