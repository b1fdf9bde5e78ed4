"""Reads of the customer memory. Each returns plain data or a queryset, bounded."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Q, QuerySet

from crm.identifiers import guess_identifiers
from crm.models import Case, Customer, Feedback, FollowUp, Identity, Interaction

SEARCH_LIMIT = 50
TIMELINE_PAGE = 50


def live_customers() -> QuerySet[Customer]:
    return Customer.objects.filter(erased_at__isnull=True, merged_into__isnull=True)


def customer_search(term: str, *, limit: int = SEARCH_LIMIT) -> list[Customer]:
    """Customers by name, or by any identifier the term could be (phone in any form, e-mail, account)."""
    term = (term or "").strip()
    if not term:
        return list(live_customers().order_by("display_name")[:limit])
    condition = Q()
    for kind, normalized in guess_identifiers(term).items():
        condition |= Q(kind=kind, normalized=normalized)
    by_identity: list[Customer] = []
    if condition:
        ids = Identity.objects.filter(condition).values_list("customer_id", flat=True)
        by_identity = list(live_customers().filter(pk__in=ids)[:limit])
    by_name = list(
        live_customers()
        .filter(Q(display_name__icontains=term) | Q(preferred_name__icontains=term))
        .exclude(pk__in=[c.pk for c in by_identity])
        .order_by("display_name")[: limit - len(by_identity)]
    )
    return by_identity + by_name


def customer_identities(customer: Customer) -> list[dict[str, Any]]:
    return [
        {"kind": i.kind, "value": i.normalized, "verified": i.verified_at is not None}
        for i in customer.identities.order_by("kind", "created_at")
    ]


def customer_preferences(customer: Customer) -> dict[str, str]:
    return dict(customer.preferences.filter(is_current=True).order_by("key").values_list("key", "value"))


def customer_facts(customer: Customer) -> list[dict[str, Any]]:
    rows = (
        customer.facts.filter(is_current=True)
        .order_by("key")
        .values("key", "value", "channel", "interaction_id", "recorded_at")
    )
    return [
        {
            "key": r["key"],
            "value": r["value"],
            "source": {
                "channel": r["channel"],
                "interaction_id": str(r["interaction_id"]) if r["interaction_id"] else None,
            },
            "recorded_at": r["recorded_at"],
        }
        for r in rows
    ]


def customer_timeline(
    customer: Customer, *, before: dt.datetime | None = None, limit: int = TIMELINE_PAGE
) -> list[dict]:
    """Interactions, feedback, cases and follow-ups, newest first, one page.

    Each kind is read with its own bounded, indexed query (at most `limit` rows),
    then merged; `before` pages backwards through the history.
    """

    def page(qs: QuerySet, field: str) -> QuerySet:
        if before is not None:
            qs = qs.filter(**{f"{field}__lt": before})
        return qs.order_by(f"-{field}")[:limit]

    entries: list[dict] = []
    for i in page(Interaction.objects.filter(customer=customer).select_related("reason", "agent"), "started_at"):
        entries.append(
            {
                "type": "interaction",
                "id": str(i.pk),
                "at": i.started_at,
                "channel": i.channel,
                "reason": i.reason.code if i.reason else None,
                "summary": i.summary,
                "outcome": i.outcome or None,
                "agent": i.agent.username if i.agent else None,
            }
        )
    for f in page(Feedback.objects.filter(customer=customer), "received_at"):
        entries.append(
            {
                "type": "feedback",
                "id": str(f.pk),
                "at": f.received_at,
                "rating": f.rating,
                "nps": f.nps,
                "sentiment": f.sentiment or None,
                "text": f.text,
            }
        )
    for c in page(Case.objects.filter(customer=customer), "opened_at"):
        entries.append(
            {
                "type": "case",
                "id": str(c.pk),
                "at": c.opened_at,
                "subject": c.subject,
                "status": c.status,
                "kind": c.kind,
            }
        )
    for fu in page(FollowUp.objects.filter(customer=customer), "created_at"):
        entries.append(
            {
                "type": "follow_up",
                "id": str(fu.pk),
                "at": fu.created_at,
                "kind": fu.kind,
                "status": fu.status,
                "due_at": fu.due_at,
            }
        )
    entries.sort(key=lambda e: e["at"], reverse=True)
    return entries[:limit]
