"""POST /api/v1/context/lookup — the screen-pop."""

import json

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from context.services import context_lookup
from crm.api import StrictSerializer
from crm.models import Channel, IdentityKind

VERIFIABLE = [*IdentityKind.values, "customer_id"]
# What an IVR or bot passes on is a handful of short answers; the cap keeps one
# lookup from storing an arbitrary document on the interaction.
MAX_IVR_BYTES = 4096


class LookupInput(StrictSerializer):
    channel = serializers.ChoiceField(choices=Channel.choices, default=Channel.PHONE)
    phone = serializers.CharField(max_length=64, required=False)
    email = serializers.CharField(max_length=254, required=False)
    account = serializers.CharField(max_length=64, required=False)
    customer_id = serializers.UUIDField(required=False)
    call_id = serializers.CharField(max_length=128, required=False)
    verified = serializers.ListField(
        child=serializers.ChoiceField(choices=VERIFIABLE), required=False, default=list, max_length=len(VERIFIABLE)
    )
    ivr = serializers.DictField(required=False, default=dict)

    class Meta:
        ref_name = "LookupRequest"

    def validate_ivr(self, value):
        """A flat object of short answers, bounded and storable (PostgreSQL JSON refuses NUL and lone surrogates)."""
        for key, answer in value.items():
            if not key or len(key) > 64:
                raise serializers.ValidationError(f"'{key[:64]}' is not an IVR key (1-64 characters).")
            if answer is not None and not isinstance(answer, str | int | float | bool):
                raise serializers.ValidationError(f"'{key}' must be a string, number, boolean or null.")
        try:
            encoded = json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise serializers.ValidationError("Contains characters that are not valid text.") from None
        if len(encoded) > MAX_IVR_BYTES:
            raise serializers.ValidationError(f"At most {MAX_IVR_BYTES} bytes.")
        if b"\\u0000" in encoded:
            raise serializers.ValidationError("Null characters are not allowed.")
        return value

    def validate(self, attrs):
        if not any(attrs.get(k) for k in ("phone", "email", "account", "customer_id")):
            raise serializers.ValidationError({"phone": ["Give at least one of phone, email, account, customer_id."]})
        return attrs


class LookupApi(APIView):
    @extend_schema(request=LookupInput, responses={200: dict})
    def post(self, request):
        data = LookupInput(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(context_lookup(actor=request.user, **data.validated_data))
