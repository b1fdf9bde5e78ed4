"""POST /api/v1/context/lookup — the screen-pop."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from context.services import context_lookup
from crm.api import StrictSerializer
from crm.models import Channel, IdentityKind

VERIFIABLE = [*IdentityKind.values, "customer_id"]


class LookupInput(StrictSerializer):
    channel = serializers.ChoiceField(choices=Channel.choices, default=Channel.PHONE)
    phone = serializers.CharField(max_length=64, required=False)
    email = serializers.CharField(max_length=254, required=False)
    account = serializers.CharField(max_length=64, required=False)
    customer_id = serializers.UUIDField(required=False)
    call_id = serializers.CharField(max_length=128, required=False)
    verified = serializers.ListField(child=serializers.ChoiceField(choices=VERIFIABLE), required=False, default=list)
    ivr = serializers.DictField(required=False, default=dict)

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
