"""POST /api/v1/interactions/{id}/verify — the agent verified the caller on this contact (issue 12)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from crm import api_schema as schema
from crm.api import StrictSerializer
from crm.card import iso
from crm.models import IdentityKind
from crm.verification import contact_identity_verify


class ContactVerifyApi(APIView):
    """Record "Verified on this call" for one of the linked customer's identifiers (agent or supervisor)."""

    class InputSerializer(StrictSerializer):
        kind = serializers.ChoiceField(choices=IdentityKind.choices)
        value = serializers.CharField(
            max_length=254, required=False, help_text="Which one, when the customer has several of this kind."
        )

        class Meta:
            ref_name = "ContactVerify"

    @extend_schema(request=InputSerializer, responses={200: schema.ContactVerifyOut, **schema.errors(409)})
    def post(self, request, interaction_id):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        interaction, identity = contact_identity_verify(
            actor=request.user, interaction_id=interaction_id, **data.validated_data
        )
        return Response(
            {
                "interaction_id": str(interaction.pk),
                "verified_on_call": interaction.verified,
                "identity": {
                    "kind": identity.kind,
                    "value": identity.normalized,
                    "verified": identity.verified_at is not None,
                    "verified_at": iso(identity.verified_at),
                    "verified_via": identity.verified_via or None,
                },
            }
        )
