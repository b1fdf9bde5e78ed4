"""Staff notifications: one per recipient, kind and subject, e-mailed once, retried after an outage."""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
from collections.abc import Iterable

from django.conf import settings
from django.core.mail import send_mail
from django.utils import timezone

from crm.models import Feedback, FollowUp, Notification, Recognition

logger = logging.getLogger(__name__)

# Notifications left unsent by a failed send are retried this long, this many per run.
NOTIFICATION_BATCH = 200
NOTIFICATION_RETRY_WINDOW = dt.timedelta(days=7)


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
    the feedback is taken from the follow-up or recognition when not given.
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
    return notification


def notifications_deliver(notification_ids: Iterable[int]) -> int:
    """E-mail each notification once: claim it (emailed_at set by a conditional update), then send.

    If sending fails the claim is released and the error raised, so a retry (the
    task's, or the next notifications_deliver_pending) sends it; a concurrent run
    that lost the claim sends nothing. A recipient the mail server refuses is
    skipped, not raised: retrying at once would not help, and it must not hold
    up the others (the pending sweep tries it again later).
    """
    sent = 0
    for notification in (
        Notification.objects.filter(pk__in=list(notification_ids), emailed_at__isnull=True)
        .select_related("recipient")
        .order_by("pk")
    ):
        if not notification.recipient.email:
            continue
        claimed = Notification.objects.filter(pk=notification.pk, emailed_at__isnull=True).update(
            emailed_at=timezone.now()
        )
        if not claimed:
            continue
        try:
            send_mail(
                notification.subject,
                notification.body,
                settings.DEFAULT_FROM_EMAIL,
                [notification.recipient.email],
            )
        except smtplib.SMTPRecipientsRefused:
            Notification.objects.filter(pk=notification.pk).update(emailed_at=None)
            logger.warning("notification %s: recipient refused; left for a later attempt", notification.pk)
            continue
        except Exception:
            Notification.objects.filter(pk=notification.pk).update(emailed_at=None)
            raise
        sent += 1
    return sent


def notifications_deliver_pending(*, now: dt.datetime | None = None, batch: int = NOTIFICATION_BATCH) -> int:
    """E-mail notifications an earlier send left behind (an SMTP outage), oldest first, in a bounded batch.

    The run that made them may have failed after claiming its follow-ups, so its
    own retry finds nothing to do: this is what sends them. Each is still claimed
    before it is sent, so a concurrent first attempt and this never both send.
    """
    now = now or timezone.now()
    pending = (
        Notification.objects.filter(emailed_at__isnull=True, created_at__gte=now - NOTIFICATION_RETRY_WINDOW)
        .exclude(recipient__email="")
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)[:batch]
    )
    sent = notifications_deliver(list(pending))
    if sent:
        logger.info("delivered %d pending notifications", sent)
    return sent
