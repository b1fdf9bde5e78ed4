"""Telephony platform adapters: each platform's own events mapped onto the call events (context.calls).

A platform module turns one request into a PlatformCall (or says why it carries
nothing to do); platform_event_apply then does what POST /api/v1/calls would:
ringing/connected pop the card for the matched agent, ended closes the contact.
Each event id is recorded once (PlatformEvent), so a platform's retry of the same
event changes nothing. An agent no StaffProfile names is a 202 with a warning,
kept for the admin, never a 500.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q

from context.api import ivr_problem
from context.calls import call_event_record
from context.services import CONTACT_SOURCE
from crm.exceptions import DomainError
from crm.models import VERIFIABLE, Interaction, PlatformEvent, PlatformEventOutcome, StaffProfile
from crm.services import identifiers_normalize

logger = logging.getLogger(__name__)


class MalformedEvent(DomainError):
    """The body is not the platform's event: 400, nothing written."""


@dataclass(frozen=True)
class PlatformCall:
    """One platform event in the terms of the call events. event None: nothing to do (ignored says why)."""

    event_id: str
    call_id: str
    event: str | None
    ignored: str = ""
    agent_identity: str = ""
    agent_match: Q | None = None
    phone: str | None = None
    verified: tuple[str, ...] = ()
    ivr: dict[str, Any] = field(default_factory=dict)


def require(mapping: Any, key: str, what: str) -> Any:
    """mapping[key] as a non-empty value, or a 400 naming what is missing."""
    value = mapping.get(key) if isinstance(mapping, dict) else None
    if value in (None, "", [], {}):
        raise MalformedEvent(f"Not a {what}: '{key}' is missing.", field=key)
    return value


def ivr_from(attributes: dict[str, Any], *, skip: frozenset[str] = frozenset()) -> tuple[dict[str, Any], tuple]:
    """IVR answers (flat, bounded) and verified kinds from a platform's call attributes.

    A `verified` attribute (comma-separated identifier kinds, e.g. "phone,account")
    is how a flow says what it verified; the platforms carry nothing standard.
    """
    ivr = {k: v for k, v in attributes.items() if k not in skip and k != "verified" and not isinstance(v, dict | list)}
    problem = ivr_problem(ivr)
    if problem:
        raise MalformedEvent(f"Call attributes: {problem}", field="ivr")
    raw = attributes.get("verified")
    verified = tuple(v.strip() for v in str(raw).split(",") if v.strip() in VERIFIABLE) if raw else ()
    return ivr, verified


def caller_phone(value: str | None) -> str | None:
    """The caller's number when it is one: a client:/sip: caller id or garbage pops as unknown, not a 400."""
    if not value:
        return None
    try:
        return identifiers_normalize({"phone": value}).get("phone")
    except DomainError:
        return None


def _response(status: str, **extra: Any) -> dict[str, Any]:
    return {"status": status, **extra}


def platform_event_apply(*, platform: str, call: PlatformCall, actor=None) -> dict[str, Any]:
    """Apply one platform event (see the module docstring); returns the 202 body."""
    if call.event is None:
        return _response("ignored", reason=call.ignored)
    existing = PlatformEvent.objects.filter(platform=platform, event_id=call.event_id).first()
    if existing is not None:
        return _replayed(existing)
    interaction = (
        Interaction.objects.filter(source=CONTACT_SOURCE, call_id=call.call_id)
        .select_related("agent")
        .only("pk", "identifiers", "agent__username")
        .first()
    )
    profile = None
    if call.agent_match is not None:
        profile = StaffProfile.objects.filter(call.agent_match).select_related("user").first()
    if call.event == "ended":
        if interaction is None:
            return _response("ignored", reason="no contact was opened for this call")
        agent = profile.user if profile is not None else interaction.agent
        if agent is None:
            return _response("ignored", reason="the call never reached an agent")
    elif profile is None:
        return _unmatched(platform, call)
    else:
        agent = profile.user
    phone = caller_phone(call.phone)
    known = interaction.identifiers if interaction is not None else {}
    try:
        with transaction.atomic():
            record = PlatformEvent.objects.create(
                platform=platform,
                event_id=call.event_id,
                event=call.event,
                call_id=call.call_id,
                agent_identity=call.agent_identity,
                outcome=PlatformEventOutcome.APPLIED,
            )
            result = call_event_record(
                actor=actor,
                event=call.event,
                agent=agent.username,
                call_id=call.call_id,
                # An event without the caller (Connect's contact events) pops what the
                # call's earlier lookup found.
                phone=phone or known.get("phone"),
                email=None if phone else known.get("email"),
                account=None if phone else known.get("account"),
                verified=call.verified,
                ivr=call.ivr,
            )
            PlatformEvent.objects.filter(pk=record.pk).update(interaction_id=result["interaction_id"])
            if call.event != "ended":
                # A contact the flow's lookup opened (Connect's Lambda) was the connector's until now.
                unassigned = Q(agent__isnull=True) | Q(agent_id=getattr(actor, "pk", None))
                Interaction.objects.filter(unassigned, pk=result["interaction_id"]).update(agent=agent)
    except IntegrityError:
        # The same event arriving twice at once: the other request recorded it.
        existing = PlatformEvent.objects.filter(platform=platform, event_id=call.event_id).first()
        if existing is None:
            raise
        return _replayed(existing)
    return _response("applied", event=call.event, interaction_id=result["interaction_id"], agent=agent.username)


def _replayed(existing: PlatformEvent) -> dict[str, Any]:
    return _response(
        "duplicate",
        outcome=existing.outcome,
        interaction_id=str(existing.interaction_id) if existing.interaction_id else None,
    )


def _unmatched(platform: str, call: PlatformCall) -> dict[str, Any]:
    logger.warning(
        "%s %s event for call %s: no staff profile has agent identity %r; set it in the admin",
        platform,
        call.event,
        call.call_id,
        call.agent_identity,
    )
    PlatformEvent.objects.bulk_create(
        [
            PlatformEvent(
                platform=platform,
                event_id=call.event_id,
                event=call.event or "",
                call_id=call.call_id,
                agent_identity=call.agent_identity[:255],
                outcome=PlatformEventOutcome.UNMATCHED_AGENT,
            )
        ],
        ignore_conflicts=True,
    )
    return _response(
        "unmatched_agent",
        warning=f"No agent is set up with the {platform} identity '{call.agent_identity}'; nothing was popped.",
    )
