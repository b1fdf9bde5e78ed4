"""Genesys Cloud: conversation detail events (v2.detail.events.conversation.{id}.*) onto the call events.

Accepted as the EventBridge integration delivers them (an envelope whose `detail`
holds topicName and eventBody) or bare ({topicName, eventBody}, e.g. posted by a
Process Automation workflow's data action). user.start pops the card for the
agent (userId); customer.end closes the contact; the rest is acknowledged.
"""

from __future__ import annotations

import re
from typing import Any

from django.db.models import Q

from context.adapters import MalformedEvent, PlatformCall, require

PLATFORM = "genesys"
TOPIC = re.compile(r"^v2\.detail\.events\.conversation\.(?P<id>[^.]+)\.(?P<kind>[a-z.]+)$")
EVENTS = {"user.start": "connected", "customer.end": "ended"}


def _address(value: Any) -> str | None:
    """tel:+1555... as +1555...; None when absent."""
    if not value or not isinstance(value, str):
        return None
    return re.sub(r"^(tel|sip):", "", value)


def genesys_call_parse(body: Any) -> PlatformCall:
    if not isinstance(body, dict):
        raise MalformedEvent("Expected a JSON object.", field="topicName")
    detail = body.get("detail") if isinstance(body.get("detail"), dict) else body
    topic = require(detail, "topicName", "Genesys Cloud notification")
    matched = TOPIC.match(str(topic))
    if matched is None:
        raise MalformedEvent(f"'{topic}' is not a conversation detail event topic.", field="topicName")
    event_body = require(detail, "eventBody", "Genesys Cloud notification")
    if not isinstance(event_body, dict):
        raise MalformedEvent("'eventBody' must be an object.", field="eventBody")
    conversation_id = str(event_body.get("conversationId") or matched["id"])
    if conversation_id != matched["id"]:
        raise MalformedEvent("eventBody.conversationId does not match the topic.", field="conversationId")
    kind = matched["kind"]
    # Stable whichever way it was delivered (EventBridge retry, workflow re-run).
    event_id = ":".join(
        str(part) for part in (kind, conversation_id, event_body.get("participantId"), event_body.get("eventTime"))
    )
    event = EVENTS.get(kind)
    if event is None:
        return PlatformCall(event_id=event_id, call_id=conversation_id, event=None, ignored=f"{kind}: not a pop or end")
    user_id = str(event_body.get("userId") or "")
    if event == "connected" and not user_id:
        raise MalformedEvent("user.start without userId.", field="userId")
    outbound = str(event_body.get("direction", "")).upper() == "OUTBOUND"
    return PlatformCall(
        event_id=event_id,
        call_id=conversation_id,
        event=event,
        agent_identity=user_id,
        agent_match=Q(genesys_user_id=user_id) if user_id else None,
        phone=_address(event_body.get("dnis") if outbound else event_body.get("ani")),
    )
