"""Recurring problems: a customer who keeps contacting us about the same reason."""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from crm.models import Interaction, RecurringProblem, RecurringProblemStatus

logger = logging.getLogger(__name__)

RECURRING_THRESHOLD = 3


def recurring_problem_check(interaction_id, *, now: dt.datetime | None = None) -> RecurringProblem | None:
    """After a contact gets a reason: 3+ contacts of one customer about it in the window make one record.

    One open record per customer and reason (constraint
    one_open_recurring_problem_per_reason); later contacts join it.
    """
    interaction = Interaction.objects.filter(pk=interaction_id).only("customer_id", "reason_id").first()
    if interaction is None or interaction.customer_id is None or interaction.reason_id is None:
        return None
    now = now or timezone.now()
    window_start = now - dt.timedelta(days=settings.CRM_REPEAT_WINDOW_DAYS)
    contacts = list(
        Interaction.objects.filter(
            customer_id=interaction.customer_id, reason_id=interaction.reason_id, started_at__gte=window_start
        )
        .order_by("started_at")
        .values_list("pk", "started_at")
    )
    if len(contacts) < RECURRING_THRESHOLD:
        return None
    with transaction.atomic():
        problem = RecurringProblem.objects.filter(
            customer_id=interaction.customer_id, reason_id=interaction.reason_id, status=RecurringProblemStatus.OPEN
        ).first()
        if problem is None:
            try:
                with transaction.atomic():
                    problem = RecurringProblem.objects.create(
                        customer_id=interaction.customer_id,
                        reason_id=interaction.reason_id,
                        contact_count=len(contacts),
                        first_contact_at=contacts[0][1],
                        last_contact_at=contacts[-1][1],
                    )
            except IntegrityError:
                # A concurrent check made it first: join that one.
                problem = RecurringProblem.objects.get(
                    customer_id=interaction.customer_id,
                    reason_id=interaction.reason_id,
                    status=RecurringProblemStatus.OPEN,
                )
        problem.interactions.add(*[pk for pk, _ in contacts])
        total = problem.interactions.count()
        RecurringProblem.objects.filter(pk=problem.pk).update(
            contact_count=total,
            first_contact_at=min(problem.first_contact_at, contacts[0][1]),
            last_contact_at=max(problem.last_contact_at, contacts[-1][1]),
        )
    problem.refresh_from_db()
    logger.info("recurring problem %s: %d contacts", problem.pk, problem.contact_count)
    return problem
