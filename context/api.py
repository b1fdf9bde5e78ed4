"""POST /api/v1/context/lookup — the screen-pop.

The input is checked by a plain function (`lookup_input`) rather than a DRF
serializer: it runs on every call connect and a serializer costs more than the
lookup's SQL. `LookupInput` describes the same fields for the OpenAPI schema; a
test keeps the two in step. The body is rendered straight to JSON bytes.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from django.http import HttpRequest, HttpResponse
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import exceptions, serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from context.auth import TokenRolesAuthentication
from context.services import context_lookup
from crm import api_schema as schema
from crm import fastjson, metrics
from crm.api import StrictSerializer
from crm.exceptions import api_exception_handler
from crm.middleware import carries_credentials
from crm.models import VERIFIABLE, Channel
from crm.parsers import is_utf8, json_quick
from crm.permissions import is_agent

IDENTIFIER_FIELDS = ("phone", "email", "account", "customer_id")
# What an IVR or bot passes on is a handful of short answers; the cap keeps one
# lookup from storing an arbitrary document on the interaction.
MAX_IVR_BYTES = 4096


@extend_schema_field(schema.IVR_SCHEMA)
class IvrField(serializers.DictField):
    """The IVR's answers: a flat object of short scalars (ivr_problem says what is refused)."""


class LookupInput(StrictSerializer):
    """The request as documented in the schema (the view validates with `lookup_input`)."""

    requires_one_of = ("phone", "email", "account", "customer_id")  # the schema's anyOf

    channel = serializers.ChoiceField(choices=Channel.choices, default=Channel.PHONE)
    phone = serializers.CharField(max_length=64, required=False)
    email = serializers.CharField(max_length=254, required=False)
    account = serializers.CharField(max_length=64, required=False)
    customer_id = serializers.UUIDField(required=False)
    call_id = serializers.CharField(max_length=128, required=False)
    verified = serializers.ListField(
        child=serializers.ChoiceField(choices=VERIFIABLE), required=False, default=list, max_length=len(VERIFIABLE)
    )
    ivr = IvrField(required=False, default=dict)

    class Meta:
        ref_name = "LookupRequest"


# The hand validator below is a few microseconds where the serializer took a tenth of a
# millisecond; its field names, lengths and choices come from the serializer, the one
# definition the OpenAPI schema is generated from.
_LOOKUP_SERIALIZER_FIELDS = LookupInput().fields
LOOKUP_FIELDS = frozenset(_LOOKUP_SERIALIZER_FIELDS)
MAX_LENGTH: dict[str, int] = {
    name: _LOOKUP_SERIALIZER_FIELDS[name].max_length  # type: ignore[attr-defined]  # CharFields
    for name in ("phone", "email", "account", "call_id")
}


def lookup_input(data: Any) -> dict[str, Any]:
    """Validated keyword arguments for context_lookup; ValidationError names every bad field.

    A field given as null counts as absent; identifiers are normalized later, by
    the service, which names the field it cannot read.
    """
    if not isinstance(data, dict):
        raise ValidationError({"non_field_errors": ["Send a JSON object."]})
    errors: dict[str, list[str]] = {}
    unknown = set(data) - LOOKUP_FIELDS
    for name in sorted(unknown):
        errors[name] = ["Unknown field."]
    out: dict[str, Any] = {}
    channel = data.get("channel")
    if channel is None:
        out["channel"] = Channel.PHONE.value
    elif isinstance(channel, str) and channel in Channel.values:
        out["channel"] = channel
    else:
        errors["channel"] = [f"'{channel}' is not a channel ({', '.join(Channel.values)})."]
    for name in ("phone", "email", "account", "call_id"):
        value = data.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            errors[name] = ["Must be a string."]
        elif "\x00" in value:
            errors[name] = ["Null characters are not allowed."]
        elif len(value) > MAX_LENGTH[name]:
            errors[name] = [f"At most {MAX_LENGTH[name]} characters."]
        elif value.strip():
            out[name] = value
        elif name == "call_id":
            errors[name] = ["May not be blank."]
    customer_id = data.get("customer_id")
    if customer_id is not None:
        try:
            if not isinstance(customer_id, str):
                raise ValueError
            out["customer_id"] = uuid.UUID(customer_id)
        except ValueError:
            errors["customer_id"] = [f"'{customer_id}' is not a customer id (a UUID)."]
    verified = data.get("verified")
    if verified is not None:
        if (
            not isinstance(verified, list)
            or len(verified) > len(VERIFIABLE)
            or not all(isinstance(v, str) and v in VERIFIABLE for v in verified)
        ):
            errors["verified"] = [f"A list of identifier kinds ({', '.join(VERIFIABLE)})."]
        else:
            out["verified"] = verified
    ivr = data.get("ivr")
    if ivr is not None:
        problem = ivr_problem(ivr)
        if problem:
            errors["ivr"] = [problem]
        else:
            out["ivr"] = ivr
    if not errors and not any(name in out for name in IDENTIFIER_FIELDS):
        errors["phone"] = ["Give at least one of phone, email, account, customer_id."]
    if errors:
        raise ValidationError(errors)
    return out


def ivr_problem(value: Any) -> str | None:
    """Why an ivr value is refused: a flat object of short answers, bounded and storable
    (PostgreSQL JSON refuses NUL and lone surrogates); None when it is fine."""
    if not isinstance(value, dict):
        return "Must be an object."
    for key, answer in value.items():
        if not key or len(key) > 64:
            return f"'{key[:64]}' is not an IVR key (1-64 characters)."
        if answer is not None and not isinstance(answer, str | int | float | bool):
            return f"'{key}' must be a string, number, boolean or null."
    try:
        encoded = json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return "Contains characters that are not valid text."
    if len(encoded) > MAX_IVR_BYTES:
        return f"At most {MAX_IVR_BYTES} bytes."
    if b"\\u0000" in encoded:
        return "Null characters are not allowed."
    return None


class JsonOnly(DefaultContentNegotiation):
    """The screen pop answers JSON whatever the client's Accept says: parsing Accept cost 6 % of a lookup."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class LookupApi(APIView):
    # One query for token, user and roles (the default token auth takes two).
    authentication_classes = [TokenRolesAuthentication, SessionAuthentication]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JsonOnly

    def dispatch(self, request, *args, **kwargs):
        """A well-formed token call takes the lean lane (`lookup_lean`); everything else goes through DRF."""
        if request.method == "POST" and carries_credentials(request):
            response = lookup_lean(self, request)
            if response is not None:
                return response
        return super().dispatch(request, *args, **kwargs)

    @extend_schema(request=LookupInput, responses={200: schema.CardOut, **schema.errors(404)})
    def post(self, request):
        return lookup_respond(request.user, lookup_input(request.data))


def lookup_respond(actor, arguments: dict[str, Any]) -> HttpResponse:
    """The screen pop for an authenticated, permitted caller and valid input: look up, answer JSON."""
    started = time.perf_counter()
    card = context_lookup(actor=actor, **arguments)
    metrics.lookup_observe(card["match"], time.perf_counter() - started)
    return HttpResponse(fastjson.dumps(card), content_type="application/json")


_token_authentication = TokenRolesAuthentication()


def lookup_lean(view: APIView, request: HttpRequest) -> HttpResponse | None:
    """The screen pop of a CTI connector or agent desktop, without DRF's request machinery.

    DRF's Request wrapper, negotiation and parser plumbing cost about 12 % of a lookup's
    CPU. This lane does the same checks in the same order (token, role, JSON, input),
    and steps aside (None) at the first thing it does not like, so DRF handles the
    request from the start and answers exactly as it always has (401, 403, 415, 400).
    Nothing is written before that point. An error from the lookup itself (404, 409,
    a database outage) is answered by the API's one exception handler.
    """
    if request.content_type != "application/json" or not is_utf8(
        (request.content_params or {}).get("charset", "utf-8")
    ):
        return None
    try:
        credentials = _token_authentication.authenticate(request)
    except exceptions.AuthenticationFailed:
        return None
    if credentials is None or not is_agent(credentials[0]):
        return None
    try:
        arguments = lookup_input(json_quick(request.body))
    except (ValueError, ValidationError):  # DRF says what is wrong
        return None
    request.user = credentials[0]  # as DRF sets it: the access log names the caller
    try:
        return lookup_respond(request.user, arguments)
    except Exception as exc:
        response = api_exception_handler(exc, {"view": view, "request": request})
        if response is None:
            raise
        if isinstance(response, Response):
            response.accepted_renderer = JSONRenderer()
            response.accepted_media_type = JSONRenderer.media_type
            response.renderer_context = {"view": view, "request": request, "response": response}  # type: ignore[attr-defined]
            response.render()
        return response
