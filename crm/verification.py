"""Verified on this call: the agent checked one of the caller's identifiers (issue 12).

The verification is recorded twice, for two readers: on the contact (its `verified`
list, which a transfer of the same call_id keeps, so the next agent is not told to
verify again) and on the identity (when, how, by whom, so later contacts show it).
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from crm.exceptions import Conflict, DomainError, NotFound
from crm.models import AuditAction, Identity, Interaction, VerifiedVia
from crm.services import audit_record, identifiers_normalize


@transaction.atomic
def contact_identity_verify(
    *, actor, interaction_id, kind: str, value: str | None = None
) -> tuple[Interaction, Identity]:
    """Mark the customer's identifier `kind` (the one equal to `value`, if given) verified on this contact.

    Repeating it on the same contact changes nothing. The contact must be linked to a
    live customer who holds such an identifier.
    """
    interaction = Interaction.objects.select_for_update().filter(pk=interaction_id).first()
    if interaction is None:
        raise NotFound(f"No interaction with id '{interaction_id}'.", field="interaction_id")
    customer = interaction.customer
    if customer is None or not customer.is_live:
        raise Conflict("Link the contact to a customer before verifying them.", field="interaction_id")
    identities = Identity.objects.select_for_update().filter(customer=customer, kind=kind).order_by("created_at")
    if value:
        try:
            normalized = identifiers_normalize({kind: value}).get(kind)
        except DomainError as exc:
            raise DomainError(str(exc), field="value") from None
        identities = identities.filter(normalized=normalized)
    found = list(identities)
    if not found:
        raise DomainError(f"The customer has no {kind} identifier{' ' + repr(value) if value else ''}.", field="kind")
    if len(found) > 1:
        raise DomainError(f"The customer has several {kind} identifiers: say which (value).", field="value")
    identity = found[0]
    if kind in interaction.verified and identity.verified_at is not None:
        return interaction, identity  # a repeat on this contact
    identity.verified_at = timezone.now()
    identity.verified_via = VerifiedVia.AGENT
    identity.verified_by = actor if getattr(actor, "is_authenticated", False) else None
    identity.save(update_fields=["verified_at", "verified_via", "verified_by"])
    if kind not in interaction.verified:
        interaction.verified = [*interaction.verified, kind]
        interaction.save(update_fields=["verified"])
    audit_record(
        actor=actor,
        action=AuditAction.UPDATE,
        customer_id=customer.pk,
        interaction_id=interaction.pk,
        detail={"verified": kind, "via": VerifiedVia.AGENT.value},
    )
    return interaction, identity
