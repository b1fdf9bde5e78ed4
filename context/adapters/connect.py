"""Amazon Connect: EventBridge contact events and the contact-flow Lambda invocation (JSON).

Contact events carry the agent but not the caller; the contact flow's Lambda
invocation carries the caller but no agent (the flow runs before routing). So the
Lambda body is the lookup (it opens the contact and answers a flat string map the
flow can branch on), and CONNECTED_TO_AGENT pops that contact's card for the agent.
The call_id is the initial contact id, so a transfer stays one interaction.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from context.adapters import MalformedEvent, PlatformCall, caller_phone, ivr_from, require
from context.services import context_lookup

PLATFORM = "connect"
CONTACT_EVENT = "Amazon Connect Contact Event"
CONTACT_EVENTS = {"CONNECTED_TO_AGENT": "connected", "DISCONNECTED": "ended"}


def _ci(mapping: Any, key: str) -> Any:
    """mapping[key] matched case-insensitively (AWS samples spell agentInfo both ways)."""
    if not isinstance(mapping, dict):
        return None
    if key in mapping:
        return mapping[key]
    lowered = key.lower()
    return next((v for k, v in mapping.items() if k.lower() == lowered), None)


def connect_kind(body: Any) -> str:
    """'contact_event' | 'lambda', or a 400 for anything else."""
    if not isinstance(body, dict):
        raise MalformedEvent("Expected a JSON object.", field="detail-type")
    if body.get("detail-type") == CONTACT_EVENT:
        return "contact_event"
    if body.get("Name") == "ContactFlowEvent":
        return "lambda"
    raise MalformedEvent(
        "Not an Amazon Connect contact event (detail-type) or contact-flow invocation (Name).", field="detail-type"
    )


def connect_contact_event_parse(body: dict[str, Any]) -> PlatformCall:
    event_id = require(body, "id", "EventBridge event")
    detail = require(body, "detail", "Amazon Connect contact event")
    event_type = require(detail, "eventType", "Amazon Connect contact event")
    contact_id = require(detail, "contactId", "Amazon Connect contact event")
    call_id = str(detail.get("initialContactId") or contact_id)
    event = CONTACT_EVENTS.get(str(event_type).upper())
    if event is None:
        return PlatformCall(event_id=str(event_id), call_id=call_id, event=None, ignored=f"{event_type}: no agent")
    agent_arn = str(_ci(_ci(detail, "agentInfo"), "agentArn") or "")
    if event == "connected" and not agent_arn:
        raise MalformedEvent("CONNECTED_TO_AGENT without agentInfo.agentArn.", field="agentInfo")
    user_id = agent_arn.rsplit("/", 1)[-1]
    return PlatformCall(
        event_id=str(event_id),
        call_id=call_id,
        event=event,
        agent_identity=agent_arn,
        agent_match=(Q(connect_agent=agent_arn) | Q(connect_agent=user_id)) if agent_arn else None,
    )


def connect_flow_lookup(*, actor, body: dict[str, Any]) -> dict[str, str]:
    """The contact flow's Lambda step: look the caller up, answer a flat map of strings.

    Keys: match, customer_name, flags (comma-joined), repeat_contact, interaction_id.
    Connect retries a slow Lambda within 8 s; the lookup is milliseconds, and a
    retry finds the same contact by call_id.
    """
    contact = require(require(body, "Details", "contact-flow invocation"), "ContactData", "contact-flow invocation")
    contact_id = require(contact, "ContactId", "contact-flow invocation")
    call_id = str(contact.get("InitialContactId") or contact_id)
    address = (contact.get("CustomerEndpoint") or {}).get("Address")
    attributes = contact.get("Attributes") or {}
    if not isinstance(attributes, dict):
        raise MalformedEvent("'Attributes' must be an object.", field="Attributes")
    ivr, verified = ivr_from(attributes)
    phone = caller_phone(address)
    withheld = phone is None
    card = context_lookup(
        actor=actor,
        channel="phone",
        phone=phone,
        call_id=call_id,
        verified=verified,
        ivr=ivr,
        withheld=withheld,
    )
    customer = card.get("customer") or {}
    return {
        "match": "true" if card["match"] == "unique" else "false",
        "customer_name": customer.get("preferred_name") or customer.get("display_name") or "",
        "flags": ",".join(card["flags"]),
        "repeat_contact": "true" if "repeat_contact" in card["flags"] else "false",
        "interaction_id": card["interaction_id"],
    }
