"""Staff notifications: one per recipient, kind and subject, each with its e-mail in the outbox (crm.emails)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from crm.emails import email_queue, emails_send
from crm.models import Feedback, FollowUp, Notification, OutboundEmail, Recognition

logger = logging.getLogger(__name__)


def notification_create(
    *,
    recipient,
    kind: str,
    key: str,
    subject: str,
    body: str,
    feedback: Feedback | None = None,
    follow_up: FollowUp | None = None,
    recognition: Recognition | None = None,
) -> Notification:
    """One notification per recipient, kind and subject object (constraint notification_once).

    The subject is also held as foreign keys, so erasure finds what quotes a customer;
    the feedback is taken from the follow-up or recognition when not given. Its
    e-mail is queued in the same transaction (key `notification:<id>`), so a
    notification is never without its e-mail nor e-mailed twice.
    """
    about = follow_up or recognition
    feedback_id = feedback.pk if feedback is not None else getattr(about, "feedback_id", None)
    notification, _ = Notification.objects.get_or_create(
        recipient=recipient,
        kind=kind,
        key=key,
        defaults={
            "subject": subject[:200],
            "body": body,
            "feedback_id": feedback_id,
            "follow_up": follow_up,
            "recognition": recognition,
        },
    )
    if notification.recipient.email:
        email_queue(
            key=f"notification:{notification.pk}",
            to=notification.recipient.email,
            subject=notification.subject,
            body=notification.body,
            notification=notification,
        )
    return notification


def notifications_deliver(notification_ids: Iterable[int]) -> int:
    """E-mail these notifications now (their outbox rows, crm.emails); a failed send is left to the sweep."""
    return emails_send(
        OutboundEmail.objects.filter(notification_id__in=list(notification_ids)).values_list("pk", flat=True)
    )
