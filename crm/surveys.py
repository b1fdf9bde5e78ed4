"""Survey fatigue (issue 13): a customer who gave feedback is not asked again for a while.

Within CRM_SURVEY_SUPPRESSION_DAYS of their last feedback, any message we send
them after a contact leaves the survey link out; the customer 360 shows until when.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from crm.models import Feedback, Interaction


def survey_suppressed_until(customer_id, now: dt.datetime | None = None) -> dt.datetime | None:
    """When the customer may be asked again, or None when they may be asked now."""
    days = settings.CRM_SURVEY_SUPPRESSION_DAYS
    if customer_id is None or days <= 0:
        return None
    last = (
        Feedback.objects.filter(customer_id=customer_id).order_by("-received_at").values_list("received_at", flat=True)
    ).first()
    if last is None:
        return None
    until = last + dt.timedelta(days=days)
    return until if until > (now or timezone.now()) else None


def survey_link(interaction: Interaction, now: dt.datetime | None = None) -> str | None:
    """The feedback form's path for this contact (agent prefilled), or None inside the suppression window."""
    if survey_suppressed_until(interaction.customer_id, now) is not None:
        return None
    query = {"interaction": str(interaction.pk)}
    if interaction.agent is not None:
        query["staff"] = interaction.agent.username
    return f"{reverse('feedback-form')}?{urlencode(query)}"


def after_contact_message(interaction: Interaction, now: dt.datetime | None = None) -> str:
    """The text sent to a customer after a contact: thanks, and the survey link unless they were asked lately."""
    customer = interaction.customer
    name = (customer.preferred_name or customer.display_name) if customer is not None else ""
    lines = [f"Dear {name or 'customer'},", "", "Thank you for contacting us today."]
    link = survey_link(interaction, now)
    if link is not None:
        lines += ["", f"How did we do? Tell us in a minute: {settings.CRM_PUBLIC_URL.rstrip('/')}{link}"]
    return "\n".join(lines) + "\n"
