"""The screen-pop lookup: who is calling, and everything the agent needs not to ask again."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from crm.exceptions import DomainError
from crm.models import (
    AuditAction,
    Case,
    CaseStatus,
    ContactReason,
    Customer,
    Feedback,
    Identity,
    Interaction,
    Sentiment,
    Tier,
)
from crm.services import audit_record, identifiers_normalize, live_customer_get

# Lookups and call events share one idempotency namespace for call_id, so a
# call event and a lookup for the same call open the same interaction.
CONTACT_SOURCE = "contact"
STRONG_KINDS = ("customer_id", "account")
RECENT_LIMIT = 5
TRUTHY = {"1", "true", "yes", "y", "on"}


def _match(identifiers: Mapping[str, str], customer_id, verified: Iterable[str]) -> tuple[str, list[dict], list[str]]:
    """Resolve identifiers to ('unique'|'ambiguous'|'none', candidates, matched_on of the unique one).

    Strong identifiers (customer_id, account, anything verified) outrank phone
    and e-mail; strong ones that disagree make the match ambiguous.
    """
    verified = set(verified)
    by_kind: dict[str, set] = {}
    if identifiers:
        condition = Q()
        for kind, normalized in identifiers.items():
            condition |= Q(kind=kind, normalized=normalized)
        rows = (
            Identity.objects.filter(condition)
            .filter(customer__erased_at__isnull=True, customer__merged_into__isnull=True)
            .values_list("kind", "customer_id")
        )
        for kind, cid in rows:
            by_kind.setdefault(kind, set()).add(cid)
    if customer_id is not None:
        by_kind["customer_id"] = {customer_id}

    strong = [k for k in by_kind if k in STRONG_KINDS or k in verified]
    weak = [k for k in by_kind if k not in strong]
    if strong:
        pool = set.intersection(*(by_kind[k] for k in strong))
        if len(pool) == 1:
            chosen = next(iter(pool))
            return "unique", [chosen], [k for k in by_kind if chosen in by_kind[k]]
        candidates = set().union(*(by_kind[k] for k in strong))
        if len(candidates) == 1:  # pragma: no cover - intersection covers it
            chosen = next(iter(candidates))
            return "unique", [chosen], [k for k in by_kind if chosen in by_kind[k]]
    elif weak:
        agreed = set.intersection(*(by_kind[k] for k in weak))
        candidates = agreed or set().union(*(by_kind[k] for k in weak))
        if len(candidates) == 1:
            chosen = next(iter(candidates))
            return "unique", [chosen], [k for k in by_kind if chosen in by_kind[k]]
    else:
        return "none", [], []
    return "ambiguous", sorted(candidates, key=str), []


def _open_interaction(
    *, actor, agent, channel: str, call_id: str | None, customer: Customer | None, identifiers, verified, ivr
) -> Interaction:
    """Open the contact, idempotently on call_id."""
    if call_id:
        existing = Interaction.objects.filter(source=CONTACT_SOURCE, call_id=call_id).first()
        if existing is not None:
            return existing
    interaction = Interaction(
        customer=customer,
        channel=channel,
        started_at=timezone.now(),
        agent=agent,
        identifiers=dict(identifiers),
        verified=list(verified),
        ivr=dict(ivr or {}),
        source=CONTACT_SOURCE,
        call_id=call_id or None,
    )
    try:
        with transaction.atomic():
            interaction.save(force_insert=True)
    except IntegrityError:
        # A concurrent lookup for the same call won the race: it is the same contact.
        return Interaction.objects.get(source=CONTACT_SOURCE, call_id=call_id)
    return interaction


def customer_card(customer: Customer, *, exclude_interaction_id=None, ivr: Mapping | None = None) -> dict[str, Any]:
    """The customer part of the screen-pop and the facts that derive flags from history."""
    now = timezone.now()
    window_start = now - dt.timedelta(days=settings.CRM_REPEAT_WINDOW_DAYS)
    identities = [
        {"kind": i.kind, "value": i.normalized, "verified": i.verified_at is not None}
        for i in customer.identities.order_by("kind", "created_at")
    ]
    preferences = dict(customer.preferences.filter(is_current=True).order_by("key").values_list("key", "value"))
    facts = [
        {
            "key": f.key,
            "value": f.value,
            "source": {
                "channel": f.channel or None,
                "interaction_id": str(f.interaction_id) if f.interaction_id else None,
            },
            "recorded_at": f.recorded_at,
        }
        for f in customer.facts.filter(is_current=True).order_by("key")
    ]
    open_cases = list(
        Case.objects.filter(customer=customer, status__in=[CaseStatus.OPEN, CaseStatus.IN_PROGRESS])
        .order_by("-opened_at")
        .annotate(recent_contacts=Count("interactions", filter=Q(interactions__started_at__gte=window_start)))
    )
    recent_qs = Interaction.objects.filter(customer=customer).select_related("agent", "reason").order_by("-started_at")
    if exclude_interaction_id is not None:
        recent_qs = recent_qs.exclude(pk=exclude_interaction_id)
    recent = list(recent_qs[:RECENT_LIMIT])
    reason_counts = dict(
        Interaction.objects.filter(customer=customer, started_at__gte=window_start, reason__isnull=False)
        .values_list("reason__code")
        .annotate(n=Count("id"))
        .values_list("reason__code", "n")
    )
    last_feedback = Feedback.objects.filter(customer=customer).order_by("-received_at").first()
    recent_complaint = Feedback.objects.filter(
        customer=customer, sentiment=Sentiment.NEGATIVE, received_at__gte=window_start
    ).exists()

    intent = (ivr or {}).get("intent")
    if intent and intent in reason_counts:
        repeat = reason_counts[intent] >= 2
    elif intent and ContactReason.objects.filter(code=intent).exists():
        repeat = False
    else:
        repeat = any(n >= 2 for n in reason_counts.values())
    repeat = repeat or any(c.recent_contacts >= 2 for c in open_cases)
    flags = []
    if repeat:
        flags.append("repeat_contact")
    if recent_complaint:
        flags.append("recent_complaint")
    if customer.tier == Tier.VIP:
        flags.append("vip")
    if str(preferences.get("do_not_call", "")).lower() in TRUTHY:
        flags.append("do_not_call")
    if customer.created_at >= window_start:
        flags.append("new_customer")

    return {
        "customer": {
            "id": str(customer.pk),
            "display_name": customer.display_name,
            "preferred_name": customer.preferred_name,
            "language": customer.language,
            "tier": customer.tier,
            "identities": identities,
            "preferences": preferences,
            "facts": facts,
        },
        "open_cases": [
            {"id": str(c.pk), "subject": c.subject, "status": c.status, "opened_at": c.opened_at} for c in open_cases
        ],
        "recent_interactions": [
            {
                "id": str(i.pk),
                "channel": i.channel,
                "started_at": i.started_at,
                "agent": i.agent.username if i.agent else None,
                "reason": i.reason.code if i.reason else None,
                "summary": i.summary,
                "outcome": i.outcome or None,
            }
            for i in recent
        ],
        "flags": flags,
        "last_feedback": (
            {
                "rating": last_feedback.rating,
                "sentiment": last_feedback.sentiment or None,
                "received_at": last_feedback.received_at,
            }
            if last_feedback
            else None
        ),
    }


@transaction.atomic
def context_lookup(
    *,
    actor,
    channel: str = "phone",
    phone: str | None = None,
    email: str | None = None,
    account: str | None = None,
    customer_id=None,
    call_id: str | None = None,
    verified: Iterable[str] = (),
    ivr: Mapping[str, Any] | None = None,
    agent=None,
) -> dict[str, Any]:
    """Resolve the caller, open (or reopen) the contact, audit, and build the card."""
    identifiers = identifiers_normalize({"phone": phone, "email": email, "account": account})
    if not identifiers and customer_id is None:
        raise DomainError("Give at least one of phone, email, account, customer_id.", field="phone")
    if customer_id is not None:
        customer_id = live_customer_get(customer_id).pk
    verified = list(dict.fromkeys(verified))
    match, candidate_ids, matched_on = _match(identifiers, customer_id, verified)

    customer = Customer.objects.get(pk=candidate_ids[0]) if match == "unique" else None
    interaction = _open_interaction(
        actor=actor,
        agent=agent or (actor if actor is not None and actor.is_authenticated else None),
        channel=channel,
        call_id=call_id,
        customer=customer,
        identifiers=identifiers,
        verified=verified,
        ivr=ivr,
    )
    audit_record(
        actor=actor,
        action=AuditAction.LOOKUP,
        customer=customer,
        interaction_id=interaction.pk,
        detail={"match": match, "candidates": len(candidate_ids)},
    )
    is_verified = match == "unique" and any(k in matched_on for k in verified)
    do_not_ask = set(matched_on) | set(verified) | set((ivr or {}).keys())
    response: dict[str, Any] = {
        "match": match,
        "matched_on": matched_on,
        "interaction_id": str(interaction.pk),
        "customer": None,
        "candidates": [],
        "verified": is_verified,
        "ivr": dict(ivr or {}),
        "open_cases": [],
        "recent_interactions": [],
        "flags": [],
        "last_feedback": None,
    }
    if customer is not None:
        card = customer_card(customer, exclude_interaction_id=interaction.pk, ivr=ivr)
        do_not_ask |= {f["key"] for f in card["customer"]["facts"]}
        response.update(card)
    elif match == "ambiguous":
        rows = Identity.objects.filter(customer_id__in=candidate_ids).values_list("customer_id", "kind", "normalized")
        kinds: dict = {}
        for cid, kind, normalized in rows:
            if identifiers.get(kind) == normalized:
                kinds.setdefault(cid, set()).add(kind)
        names = dict(Customer.objects.filter(pk__in=candidate_ids).values_list("pk", "display_name"))
        response["candidates"] = [
            {
                "id": str(cid),
                "display_name": names.get(cid, ""),
                "matched_on": sorted(kinds.get(cid, set()) | ({"customer_id"} if cid == customer_id else set())),
            }
            for cid in candidate_ids
        ]
    response["do_not_ask"] = sorted(do_not_ask)
    return response
