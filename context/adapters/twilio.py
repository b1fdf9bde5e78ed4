"""Twilio: Voice status callbacks and TaskRouter events (form-encoded) onto the call events.

Which is which by keys: EventType = a TaskRouter event callback; CallSid = a Voice
request or status callback. The customer's leg is the call: its CallSid (the
ParentCallSid of the agent leg that <Dial> created) is the call_id. The agent leg
ringing / answered pops the card for the agent it dialled (To = client:name, a
number or SIP URI); the customer leg's completion closes the contact. The agent
leg ending alone does not (a transfer or re-ring may follow).
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.db.models import Q
from twilio.request_validator import RequestValidator

from context.adapters import MalformedEvent, PlatformCall, ivr_from, require

PLATFORM = "twilio"
ENDED_STATUSES = frozenset({"completed", "busy", "no-answer", "canceled", "failed"})
AGENT_LEG_EVENTS = {"ringing": "ringing", "in-progress": "connected"}
TASKROUTER_EVENTS = {
    "reservation.created": "ringing",
    "reservation.accepted": "connected",
    "task.completed": "ended",
    "task.canceled": "ended",
}
# TaskAttributes of an <Enqueue>d call that describe the call itself, not the caller's IVR answers.
TASK_CALL_FIELDS = frozenset(
    {"from", "to", "call_sid", "account_sid", "api_version", "direction", "called", "caller", "type", "name"}
    | {f"{p}_{g}" for p in ("from", "to", "caller", "called") for g in ("city", "state", "zip", "country")}
)


def twilio_signature_valid(url: str, params, signature: str) -> bool:
    """X-Twilio-Signature checked by Twilio's own library; no token configured: nothing is valid."""
    token = settings.CRM_TWILIO_AUTH_TOKEN
    if not token or not signature:
        return False
    return RequestValidator(token).validate(url, params, signature)


def _json_attribute(params, key: str) -> dict[str, Any]:
    raw = params.get(key) or "{}"
    try:
        value = json.loads(raw)
    except ValueError:
        raise MalformedEvent(f"'{key}' is not JSON.", field=key) from None
    if not isinstance(value, dict):
        raise MalformedEvent(f"'{key}' is not a JSON object.", field=key)
    return value


def twilio_call_parse(params) -> PlatformCall:
    """One Twilio webhook (a QueryDict or dict of its form fields) as a PlatformCall."""
    if params.get("EventType"):
        return _taskrouter(params)
    if params.get("CallSid"):
        return _voice(params)
    if params.get("ReservationSid"):
        return PlatformCall(
            event_id="",
            call_id="",
            event=None,
            ignored="an Assignment Callback routes calls; point the Workspace's Event Callback URL here instead",
        )
    raise MalformedEvent("Not a Twilio voice or TaskRouter webhook: no CallSid or EventType.", field="CallSid")


def _voice(params) -> PlatformCall:
    call_sid = params["CallSid"]
    status = require(params, "CallStatus", "Twilio call status")
    parent = params.get("ParentCallSid") or ""
    sequence = params.get("SequenceNumber")
    event_id = f"{call_sid}:{sequence}" if sequence not in (None, "") else f"{call_sid}:{status}"
    phone = params.get("From") or None
    if parent:  # the agent leg <Dial> created: To is the agent
        agent_uri = params.get("To") or ""
        event = AGENT_LEG_EVENTS.get(status)
        return PlatformCall(
            event_id=event_id,
            call_id=parent,
            event=event,
            ignored="" if event else f"agent leg {status}; the customer leg's completion closes the call",
            agent_identity=agent_uri,
            agent_match=Q(twilio_contact_uri=agent_uri) if agent_uri else None,
            phone=phone,
        )
    if status in ENDED_STATUSES:
        return PlatformCall(event_id=event_id, call_id=call_sid, event="ended")
    return PlatformCall(
        event_id=event_id,
        call_id=call_sid,
        event=None,
        ignored=f"customer leg {status}: no agent yet (the agent leg's callbacks pop the card)",
    )


def _taskrouter(params) -> PlatformCall:
    event_type = params["EventType"]
    event = TASKROUTER_EVENTS.get(event_type)
    resource = params.get("ResourceSid") or params.get("ReservationSid") or params.get("TaskSid") or ""
    if event is None:
        return PlatformCall(event_id="", call_id="", event=None, ignored=f"TaskRouter {event_type} is not a call event")
    attributes = _json_attribute(params, "TaskAttributes")
    call_id = attributes.get("call_sid") or require(params, "TaskSid", "TaskRouter task event")
    worker_sid = params.get("WorkerSid") or ""
    contact_uri = _json_attribute(params, "WorkerAttributes").get("contact_uri") or ""
    match = Q()
    if worker_sid:
        match |= Q(twilio_worker_sid=worker_sid)
    if contact_uri:
        match |= Q(twilio_contact_uri=contact_uri)
    if event != "ended" and not match:
        raise MalformedEvent("A TaskRouter reservation event names no worker.", field="WorkerSid")
    ivr, verified = ivr_from(attributes, skip=TASK_CALL_FIELDS)
    return PlatformCall(
        event_id=f"{event_type}:{resource}",
        call_id=str(call_id),
        event=event,
        agent_identity=worker_sid or contact_uri,
        agent_match=match or None,
        phone=attributes.get("from") or None,
        verified=verified,
        ivr=ivr,
    )
