"""The e-mail outbox: every e-mail is a row, sent under a lease, marked sent only after the server took it.

Marking a message sent before sending loses it when the worker dies mid-send;
marking it after can send it twice when the worker dies between the server's
"250 OK" and the update. The second is the smaller harm, its window is a few
milliseconds, and it is recognisable: the row's id is the message's Message-ID on
every attempt, so the receiver (or a person) sees a re-send as the same message.

A send claims the row for CRM_EMAIL_LEASE_SECONDS with a conditional update, so
two senders never both send it; a worker killed mid-send leaves a claim that
expires, and the sweep sends the row then. A failed send records its error and
backs off (the lease doubles as the back-off); after CRM_EMAIL_MAX_ATTEMPTS the
row is dead-lettered (failed) for a person to retry from the admin.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterable
from email.utils import parseaddr

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from crm.models import (
    OPEN_FOLLOW_UP,
    AuditAction,
    EmailStatus,
    FollowUp,
    FollowUpStatus,
    Identity,
    IdentityKind,
    Notification,
    OutboundEmail,
)
from crm.services import audit_record, row_get_or_create

logger = logging.getLogger(__name__)

# The sweep leaves the first seconds to the sender that wrote the row (it sends right after commit).
EMAIL_SWEEP_GRACE = dt.timedelta(seconds=5)
# Back-off after a failed send: 5 s, 10 s, 20 s, ... capped at an hour.
EMAIL_RETRY_BASE_SECONDS = 5
EMAIL_RETRY_MAX_SECONDS = 3600
# Periodic work in bounded batches so one run never holds a worker for long.
EMAIL_BATCH = 200


def message_id(email: OutboundEmail) -> str:
    """The stable Message-ID: the same on every attempt to send this row."""
    domain = parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2] or "goldfish.invalid"
    return f"<{email.pk}@{domain}>"


def email_queue(
    *,
    key: str,
    to: str,
    subject: str,
    body: str,
    notification: Notification | None = None,
    follow_up=None,
    new: bool = False,
) -> OutboundEmail:
    """One e-mail per key (a workflow run twice queues it once); call in the transaction that decides it.

    `new`: the caller knows no e-mail has this key yet (row_get_or_create).
    """
    email, _ = row_get_or_create(
        OutboundEmail,
        new=new,
        key=key,
        defaults={
            "to": to,
            "subject": subject[:200],
            "body": body,
            "notification": notification,
            "follow_up": follow_up,
        },
    )
    return email


def lease() -> dt.timedelta:
    return dt.timedelta(seconds=settings.CRM_EMAIL_LEASE_SECONDS)


def retry_delay(attempts: int) -> dt.timedelta:
    """How long to wait after the `attempts`-th failed send."""
    seconds = EMAIL_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0)
    return dt.timedelta(seconds=min(seconds, EMAIL_RETRY_MAX_SECONDS))


def _claimable(now: dt.datetime) -> Q:
    return Q(status=EmailStatus.PENDING) & (Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))


def _sender() -> str:
    """Who holds a claim: host, process, and a nonce for this one attempt."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _still_owed(email: OutboundEmail) -> bool:
    """A thank-you goes only while its follow-up is open and only to an address still on the customer's file."""
    follow_up = email.follow_up
    if follow_up is None:
        return True
    if follow_up.customer_id is None or follow_up.status not in OPEN_FOLLOW_UP:
        return False
    return Identity.objects.filter(
        customer_id=follow_up.customer_id, kind=IdentityKind.EMAIL, normalized=email.to
    ).exists()


def email_send(email_id, *, now: dt.datetime | None = None) -> str:
    """Send one e-mail if it is still owed and nobody else is sending it.

    Returns 'sent', 'failed' (left for a retry), 'dead' (dead-lettered),
    'cancelled' (no longer owed), or 'skipped' (sent already, or claimed by a live sender).
    """
    now = now or timezone.now()
    claimed = _claim(now, pk=email_id)
    if claimed is None:
        return "skipped"
    sender, emails = claimed
    if not emails:
        return "skipped"
    return _deliver_all(emails, sender, now)[0]


def _claim(now: dt.datetime, **lookup) -> tuple[str, list[OutboundEmail]] | None:
    """Claim the claimable e-mails matching `lookup` for one lease (one conditional update), and read them.

    None when there was nothing to claim. Lookups must be indexed: they run twice.
    """
    sender = _sender()
    claimed = OutboundEmail.objects.filter(_claimable(now), **lookup).update(
        claimed_until=now + lease(),
        claimed_by=sender,
        attempts=F("attempts") + 1,
    )
    if not claimed:
        return None
    emails = list(
        OutboundEmail.objects.select_related("follow_up")
        .filter(claimed_by=sender, **lookup)
        .order_by("created_at", "pk")
    )
    return sender, emails


def _deliver_all(emails: list[OutboundEmail], sender: str, now: dt.datetime) -> list[str]:
    """Send claimed e-mails over one mail server connection (one SMTP hand-shake, not one each).

    They were claimed together: past half the lease (a slow mail server, a long batch) the
    claim on the rest is renewed first, and any no longer ours is skipped, so none is ever
    sent outside its claim.
    """
    connection = get_connection()
    renew_at = time.monotonic() + lease().total_seconds() / 2
    results = []
    try:
        for i, email in enumerate(emails):
            if time.monotonic() > renew_at:
                renew_at = time.monotonic() + lease().total_seconds() / 2
                if not _claim_renewed(email, emails[i:], sender):
                    results.append("skipped")
                    continue
            results.append(_deliver(email, sender, now, connection))
    finally:
        with contextlib.suppress(Exception):
            connection.close()
    return results


def _claim_renewed(email: OutboundEmail, rest: list[OutboundEmail], sender: str) -> bool:
    """Renew our claim on `rest` for another lease; whether `email` (the first of them) is still ours."""
    OutboundEmail.objects.filter(pk__in=[e.pk for e in rest], claimed_by=sender, status=EmailStatus.PENDING).update(
        claimed_until=timezone.now() + lease()
    )
    return OutboundEmail.objects.filter(pk=email.pk, claimed_by=sender, status=EmailStatus.PENDING).exists()


def _deliver(email: OutboundEmail, sender: str, now: dt.datetime, connection) -> str:
    """Send one claimed e-mail over `connection`, then mark it sent (its notification e-mailed, its thank-you done).

    A failed send closes the connection, so the next e-mail of the batch opens a fresh one.
    """
    if email.follow_up is not None and not _still_owed(email):
        # A thank-you whose follow-up a person closed, or whose address is no longer on file (erased, removed).
        OutboundEmail.objects.filter(pk=email.pk, claimed_by=sender).update(
            status=EmailStatus.CANCELLED, claimed_until=None
        )
        return "cancelled"
    message = EmailMessage(
        email.subject,
        email.body,
        settings.DEFAULT_FROM_EMAIL,
        [email.to],
        headers={"Message-ID": message_id(email)},
        connection=connection,
    )
    try:
        connection.open()  # opened by the first e-mail that needs it; a no-op while open
        message.send()
    except Exception as exc:  # noqa: BLE001 - any failure: record it, back off, never hold up the other e-mails
        with contextlib.suppress(Exception):
            connection.close()
        return _send_failed(email, sender, exc, now)
    sent_at = timezone.now()
    with transaction.atomic():
        OutboundEmail.objects.filter(pk=email.pk, status=EmailStatus.PENDING).update(
            status=EmailStatus.SENT, sent_at=sent_at, claimed_until=None
        )
        if email.notification_id is not None:
            Notification.objects.filter(pk=email.notification_id, emailed_at__isnull=True).update(emailed_at=sent_at)
        if email.follow_up_id is not None:
            # The thank-you follow-up is done once its e-mail went (from open or escalated).
            FollowUp.objects.filter(pk=email.follow_up_id, status__in=OPEN_FOLLOW_UP).update(
                status=FollowUpStatus.DONE, completed_at=sent_at
            )
    return "sent"


def _send_failed(email: OutboundEmail, sender: str, exc: Exception, now: dt.datetime) -> str:
    """Release the claim into a back-off; dead-letter the row after CRM_EMAIL_MAX_ATTEMPTS."""
    dead = email.attempts >= settings.CRM_EMAIL_MAX_ATTEMPTS
    error = f"{type(exc).__name__}: {exc}"[:200]
    OutboundEmail.objects.filter(pk=email.pk, claimed_by=sender, status=EmailStatus.PENDING).update(
        status=EmailStatus.FAILED if dead else EmailStatus.PENDING,
        claimed_until=None if dead else now + retry_delay(email.attempts),
        claimed_by="",
        last_error=error,
    )
    if dead:
        logger.error("e-mail %s dead-lettered after %d attempts (%s)", email.pk, email.attempts, type(exc).__name__)
        return "dead"
    logger.warning("e-mail %s not sent (attempt %d, %s); retried later", email.pk, email.attempts, type(exc).__name__)
    return "failed"


def emails_send_where(**lookup) -> int:
    """Send the pending e-mails matching `lookup` (indexed: an id, notification or follow-up) now, oldest first.

    All are claimed by one conditional update and read by one query, then sent one by
    one, each marked sent as soon as the server took it. Returns how many went;
    failures are left to the sweep.
    """
    now = timezone.now()
    claimed = _claim(now, **lookup)
    if claimed is None:
        return 0
    sender, emails = claimed
    return _deliver_all(emails, sender, now).count("sent")


def emails_send_pending(
    *, now: dt.datetime | None = None, batch: int = EMAIL_BATCH, budget_seconds: float | None = None
) -> tuple[int, bool]:
    """Send e-mails a first attempt left behind (a failure, a dead worker's expired claim); returns (sent, has_more).

    Oldest first, in a bounded batch and within `budget_seconds`; each is claimed
    before it is sent, so this and a first attempt running at once never both send.
    """
    now = now or timezone.now()
    pending = list(
        OutboundEmail.objects.filter(_claimable(now), created_at__lt=now - EMAIL_SWEEP_GRACE)
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)[: batch + 1]
    )
    stop_at = time.monotonic() + budget_seconds if budget_seconds is not None else None
    sent, done = 0, 0
    for pk in pending[:batch]:
        if stop_at is not None and time.monotonic() > stop_at:
            break
        sent += email_send(pk, now=now) == "sent"
        done += 1
    if sent:
        logger.info("e-mail sweep sent %d e-mails", sent)
    return sent, len(pending) > done


def emails_retry(*, actor, ids: Iterable) -> int:
    """A person retries dead-lettered e-mails: back to pending with a fresh count, sent by the next sweep (audited)."""
    with transaction.atomic():
        rows = list(
            OutboundEmail.objects.select_for_update(of=("self",))
            .filter(pk__in=list(ids), status=EmailStatus.FAILED)
            .values_list("pk", "follow_up__customer_id")
        )
        retried = OutboundEmail.objects.filter(pk__in=[pk for pk, _ in rows]).update(
            status=EmailStatus.PENDING, attempts=0, claimed_until=None, claimed_by="", last_error=""
        )
        for pk, customer_id in rows:
            audit_record(
                actor=actor, action=AuditAction.UPDATE, customer_id=customer_id, detail={"email_retry": str(pk)}
            )
    return retried


def emails_dead_count() -> int:
    """Dead-lettered e-mails, for the admin's warning."""
    return OutboundEmail.objects.filter(status=EmailStatus.FAILED).count()
