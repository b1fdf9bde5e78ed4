"""Staff notifications: one per recipient, kind and subject, each with its e-mail in the outbox (crm.emails)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from crm.emails import email_queue, emails_send_where
from crm.models import Feedback, FollowUp, Notification, Recognition
from crm.services import row_get_or_create

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
    new: bool = False,
) -> Notification:
    """One notification per recipient, kind and subject object (constraint notification_once).

    The subject is also held as foreign keys, so erasure finds what quotes a customer;
    the feedback is taken from the follow-up or recognition when not given. Its
    e-mail is queued in the same transaction (key `notification:<id>`), so a
    notification is never without its e-mail nor e-mailed twice.
    """
    about = follow_up or recognition
    feedback_id = feedback.pk if feedback is not None else getattr(about, "feedback_id", None)
    notification, _ = row_get_or_create(
        Notification,
        new=new,
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
            new=new,
        )
    return notification


def notifications_deliver(notification_ids: Iterable[int]) -> int:
    """E-mail these notifications now (their outbox rows, crm.emails); a failed send is left to the sweep."""
    return emails_send_where(notification_id__in=list(notification_ids))
