"""Reads for the feedback workflows: feedback detail, recognitions, the follow-up queue, reports."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Count
from django.utils import timezone

from crm.exceptions import NotFound
from crm.models import (
    Feedback,
    FeedbackStatus,
    FollowUp,
    Interaction,
    Recognition,
    RecurringProblem,
    RecurringProblemStatus,
    Sentiment,
)


def feedback_get(feedback_id) -> Feedback:
    try:
        return Feedback.objects.get(pk=feedback_id)
    except (Feedback.DoesNotExist, DjangoValidationError, ValueError):
        raise NotFound(f"No feedback with id '{feedback_id}'.", field="id") from None


def feedback_detail(feedback: Feedback) -> dict[str, Any]:
    return {
        "id": str(feedback.pk),
        "status": feedback.status,
        "sentiment": feedback.sentiment or None,
        "rating": feedback.rating,
        "nps": feedback.nps,
        "received_at": feedback.received_at,
        "processed_at": feedback.processed_at,
        "interaction_id": str(feedback.interaction_id) if feedback.interaction_id else None,
        "customer_id": str(feedback.customer_id) if feedback.customer_id else None,
        # issue 10: named the customer only by an identifier (anyone could have sent it).
        "unverified": feedback.unverified,
        "recognitions": [
            {"id": str(pk), "staff": username}
            for pk, username in feedback.recognitions.order_by("staff__username").values_list("pk", "staff__username")
        ],
        "follow_ups": [
            follow_up_out(fu) for fu in feedback.follow_ups.select_related("owner").order_by("created_at", "kind")
        ],
        "case_id": str(feedback.case_id) if feedback.case_id else None,
    }


def follow_up_out(follow_up: FollowUp) -> dict[str, Any]:
    return {
        "id": str(follow_up.pk),
        "kind": follow_up.kind,
        "status": follow_up.status,
        "due_at": follow_up.due_at,
        "owner": follow_up.owner.username if follow_up.owner else None,
        "channel": follow_up.channel or None,
        "note": follow_up.note,
        "customer_id": str(follow_up.customer_id) if follow_up.customer_id else None,
        "feedback_id": str(follow_up.feedback_id) if follow_up.feedback_id else None,
        "case_id": str(follow_up.case_id) if follow_up.case_id else None,
        "escalation_level": follow_up.escalation_level,
        "created_at": follow_up.created_at,
        "completed_at": follow_up.completed_at,
    }


def recognitions_list(*, staff: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    qs = Recognition.objects.select_related("staff").order_by("-created_at")
    if staff:
        qs = qs.filter(staff__username=staff)
    return [
        {
            "id": str(r.pk),
            "staff": r.staff.username,
            "feedback_id": str(r.feedback_id),
            "interaction_id": str(r.interaction_id) if r.interaction_id else None,
            "quote": r.quote,
            "created_at": r.created_at,
        }
        for r in qs[:limit]
    ]


def follow_ups_list(*, status: str | None = None, owner: str | None = None, limit: int = 200) -> list[dict]:
    """The supervisors' queue, earliest deadline first."""
    qs = FollowUp.objects.select_related("owner").order_by("due_at")
    if status:
        qs = qs.filter(status=status)
    if owner:
        qs = qs.filter(owner__username=owner)
    return [follow_up_out(fu) for fu in qs[:limit]]


def recurring_problems_list(*, status: str = RecurringProblemStatus.OPEN, limit: int = 100) -> list[dict]:
    qs = (
        RecurringProblem.objects.filter(status=status)
        .select_related("customer", "reason")
        .prefetch_related("interactions")
        .order_by("-last_contact_at")[:limit]
    )
    return [
        {
            "id": p.pk,
            "customer_id": str(p.customer_id),
            "customer": p.customer.display_name,
            "reason": p.reason.code,
            "contact_count": p.contact_count,
            "first_contact_at": p.first_contact_at,
            "last_contact_at": p.last_contact_at,
            "interaction_ids": sorted(str(i.pk) for i in p.interactions.all()),
        }
        for p in qs
    ]


def repeat_reasons_ranking(*, days: int | None = None, limit: int = 10, now: dt.datetime | None = None) -> list[dict]:
    """Reasons that bring customers back, most first: for the supervisors' reports.

    For each reason: how many customers contacted us about it more than once in
    the window, and how many contacts beyond each customer's first it cost.
    """
    now = now or timezone.now()
    window_start = now - dt.timedelta(days=days or settings.CRM_REPEAT_WINDOW_DAYS)
    pairs = (
        Interaction.objects.filter(started_at__gte=window_start, customer__isnull=False, reason__isnull=False)
        .values("reason__code", "reason__label", "customer_id")
        .annotate(n=Count("id"))
        .filter(n__gte=2)
        .values_list("reason__code", "reason__label", "n")
    )
    customers: Counter = Counter()
    repeats: Counter = Counter()
    labels: dict[str, str] = {}
    for code, label, n in pairs:
        customers[code] += 1
        repeats[code] += n - 1
        labels[code] = label
    ranked = sorted(customers, key=lambda c: (-repeats[c], -customers[c], c))[:limit]
    return [
        {"reason": code, "label": labels[code], "customers": customers[code], "repeat_contacts": repeats[code]}
        for code in ranked
    ]


def feedback_sentiment_counts(*, days: int | None = None, now: dt.datetime | None = None) -> dict[str, int]:
    """Processed feedback by sentiment in the window: neutral feedback is counted here."""
    now = now or timezone.now()
    since = now - dt.timedelta(days=days or settings.CRM_REPEAT_WINDOW_DAYS)
    counts = dict(
        Feedback.objects.filter(received_at__gte=since, status=FeedbackStatus.PROCESSED)
        .values_list("sentiment")
        .annotate(n=Count("id"))
        .values_list("sentiment", "n")
    )
    return {s: counts.get(s, 0) for s in Sentiment.values}
