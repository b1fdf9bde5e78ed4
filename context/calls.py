"""Call events from the telephony connector: pop the card on the agent's page, close the contact."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone

from context import events
from context.services import CONTACT_SOURCE, context_lookup
from crm.exceptions import DomainError, NotFound
from crm.models import AuditAction, Interaction
from crm.permissions import is_agent
from crm.services import audit_record, staff_get

POPPING_EVENTS = ("ringing", "connected")
CALL_EVENTS = (*POPPING_EVENTS, "ended")


def call_agent_get(username: str):
    """The named agent; a call can only be put through to someone with the agent role."""
    agent = staff_get(username, field="agent")
    if not is_agent(agent):
        raise DomainError(f"'{username}' does not have the agent role.", field="agent")
    return agent


# What telephony systems send as the caller id of a call whose number is withheld.
WITHHELD_MARKERS = frozenset({"", "anonymous", "withheld", "private", "restricted", "unknown", "unavailable"})


def phone_withheld(phone: str | None) -> bool:
    return phone is None or phone.strip().lower() in WITHHELD_MARKERS


@transaction.atomic
def call_event_record(
    *,
    actor,
    event: str,
    agent: str,
    call_id: str,
    channel: str = "phone",
    phone: str | None = None,
    email: str | None = None,
    account: str | None = None,
    verified: Iterable[str] = (),
    ivr: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Record one call event; the agent's page hears of it once this commits.

    ringing/connected run the screen-pop lookup with the call's call_id, so the
    interaction is the one a lookup for that call returns, and repeats open
    nothing new. ended closes that interaction (the first ended_at stands).
    """
    agent_user = call_agent_get(agent)
    withheld = phone_withheld(phone)
    if withheld:
        phone = None
    if event in POPPING_EVENTS:
        card = context_lookup(
            actor=actor,
            agent=agent_user,
            channel=channel,
            phone=phone,
            email=email,
            account=account,
            call_id=call_id,
            verified=verified,
            ivr=ivr,
            withheld=withheld and not (email or account),
        )
        payload = {
            "type": "call",
            "event": event,
            "interaction_id": card["interaction_id"],
            "call": {
                "call_id": call_id,
                "channel": channel,
                # A withheld number is said so, never shown as "anonymous" (issue 12).
                "phone": None if withheld else phone,
                "withheld": withheld,
                "email": email,
                "account": account,
                "verified": list(verified),
            },
            "ended_at": None,
            "card": card,
        }
        events.publish_on_commit(agent_user.pk, payload)
        return {"interaction_id": card["interaction_id"]}

    interaction = Interaction.objects.filter(source=CONTACT_SOURCE, call_id=call_id).first()
    if interaction is None:
        raise NotFound(f"No call with call_id '{call_id}'.", field="call_id")
    # Claimed by a conditional update: of two `ended` events racing, the first time stands.
    if Interaction.objects.filter(pk=interaction.pk, ended_at__isnull=True).update(ended_at=timezone.now()):
        interaction.refresh_from_db(fields=["ended_at"])
        if interaction.customer_id is not None:
            audit_record(
                actor=actor,
                action=AuditAction.UPDATE,
                customer_id=interaction.customer_id,
                interaction_id=interaction.pk,
                detail={"call": "ended"},
            )
    interaction_id = str(interaction.pk)
    ended_at = interaction.ended_at

    def tell_page() -> None:
        current = events.current_get(agent_user.pk)
        if current is not None and current.get("interaction_id") == interaction_id:
            current["ended_at"] = ended_at.isoformat()
            events.current_set(agent_user.pk, current)
        events.publish(
            agent_user.pk,
            {"type": "ended", "interaction_id": interaction_id, "call_id": call_id, "ended_at": ended_at},
            remember=False,
        )

    transaction.on_commit(tell_page, robust=True)  # as publish_on_commit: a push failure is only logged
    return {"interaction_id": interaction_id}
