"""Reads of the customer memory. Each returns plain data or a queryset, bounded."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q, QuerySet
from django.db.models.functions import Upper

from crm.db_router import reads_may_lag
from crm.identifiers import guess_identifiers
from crm.models import Case, Customer, Feedback, FollowUp, Identity, Interaction, contact_counts

SEARCH_LIMIT = 50
TIMELINE_PAGE = 50


def live_customers() -> QuerySet[Customer]:
    """Customer.objects.live(): the one definition of a live customer."""
    return Customer.objects.live()


@reads_may_lag
def customer_search(term: str, *, limit: int = SEARCH_LIMIT) -> list[Customer]:
    """Customers by name, or by any identifier the term could be (phone in any form, e-mail, account)."""
    term = (term or "").strip()
    if not term:
        # customer_name_order_idx (migration 0007)
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
        # The trigram indexes (migration 0007) find the matches. Ordering by UPPER(name)
        # rather than the name keeps PostgreSQL from walking customer_name_order_idx and
        # filtering a million rows when a rare term's matches are overestimated.
        .order_by(Upper("display_name"), "pk")[: limit - len(by_identity)]
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
        .values("key", "value", "channel", "interaction_id", "import_ref", "recorded_at")
    )
    return [
        {
            "key": r["key"],
            "value": r["value"],
            "source": {
                "channel": r["channel"],
                "interaction_id": str(r["interaction_id"]) if r["interaction_id"] else None,
                "imported_from": r["import_ref"] or None,
            },
            "recorded_at": r["recorded_at"],
        }
        for r in rows
    ]


def timeline_cursor(entry: dict) -> str:
    """Where the next page starts: after this entry in (at, type, id) order, newest first."""
    return f"{entry['at'].isoformat()}~{entry['type']}~{entry['id']}"


def timeline_cursor_parse(raw: str) -> tuple[dt.datetime, str, str]:
    """Raises ValueError for anything timeline_cursor did not write."""
    at, kind, entry_id = raw.split("~")
    moment = dt.datetime.fromisoformat(at)
    if moment.tzinfo is None or kind not in TIMELINE_KINDS or not entry_id:
        raise ValueError(raw)
    # The id must be one of that kind's keys (a UUID, say): the query compares it with them.
    model = next(m for m, k in KIND_OF.items() if k == kind)
    try:
        model._meta.pk.to_python(entry_id)
    except DjangoValidationError:
        raise ValueError(raw) from None
    return moment, kind, entry_id


# The timeline's entry types, by the model each comes from.
KIND_OF = {Interaction: "interaction", Feedback: "feedback", Case: "case", FollowUp: "follow_up"}
TIMELINE_KINDS = tuple(KIND_OF.values())


def customer_timeline(
    customer: Customer,
    *,
    before: dt.datetime | None = None,
    cursor: tuple[dt.datetime, str, str] | None = None,
    limit: int = TIMELINE_PAGE,
) -> list[dict]:
    """Interactions, feedback, cases and follow-ups, newest first, one page.

    Each kind is read with its own bounded, indexed query (at most `limit` rows),
    then merged in (at, type, id) order, newest first. `cursor` (from
    timeline_cursor) continues exactly after the last entry of the previous page,
    so entries that share a timestamp are neither lost nor repeated; `before`
    keeps everything strictly older than a moment.
    """

    def page(qs: QuerySet, field: str) -> QuerySet:
        kind = KIND_OF[qs.model]
        if before is not None:
            qs = qs.filter(**{f"{field}__lt": before})
        if cursor is not None:
            # Strictly after the cursor in (at, type, id) order, newest first: at the same
            # moment, kinds that sort below the cursor's kind are still to come, and of the
            # cursor's own kind, the smaller ids.
            at, after_kind, after_id = cursor
            older = Q(**{f"{field}__lt": at})
            if kind < after_kind:
                qs = qs.filter(older | Q(**{field: at}))
            elif kind == after_kind:
                qs = qs.filter(older | Q(**{field: at, "pk__lt": after_id}))
            else:
                qs = qs.filter(older)
        return qs.order_by(f"-{field}", "-pk")[:limit]

    entries: list[dict] = []
    # Contacts that count only (issue 12): a screen pop nobody wrapped up is not on the timeline.
    contacts = Interaction.objects.filter(customer=customer).filter(contact_counts())
    for i in page(contacts.select_related("reason", "agent"), "started_at"):
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
    entries.sort(key=lambda e: (e["at"], e["type"], e["id"]), reverse=True)
    return entries[:limit]
