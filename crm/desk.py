"""The supervisor desk (issue 13): what needs doing first, and how much of it there is.

Queues sort by urgency: overdue first (most overdue on top), then due soonest,
then what is finished. The admin home shows a count per queue, each linking to
the same filtered list, so a count and the list it opens always agree.
"""

from __future__ import annotations

import datetime as dt

from django.contrib.auth import get_user_model
from django.db.models import Case as Choose
from django.db.models import IntegerField, Q, QuerySet, Value, When
from django.db.models.expressions import OrderBy
from django.urls import reverse
from django.utils import timezone

from crm.models import (
    Case,
    CaseKind,
    CaseStatus,
    Feedback,
    FeedbackStatus,
    FollowUp,
    FollowUpStatus,
    RecurringProblem,
    RecurringProblemStatus,
    Sentiment,
)
from crm.permissions import AGENT, SUPERVISOR

OPEN_CASE = (CaseStatus.OPEN, CaseStatus.IN_PROGRESS)


def desk_staff() -> QuerySet:
    """Who may own a case or follow-up: active staff with a desk role (agent or supervisor).

    Not the administrator account nor the integration account, which nobody answers for.
    """
    return (
        get_user_model()
        .objects.filter(is_active=True, groups__name__in=[AGENT, SUPERVISOR])
        .distinct()
        .order_by("first_name", "username")
    )


def urgency(*, open_statuses, now: dt.datetime | None = None) -> OrderBy:
    """Sort key: open and overdue first (0), then open (1), then finished (2); ties broken by the deadline.

    An expression, not an annotation, so the admin's related-object pickers can order by it too.
    """
    now = now or timezone.now()
    rank = Choose(
        When(Q(status__in=open_statuses, due_at__lt=now), then=Value(0)),
        When(status__in=open_statuses, then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    )
    return rank.asc()


def lateness(due_at: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """How late, in words a team lead reads at a glance: '3 d 4 h late', '40 min late'."""
    if due_at is None:
        return ""
    late = (now or timezone.now()) - due_at
    if late <= dt.timedelta(0):
        return ""
    days, seconds = late.days, late.seconds
    hours, minutes = seconds // 3600, (seconds % 3600) // 60
    if days:
        return f"{days} d {hours} h late"
    if hours:
        return f"{hours} h {minutes} min late"
    return f"{max(minutes, 1)} min late"


def feedback_to_review(queryset: QuerySet | None = None) -> QuerySet:
    """Feedback a supervisor must look at: negative with no case yet, or not yet through the workflow."""
    queryset = Feedback.objects.all() if queryset is None else queryset
    return queryset.filter(Q(sentiment=Sentiment.NEGATIVE, case__isnull=True) | Q(status=FeedbackStatus.RECEIVED))


def recovery_cases_open(queryset: QuerySet | None = None) -> QuerySet:
    queryset = Case.objects.all() if queryset is None else queryset
    return queryset.filter(status__in=OPEN_CASE, kind=CaseKind.SERVICE_RECOVERY)


def follow_ups_overdue(queryset: QuerySet | None = None, now: dt.datetime | None = None) -> QuerySet:
    queryset = FollowUp.objects.all() if queryset is None else queryset
    return queryset.filter(status=FollowUpStatus.OPEN, due_at__lt=now or timezone.now())


def desk_tiles(now: dt.datetime | None = None) -> list[dict]:
    """The admin home's tiles: label, count and the filtered queue the count was taken from."""
    now = now or timezone.now()
    return [
        {
            "key": "recovery",
            "label": "Open recovery cases",
            "count": recovery_cases_open().count(),
            "url": reverse("admin:crm_case_changelist") + "?queue=recovery",
        },
        {
            "key": "overdue",
            "label": "Overdue follow-ups",
            "count": follow_ups_overdue(now=now).count(),
            "url": reverse("admin:crm_followup_changelist") + "?due=overdue",
        },
        {
            "key": "review",
            "label": "Unhandled negative feedback",
            "count": feedback_to_review().count(),
            "url": reverse("admin:crm_feedback_changelist") + "?review=yes",
        },
        {
            "key": "recurring",
            "label": "Recurring problems",
            "count": RecurringProblem.objects.filter(status=RecurringProblemStatus.OPEN).count(),
            "url": reverse("admin:crm_recurringproblem_changelist") + "?status__exact=open",
        },
    ]
