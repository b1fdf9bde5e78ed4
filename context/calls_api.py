"""POST /api/v1/calls — call events from the telephony (CTI) connector."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from context.api import IvrField, ivr_problem
from context.calls import CALL_EVENTS, call_event_record
from crm import api_schema as schema
from crm.api import StrictSerializer
from crm.models import VERIFIABLE, Channel
from crm.permissions import IsIntegration


class CallEventInput(StrictSerializer):
    event = serializers.ChoiceField(choices=CALL_EVENTS)
    agent = serializers.CharField(max_length=150)
    call_id = serializers.CharField(max_length=128)
    channel = serializers.ChoiceField(choices=Channel.choices, default=Channel.PHONE)
    # Absent, empty or "anonymous"/"withheld"...: a withheld number, which pops as unknown.
    phone = serializers.CharField(max_length=64, required=False, allow_blank=True, allow_null=True)
    email = serializers.CharField(max_length=254, required=False)
    account = serializers.CharField(max_length=64, required=False)
    verified = serializers.ListField(
        child=serializers.ChoiceField(choices=VERIFIABLE), required=False, default=list, max_length=len(VERIFIABLE)
    )
    ivr = IvrField(required=False, default=dict)

    def validate_ivr(self, value):
        # The same bounds as the lookup: a flat object of short, storable answers.
        problem = ivr_problem(value)
        if problem:
            raise serializers.ValidationError(problem)
        return value


class CallEventApi(APIView):
    """202: the event is recorded; the agent's open page is told once it commits."""

    permission_classes = [IsIntegration]

    @extend_schema(
        request=CallEventInput,
        responses={
            202: inline_serializer("CallEventAccepted", {"interaction_id": serializers.UUIDField()}),
            **schema.errors(404),
        },
    )
    def post(self, request):
        data = CallEventInput(data=request.data)
        data.is_valid(raise_exception=True)
        result = call_event_record(actor=request.user, **data.validated_data)
        return Response(result, status=status.HTTP_202_ACCEPTED)
