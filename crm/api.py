"""REST API of the customer memory: one small class per operation.

Views validate input with a nested InputSerializer, call one service or
selector, and shape the output; the rules live in services and selectors.
"""

from __future__ import annotations

import zoneinfo

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from crm import api_schema as schema
from crm import audit, merges, privacy, selectors, services
from crm.authentication import TokenAuthentication
from crm.exceptions import DomainError
from crm.identifiers import InvalidIdentifier, normalize
from crm.models import (
    Channel,
    ContactReason,
    Customer,
    Direction,
    IdentityKind,
    Interaction,
    Outcome,
    Tier,
)
from crm.permissions import IsSupervisor

# Bounds on repeated input, so one request cannot write thousands of rows.
MAX_IDENTITIES = 20
MAX_FACTS = 50
MAX_PREFERENCES = 50
# A wrap-up note, not a transcript (CONTRACT: Interactions); also a database constraint.
MAX_SUMMARY = Interaction.SUMMARY_MAX_LENGTH


def validate_timezone(value: str) -> None:
    if value and value not in zoneinfo.available_timezones():
        raise serializers.ValidationError(f"'{value}' is not an IANA time zone, e.g. 'Europe/London'.")


def query_of(request) -> dict:
    """Query parameters without DRF's own (?format=json picks the renderer)."""
    return {k: v for k, v in request.query_params.items() if k != api_settings.URL_FORMAT_OVERRIDE}


class StrictSerializer(serializers.Serializer):
    """Rejects fields it does not know, so a typo is a 400 rather than silently ignored."""

    # The schema says so: additionalProperties false (crm.api_schema.AutoSchema).
    refuses_unknown_fields = True

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = set(data) - set(self.fields)
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in sorted(unknown)})
            # DRF's CharField turns 0 into "0"; the schema says string, so a number is refused.
            not_text = {name: ["Must be a string."] for name, field in self.fields.items()
                        if name in data and _has_non_text(field, data[name])}  # fmt: skip
            if not_text:
                raise serializers.ValidationError(not_text)
        return super().to_internal_value(data)


def _has_non_text(field, value) -> bool:
    """A text field (or a list/dict of text) given something other than a string (null is the field's business)."""
    if value is None:
        return False
    if isinstance(field, serializers.CharField):
        return not isinstance(value, str)
    if isinstance(field, serializers.ListField) and isinstance(value, list):
        return any(_has_non_text(field.child, item) for item in value)
    if isinstance(field, serializers.DictField) and isinstance(value, dict):
        return any(_has_non_text(field.child, item) for item in value.values())
    return False


class IdentityInput(StrictSerializer):
    kind = serializers.ChoiceField(choices=IdentityKind.choices)
    value = serializers.CharField(max_length=254)
    verified = serializers.BooleanField(default=False)

    class Meta:
        ref_name = "IdentityInput"

    def validate(self, attrs):
        """An unreadable identifier is named here, where the field is, before anything is written."""
        try:
            normalize(attrs["kind"], attrs["value"])
        except InvalidIdentifier as exc:
            raise serializers.ValidationError({"value": [exc.message]}) from None
        return attrs


def customer_out(customer: Customer) -> dict:
    return {
        "id": str(customer.pk),
        "display_name": customer.display_name,
        "preferred_name": customer.preferred_name,
        "language": customer.language,
        "timezone": customer.timezone,
        "tier": customer.tier,
        "created_at": customer.created_at,
        "updated_at": customer.updated_at,
        "identities": selectors.customer_identities(customer),
        "preferences": selectors.customer_preferences(customer),
        "facts": selectors.customer_facts(customer),
    }


def customer_summary_out(customer: Customer) -> dict:
    return {
        "id": str(customer.pk),
        "display_name": customer.display_name,
        "preferred_name": customer.preferred_name,
        "tier": customer.tier,
    }


class CustomerListCreateApi(APIView):
    class InputSerializer(StrictSerializer):
        display_name = serializers.CharField(max_length=200)
        preferred_name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
        language = serializers.CharField(max_length=16, required=False, default="en")
        timezone = serializers.CharField(
            max_length=64, required=False, allow_blank=True, default="", validators=[validate_timezone]
        )
        tier = serializers.ChoiceField(choices=Tier.choices, required=False, default=Tier.STANDARD)
        identities = IdentityInput(many=True, required=False, default=list, max_length=MAX_IDENTITIES)  # type: ignore[call-arg]

        class Meta:
            ref_name = "CustomerCreate"

    class QuerySerializer(serializers.Serializer):
        search = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")

        class Meta:
            ref_name = "CustomerSearch"

    @extend_schema(
        operation_id="customers_list",
        parameters=[QuerySerializer],
        responses={200: schema.CustomerSummaryListOut},
    )
    def get(self, request):
        query = self.QuerySerializer(data=query_of(request))
        query.is_valid(raise_exception=True)
        customers = selectors.customer_search(query.validated_data["search"])
        audit.customers_search_view(request.user, customers)
        return Response({"results": [customer_summary_out(c) for c in customers]})

    @extend_schema(request=InputSerializer, responses={201: schema.CustomerOut, **schema.errors(409)})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        payload = dict(data.validated_data)
        payload["timezone_name"] = payload.pop("timezone")
        customer = services.customer_create(actor=request.user, **payload)
        return Response(customer_out(customer), status=status.HTTP_201_CREATED)


class CustomerDetailApi(APIView):
    class InputSerializer(StrictSerializer):
        display_name = serializers.CharField(max_length=200, required=False)
        preferred_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
        language = serializers.CharField(max_length=16, required=False)
        timezone = serializers.CharField(
            max_length=64, required=False, allow_blank=True, validators=[validate_timezone]
        )
        tier = serializers.ChoiceField(choices=Tier.choices, required=False)

        class Meta:
            ref_name = "CustomerUpdate"

    def get_permissions(self):
        if self.request.method == "DELETE":
            return [IsSupervisor()]
        return super().get_permissions()

    @extend_schema(responses={200: schema.CustomerOut})
    def get(self, request, customer_id):
        customer = services.live_customer_get(customer_id, field="id")
        audit.customer_view(request.user, customer)
        return Response(customer_out(customer))

    @extend_schema(request=InputSerializer, responses={200: schema.CustomerOut})
    def patch(self, request, customer_id):
        customer = services.live_customer_get(customer_id, field="id")
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        customer = services.customer_update(actor=request.user, customer=customer, **data.validated_data)
        return Response(customer_out(customer))

    @extend_schema(responses={204: None})
    def delete(self, request, customer_id):
        customer = services.live_customer_get(customer_id, field="id")
        privacy.customer_erase(actor=request.user, customer=customer)
        return Response(status=status.HTTP_204_NO_CONTENT)


class CustomerIdentityCreateApi(APIView):
    @extend_schema(request=IdentityInput, responses={201: schema.CustomerOut, **schema.errors(409)})
    def post(self, request, customer_id):
        customer = services.live_customer_get(customer_id, field="id")
        data = IdentityInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.identity_add(actor=request.user, customer=customer, **data.validated_data)
        return Response(customer_out(customer), status=status.HTTP_201_CREATED)


class CustomerTimelineApi(APIView):
    class QuerySerializer(StrictSerializer):
        before = serializers.DateTimeField(required=False)
        cursor = serializers.CharField(required=False, max_length=200, help_text="next_cursor of the previous page")
        limit = serializers.IntegerField(required=False, min_value=1, max_value=200, default=selectors.TIMELINE_PAGE)

        class Meta:
            ref_name = "TimelineQuery"

        def validate_cursor(self, value):
            try:
                return selectors.timeline_cursor_parse(value)
            except ValueError:
                raise serializers.ValidationError("Not a cursor from next_cursor.") from None

    @extend_schema(parameters=[QuerySerializer], responses={200: schema.TimelineOut})
    def get(self, request, customer_id):
        customer = services.live_customer_get(customer_id, field="id")
        query = self.QuerySerializer(data=query_of(request))
        query.is_valid(raise_exception=True)
        entries = selectors.customer_timeline(customer, **query.validated_data)
        audit.timeline_view(request.user, customer)
        full = len(entries) == query.validated_data["limit"]
        return Response(
            {
                "results": entries,
                "next_cursor": selectors.timeline_cursor(entries[-1]) if full else None,
                # Older entries only; entries sharing that moment may be skipped: prefer next_cursor.
                "next_before": entries[-1]["at"] if full else None,
            }
        )


class CustomerMergeApi(APIView):
    permission_classes = [IsSupervisor]

    class InputSerializer(StrictSerializer):
        duplicate_id = serializers.UUIDField()
        # issue 13: required when both customers hold different verified accounts (else 409)
        reason = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")

        class Meta:
            ref_name = "CustomerMerge"

    @extend_schema(request=InputSerializer, responses={200: schema.MergeOut, **schema.errors(409)})
    def post(self, request, customer_id):
        survivor = services.live_customer_get(customer_id, field="id")
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        record = privacy.customer_merge(
            actor=request.user,
            survivor=survivor,
            duplicate_id=data.validated_data["duplicate_id"],
            reason=data.validated_data["reason"],
        )
        return Response(
            {"id": str(survivor.pk), "merged": str(record.duplicate_id), "moved": record.moved, "merge_id": record.pk}
        )


class CustomerUnmergeApi(APIView):
    """issue 13: undo a merge from its record (crm.merges states what goes back)."""

    permission_classes = [IsSupervisor]

    class InputSerializer(StrictSerializer):
        merge_id = serializers.IntegerField(min_value=1)

        class Meta:
            ref_name = "CustomerUnmerge"

    @extend_schema(request=InputSerializer, responses={200: schema.UnmergeOut, **schema.errors(409)})
    def post(self, request, customer_id):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        record = merges.customer_unmerge(
            actor=request.user, survivor_id=customer_id, merge_id=data.validated_data["merge_id"]
        )
        return Response(
            {
                "id": str(record.survivor_id),
                "restored": str(record.duplicate_id),
                "merge_id": record.pk,
                "undone_at": record.undone_at,
            }
        )


class CustomerExportApi(APIView):
    permission_classes = [IsSupervisor]

    @extend_schema(responses={200: schema.ExportOut})
    def get(self, request, customer_id):
        customer = get_object_or_404(Customer, pk=customer_id)
        return Response(privacy.customer_export(actor=request.user, customer=customer))


def interaction_out(interaction: Interaction) -> dict:
    return {
        "id": str(interaction.pk),
        "customer_id": str(interaction.customer_id) if interaction.customer_id else None,
        "channel": interaction.channel,
        "direction": interaction.direction,
        "started_at": interaction.started_at,
        "ended_at": interaction.ended_at,
        "agent": interaction.agent.username if interaction.agent else None,
        "queue": interaction.queue,
        "reason": interaction.reason.code if interaction.reason else None,
        "reason_text": interaction.reason_text,
        "summary": interaction.summary,
        "outcome": interaction.outcome or None,
        "identifiers": interaction.identifiers,
        "verified": interaction.verified,
        "ivr": interaction.ivr,
        "case_id": str(interaction.case_id) if interaction.case_id else None,
        "call_id": interaction.call_id,
        "external_id": interaction.external_id,
    }


class FactInput(StrictSerializer):
    key = serializers.SlugField(max_length=64)
    value = serializers.CharField(max_length=500)

    class Meta:
        ref_name = "FactInput"


class InteractionCreateApi(APIView):
    class InputSerializer(StrictSerializer):
        channel = serializers.ChoiceField(choices=Channel.choices)
        direction = serializers.ChoiceField(choices=Direction.choices, required=False, default=Direction.INBOUND)
        customer_id = serializers.UUIDField(required=False)
        phone = serializers.CharField(max_length=64, required=False)
        email = serializers.CharField(max_length=254, required=False)
        account = serializers.CharField(max_length=64, required=False)
        started_at = serializers.DateTimeField(required=False)
        ended_at = serializers.DateTimeField(required=False)
        reason = serializers.CharField(max_length=50, required=False, allow_blank=True)
        reason_text = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
        summary = serializers.CharField(required=False, allow_blank=True, default="", max_length=MAX_SUMMARY)
        outcome = serializers.ChoiceField(choices=Outcome.choices, required=False, allow_blank=True, default="")
        agent = serializers.CharField(max_length=150, required=False)
        queue = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
        external_id = serializers.CharField(max_length=128, required=False)

        class Meta:
            ref_name = "InteractionCreate"

    @extend_schema(
        request=InputSerializer,
        responses={
            201: schema.InteractionOut,
            200: OpenApiResponse(schema.InteractionOut, description="A replayed external_id: the existing contact."),
            **schema.errors(404),
        },
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        payload = dict(data.validated_data)
        identifiers = {kind: payload.pop(kind) for kind in IdentityKind.values if kind in payload}
        interaction, created = services.interaction_record(actor=request.user, identifiers=identifiers, **payload)
        if not created:  # a replay of the external_id: the answer shows a contact that already existed
            audit.interaction_view(request.user, interaction, via="external_id_replay")
        return Response(interaction_out(interaction), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class InteractionDetailApi(APIView):
    class InputSerializer(StrictSerializer):
        reason = serializers.CharField(max_length=50, required=False)
        reason_text = serializers.CharField(max_length=200, required=False, allow_blank=True)
        summary = serializers.CharField(required=False, allow_blank=True, max_length=MAX_SUMMARY)
        outcome = serializers.ChoiceField(choices=Outcome.choices, required=False)
        ended_at = serializers.DateTimeField(required=False)
        customer_id = serializers.UUIDField(required=False)
        facts = FactInput(many=True, required=False, default=list, max_length=MAX_FACTS)  # type: ignore[call-arg]
        preferences = serializers.DictField(
            child=serializers.CharField(max_length=500, allow_blank=True), required=False, default=dict
        )

        class Meta:
            ref_name = "InteractionWrapUp"

        def validate_preferences(self, value):
            if len(value) > MAX_PREFERENCES:
                raise serializers.ValidationError(f"At most {MAX_PREFERENCES} preferences at a time.")
            for key in value:
                if not key or len(key) > 64 or "\x00" in key:
                    raise serializers.ValidationError(
                        f"'{key[:64]!r}' is not a preference key (1-64 characters, no null characters)."
                    )
            return value

    @extend_schema(responses={200: schema.InteractionOut})
    def get(self, request, interaction_id):
        interaction = services.interaction_live_get(interaction_id)
        audit.interaction_view(request.user, interaction)
        return Response(interaction_out(interaction))

    @extend_schema(request=InputSerializer, responses={200: schema.InteractionOut, **schema.errors(403, 409)})
    def patch(self, request, interaction_id):
        interaction = services.interaction_live_get(interaction_id)
        services.wrap_up_authorize(request.user, interaction)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        interaction = services.interaction_wrap_up(actor=request.user, interaction=interaction, **data.validated_data)
        interaction = Interaction.objects.select_related("agent", "reason").get(pk=interaction.pk)
        return Response(interaction_out(interaction))


class ReasonListApi(APIView):
    @extend_schema(
        responses={
            200: inline_serializer(
                "ContactReason", {"code": serializers.CharField(), "label": serializers.CharField()}, many=True
            )
        }
    )
    def get(self, request):
        reasons = ContactReason.objects.filter(active=True).order_by("label").values("code", "label")
        return Response(list(reasons))


class TokenApi(APIView):
    """Exchange username and password for a new API token (POST); revoke tokens (DELETE).

    Every POST goes through the login limiter (crm/login_limits.py): during a cool-off
    it answers 429 with Retry-After, whatever the password.
    """

    class InputSerializer(StrictSerializer):
        username = serializers.CharField(max_length=150)
        password = serializers.CharField(max_length=1024, style={"input_type": "password"}, trim_whitespace=False)

        class Meta:
            ref_name = "TokenRequest"

    def get_authenticators(self):
        # Logging in takes no credentials; revoking takes the token being revoked.
        return [TokenAuthentication()] if self._revoking() else []

    def get_permissions(self):
        return [IsAuthenticated()] if self._revoking() else [AllowAny()]

    def _revoking(self) -> bool:
        return getattr(self.request, "method", None) == "DELETE"

    @extend_schema(
        request=InputSerializer,
        responses={
            200: inline_serializer(
                "Token",
                {"token": serializers.CharField(), "expires_at": serializers.DateTimeField(allow_null=True)},
            ),
            **schema.errors(429),
        },
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token, expires_at = services.token_for_credentials(request=request._request, **data.validated_data)
        return Response({"token": token, "expires_at": expires_at})

    @extend_schema(
        parameters=[
            OpenApiParameter("all", bool, description="true: revoke all of the user's tokens, not only this one.")
        ],
        request=None,
        responses={204: None},
    )
    def delete(self, request):
        everything = request.query_params.get("all", "false").lower()
        if everything not in ("true", "false"):
            raise DomainError("all must be true or false.", field="all")
        services.tokens_revoke(request.user, request.auth, everything=everything == "true")
        return Response(status=status.HTTP_204_NO_CONTENT)
