"""Feedback and the workflows it starts: recognition, thanks, service recovery, escalation.

Intake stores the feedback and answers at once; the workflow runs afterwards on a
Celery worker (or in-process after commit on the embedded defaults). Everything
here is safe to run twice: a second run finds the rows the first one made
(unique constraints, conditional updates) and does nothing new.

The intake is public, so nothing a poster types is trusted to reach or reveal a
customer. The automatic thank-you e-mail goes only to a linked customer, only to an
address on file for them, and only with consent: a current preference
`contact_consent` or `marketing_opt_in` set to a true value, or "you may e-mail me"
(`contact_consent`) ticked together with an address that is on file. Without
consent, or when the customer prefers phone or SMS, the thank-you becomes a callback
task for an agent. Staff named in the `staff` field are recognized only if they
served this customer (the linked contact or the customer's recent contacts).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import smtplib
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Case as SqlCase
from django.db.models import Count, F, Q, QuerySet, Value, When
from django.utils import timezone

from crm.exceptions import DomainError, NotFound
from crm.models import (
    AuditAction,
    Case,
    CaseKind,
    Customer,
    Feedback,
    FeedbackStatus,
    FollowUp,
    FollowUpKind,
    FollowUpStatus,
    Identity,
    IdentityKind,
    Interaction,
    Notification,
    Preference,
    Recognition,
    RecurringProblem,
    RecurringProblemStatus,
    Sentiment,
    StaffProfile,
)
from crm.permissions import AGENT, SUPERVISOR
from crm.services import audit_record, customers_matching, identifiers_normalize

logger = logging.getLogger(__name__)
User = get_user_model()

TRUTHY = {"1", "true", "yes", "y", "on"}
# Rating and NPS are what the customer chose deliberately; they weigh twice the text.
EXPLICIT_WEIGHT = 2.0
TEXT_WEIGHT = 1.0
# |score| below this is neutral. VADER's own convention is 0.05; feedback is noisier.
SENTIMENT_THRESHOLD = 0.15
# A recent contact whose agent's first name appears in the text counts as "named".
STAFF_MENTION_CONTACTS = 20
# A thank-you callback is a courtesy: it should happen within two days.
THANK_YOU_CALLBACK_HOURS = 48
# The outbox sweep leaves the first seconds to the after-commit enqueue.
OUTBOX_GRACE_SECONDS = 5
# A message that reached the broker but whose feedback is still unprocessed after
# this long was lost (broker restarted without persistence): send it again.
OUTBOX_RESEND_AFTER = dt.timedelta(minutes=15)
# After a failed publish, requests skip the broker this long (the sweep does not).
BROKER_BREAKER_SECONDS = 5.0
# Periodic work in bounded batches so one run never holds a worker for long.
SWEEP_BATCH = 500
ESCALATION_BATCH = 200
# Notifications left unsent by a failed send are retried this long, this many per run.
NOTIFICATION_BATCH = 200
NOTIFICATION_RETRY_WINDOW = dt.timedelta(days=7)
# The automatic thank-you is due an hour after the feedback: it is sent at once, and
# the escalation sweep must not report it overdue while the sending is retried.
THANK_YOU_EMAIL_GRACE = dt.timedelta(hours=1)
RECURRING_THRESHOLD = 3


# --- intake ---------------------------------------------------------------------------


@transaction.atomic
def feedback_submit(
    *,
    interaction_id=None,
    email: str | None = None,
    phone: str | None = None,
    account: str | None = None,
    rating: int | None = None,
    nps: int | None = None,
    text: str = "",
    staff: Sequence[str] = (),
    contact_consent: bool = False,
) -> Feedback:
    """Store feedback, linked to its contact or customer when we can tell, and enqueue the workflow after commit.

    Unknown staff usernames are kept and ignored later rather than refused: this
    endpoint is public and must not tell strangers which usernames exist.
    """
    if rating is None and nps is None and not (text or "").strip():
        raise DomainError("Give a rating, an NPS score or some text.", field="text")
    identifiers = identifiers_normalize({"email": email, "phone": phone, "account": account})
    interaction = None
    customer = None
    if interaction_id is not None:
        try:
            interaction = Interaction.objects.select_related("customer").get(pk=interaction_id)
        except (Interaction.DoesNotExist, DjangoValidationError, ValueError):
            raise DomainError(f"No contact with id '{interaction_id}'.", field="interaction_id") from None
        customer = _live(interaction.customer)
    if customer is None and identifiers:
        matches = customers_matching(identifiers)
        customer = matches[0] if len(matches) == 1 else None
    feedback = Feedback.objects.create(
        interaction=interaction,
        customer=customer,
        rating=rating,
        nps=nps,
        text=(text or "").strip(),
        staff_named=[s.strip() for s in staff if s and s.strip()],
        identifiers=identifiers,
        contact_consent=contact_consent,
        received_at=timezone.now(),
    )
    if customer is not None:
        audit_record(actor=None, action=AuditAction.CREATE, customer=customer, detail={"feedback": str(feedback.pk)})
    feedback_id = str(feedback.pk)
    transaction.on_commit(lambda: feedback_dispatch(feedback_id))
    logger.info("feedback %s received (linked=%s)", feedback_id, customer is not None)
    return feedback


def _live(customer: Customer | None) -> Customer | None:
    """The live customer behind a possibly merged one; None when erased."""
    seen = 0
    while customer is not None and customer.merged_into_id is not None and seen < 10:
        customer = customer.merged_into
        seen += 1
    if customer is None or customer.erased_at is not None:
        return None
    return customer


class _BrokerBreaker:
    """After a failed publish, skip publishing from this process for a few seconds.

    While the broker is down each attempt costs its connect timeouts (about 2 s);
    without this every feedback request would pay them. Skipped feedback waits in
    the outbox like any other unsent one. Per process, no locking: a race only
    means one extra attempt.
    """

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.open_until = 0.0

    def is_open(self) -> bool:
        return time.monotonic() < self.open_until

    def trip(self) -> None:
        self.open_until = time.monotonic() + self.seconds

    def reset(self) -> None:
        self.open_until = 0.0


broker_breaker = _BrokerBreaker(BROKER_BREAKER_SECONDS)


def feedback_dispatch(feedback_id: str, *, force: bool = False) -> bool:
    """Hand the workflow to the broker; on success mark the outbox row as sent.

    A broker that is down must not fail the request that stored the feedback:
    the error is logged, dispatched_at stays empty and the outbox sweep sends it
    later. `force` (the sweep) tries even while the breaker is open.
    """
    from crm.tasks import feedback_process_task

    if not force and broker_breaker.is_open():
        logger.info("feedback %s left to the outbox sweep (broker recently unreachable)", feedback_id)
        return False
    try:
        feedback_process_task.apply_async(args=[feedback_id])
    except Exception as exc:  # noqa: BLE001 - any publish failure leaves the row to the sweep
        broker_breaker.trip()
        logger.warning("feedback %s not enqueued (%s); the outbox sweep will retry", feedback_id, type(exc).__name__)
        return False
    broker_breaker.reset()
    Feedback.objects.filter(pk=feedback_id, dispatched_at__isnull=True).update(dispatched_at=timezone.now())
    return True


def feedback_outbox_sweep(*, now: dt.datetime | None = None, batch: int = SWEEP_BATCH) -> tuple[int, bool]:
    """Re-enqueue feedback whose workflow message never reached the broker (or was lost).

    Returns (sent, has_more). Safe to overlap with the workflow itself: processing
    is idempotent, so a message sent twice does nothing the second time.
    """
    now = now or timezone.now()
    pending = (
        Feedback.objects.filter(
            status=FeedbackStatus.RECEIVED, received_at__lt=now - dt.timedelta(seconds=OUTBOX_GRACE_SECONDS)
        )
        .filter(Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=now - OUTBOX_RESEND_AFTER))
        .order_by("received_at")
        .values_list("pk", flat=True)[: batch + 1]
    )
    ids = [str(pk) for pk in pending]
    sent = 0
    for feedback_id in ids[:batch]:
        # Re-sending one that was lost: clear the mark so dispatch records the new send.
        Feedback.objects.filter(pk=feedback_id, dispatched_at__lt=now - OUTBOX_RESEND_AFTER).update(dispatched_at=None)
        if not feedback_dispatch(feedback_id, force=True):
            break  # the broker is still down; the next sweep tries again
        sent += 1
    if ids:
        logger.info("outbox sweep re-enqueued %d feedback", sent)
    return sent, len(ids) > batch


def contact_followers_link(interaction: Interaction, customer: Customer) -> None:
    """A contact just got its customer: feedback about it, and the cases and follow-ups made from that, are theirs too.

    Otherwise the customer's timeline, export and erasure would miss them. Only rows
    with no customer yet are touched.
    """
    feedback = Feedback.objects.filter(interaction=interaction, customer__isnull=True)
    feedback_ids = list(feedback.values_list("pk", flat=True))
    if not feedback_ids and interaction.case_id is None:
        return
    Feedback.objects.filter(pk__in=feedback_ids).update(customer=customer)
    case_ids = {
        *Feedback.objects.filter(pk__in=feedback_ids, case__isnull=False).values_list("case_id", flat=True),
        *([interaction.case_id] if interaction.case_id else []),
    }
    Case.objects.filter(pk__in=case_ids, customer__isnull=True).update(customer=customer)
    FollowUp.objects.filter(Q(feedback_id__in=feedback_ids) | Q(case_id__in=case_ids), customer__isnull=True).update(
        customer=customer
    )


# --- classification ---------------------------------------------------------------------


@lru_cache(maxsize=1)
def _analyzer():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def feedback_classify(*, rating: int | None, nps: int | None, text: str) -> tuple[str, float]:
    """(sentiment, score in [-1, 1]) from rating, NPS and the text's tone combined.

    Rating 1-5 maps linearly around 3; NPS follows its own convention (9-10
    promoters, 7-8 passive, 0-6 detractors); the text is VADER's compound score.
    """
    signals: list[tuple[float, float]] = []
    if rating is not None:
        signals.append(((rating - 3) / 2, EXPLICIT_WEIGHT))
    if nps is not None:
        signals.append((1.0 if nps >= 9 else 0.0 if nps >= 7 else -1.0 + nps / 7, EXPLICIT_WEIGHT))
    if text and text.strip():
        signals.append((_analyzer().polarity_scores(text)["compound"], TEXT_WEIGHT))
    if not signals:
        return Sentiment.NEUTRAL, 0.0
    score = sum(value * weight for value, weight in signals) / sum(weight for _, weight in signals)
    if score >= SENTIMENT_THRESHOLD:
        return Sentiment.POSITIVE, score
    if score <= -SENTIMENT_THRESHOLD:
        return Sentiment.NEGATIVE, score
    return Sentiment.NEUTRAL, score


def _staff_users() -> QuerySet:
    return User.objects.filter(is_active=True).filter(Q(groups__name__in=[AGENT, SUPERVISOR]) | Q(is_superuser=True))


def feedback_staff_involved(feedback: Feedback) -> list[tuple[Any, Interaction | None]]:
    """Staff the feedback is about, each with the contact that ties them to it.

    The linked contact's agent; the usernames named in `staff`, and agents whose
    first name appears in the text, but only among agents of the customer's recent
    contacts. The poster is anonymous: naming someone who never served this
    customer leaves the name on the feedback and recognizes nobody.
    """
    involved: dict[int, tuple[Any, Interaction | None]] = {}
    interaction = feedback.interaction
    if interaction is not None and interaction.agent_id is not None and interaction.agent.is_active:
        involved[interaction.agent_id] = (interaction.agent, interaction)
    named = {n.strip() for n in feedback.staff_named if isinstance(n, str) and n.strip()}
    if feedback.customer_id is None or not (named or feedback.text):
        return list(involved.values())
    window_start = feedback.received_at - dt.timedelta(days=settings.CRM_REPEAT_WINDOW_DAYS)
    recent = (
        Interaction.objects.filter(customer_id=feedback.customer_id, started_at__gte=window_start, agent__isnull=False)
        .select_related("agent")
        .order_by("-started_at")[:STAFF_MENTION_CONTACTS]
    )
    for contact in recent:  # newest first: each agent is tied to their latest contact
        agent = contact.agent
        if not agent.is_active or agent.pk in involved:
            continue
        first = (agent.first_name or "").strip()
        if agent.username in named or (feedback.text and first and _mentions(feedback.text, first)):
            involved[agent.pk] = (agent, contact)
    return list(involved.values())


def _mentions(text: str, name: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text, flags=re.IGNORECASE) is not None


def supervisor_of(user) -> Any | None:
    """The line supervisor: the staff profile's, else the team's; never the person themself."""
    profile = StaffProfile.objects.select_related("supervisor", "team__supervisor").filter(user=user).first()
    if profile is None:
        return None
    for candidate in (profile.supervisor, profile.team.supervisor if profile.team else None):
        if candidate is not None and candidate.pk != user.pk and candidate.is_active:
            return candidate
    return None


def _supervisors() -> list:
    return list(User.objects.filter(is_active=True, groups__name=SUPERVISOR).order_by("username")[:50])


def _admins() -> list:
    return list(User.objects.filter(is_active=True, is_superuser=True).order_by("username")[:20])


# --- notifications ---------------------------------------------------------------------------


def notification_create(*, recipient, kind: str, key: str, subject: str, body: str) -> Notification:
    """One notification per recipient, kind and subject object (constraint notification_once)."""
    notification, _ = Notification.objects.get_or_create(
        recipient=recipient, kind=kind, key=key, defaults={"subject": subject[:200], "body": body}
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


# --- the workflow -------------------------------------------------------------------------------


def feedback_process(feedback_id: str) -> str:
    """Run the workflow for one feedback; returns what happened ('processed', 'already', 'missing').

    Rows are made in one transaction holding the feedback's row lock, so two
    deliveries of the same message cannot both create a case; e-mails go out
    after that commits, each claimed once; the feedback is marked processed last,
    so a crash anywhere before leaves it to a redelivery or the outbox sweep.
    """
    with transaction.atomic():
        # The row lock serializes concurrent deliveries of the same feedback (the case is not unique by constraint).
        feedback = (
            Feedback.objects.select_related("interaction__agent", "interaction__reason", "customer")
            .select_for_update(of=("self",))
            .filter(pk=feedback_id)
            .first()
        )
        if feedback is None:
            logger.warning("feedback %s not found; nothing to do", feedback_id)
            return "missing"
        if feedback.status == FeedbackStatus.PROCESSED:
            return "already"
        _follow_merge(feedback)
        sentiment, score = feedback_classify(rating=feedback.rating, nps=feedback.nps, text=feedback.text)
        if feedback.sentiment != sentiment:
            feedback.sentiment, feedback.sentiment_score = sentiment, score
            feedback.save(update_fields=["sentiment", "sentiment_score"])
        if sentiment == Sentiment.POSITIVE:
            notification_ids, thank_you = _positive(feedback)
        elif sentiment == Sentiment.NEGATIVE:
            notification_ids, thank_you = _negative(feedback), None
        else:
            notification_ids, thank_you = [], None
    # The customer's thank-you first: a failing staff mail must not hold it up.
    if thank_you is not None:
        thank_you_email_send(thank_you.pk)
    notifications_deliver(notification_ids)
    Feedback.objects.filter(pk=feedback_id, status=FeedbackStatus.RECEIVED).update(
        status=FeedbackStatus.PROCESSED, processed_at=timezone.now()
    )
    logger.info("feedback %s processed: %s, %d notifications", feedback_id, sentiment, len(notification_ids))
    return "processed"


def _follow_merge(feedback: Feedback) -> None:
    """Feedback stored against a customer who was merged away meanwhile belongs to the survivor."""
    if feedback.customer is None or feedback.customer.merged_into_id is None:
        return
    survivor = _live(feedback.customer)
    if survivor is not None:
        feedback.customer = survivor
        feedback.save(update_fields=["customer"])


def _positive(feedback: Feedback) -> tuple[list[int], FollowUp | None]:
    notification_ids: list[int] = []
    quote = feedback.text[:2000]
    for staff, interaction in feedback_staff_involved(feedback):
        recognition, _ = Recognition.objects.get_or_create(
            feedback=feedback, staff=staff, defaults={"interaction": interaction, "quote": quote}
        )
        said = f'"{quote}"' if quote else f"a rating of {feedback.rating or '-'} / NPS {feedback.nps or '-'}"
        notification_ids.append(
            notification_create(
                recipient=staff,
                kind="recognition",
                key=str(recognition.pk),
                subject="A customer praised you",
                body=f"Well done, {staff.first_name or staff.username}! A customer said: {said}",
            ).pk
        )
        supervisor = supervisor_of(staff)
        if supervisor is not None:
            notification_ids.append(
                notification_create(
                    recipient=supervisor,
                    kind="recognition",
                    key=str(recognition.pk),
                    subject=f"A customer praised {staff.get_full_name() or staff.username}",
                    body=f"{staff.get_full_name() or staff.username} was praised by a customer: {said}",
                ).pk
            )
    return notification_ids, _thank_you(feedback)


def _emails_on_file(customer_id) -> list[str]:
    """The customer's addresses, verified ones first."""
    return list(
        Identity.objects.filter(customer_id=customer_id, kind=IdentityKind.EMAIL)
        .order_by(F("verified_at").desc(nulls_last=True), "created_at")
        .values_list("normalized", flat=True)[:20]
    )


def _contactable(feedback: Feedback) -> Customer | None:
    """The live customer the feedback is linked to, or None (unlinked, or erased)."""
    return _live(feedback.customer)


def _customer_email(feedback: Feedback) -> str | None:
    """Where to thank the customer: only ever an address on file for the linked customer.

    The form is public: anyone can type a stranger's phone number and their own
    address. A typed address is used only when it is one of the customer's; an
    address not on file gets nothing, so the service neither tells a stranger
    whose number it was nor mails whoever it is told to.
    """
    customer = _contactable(feedback)
    if customer is None:
        return None
    on_file = _emails_on_file(customer.pk)
    typed = feedback.identifiers.get(IdentityKind.EMAIL)
    if typed and typed in on_file:
        return typed
    return on_file[0] if on_file else None


def _preferences(customer_id) -> dict[str, str]:
    if customer_id is None:
        return {}
    return dict(Preference.objects.filter(customer_id=customer_id, is_current=True).values_list("key", "value")[:100])


def _email_consent(feedback: Feedback, prefs: dict[str, str]) -> bool:
    """Consent on file, or ticked on this feedback together with an address that is on file.

    A ticked box next to someone else's address (or none) is not the customer's consent.
    """
    if any(str(prefs.get(key, "")).lower() in TRUTHY for key in ("contact_consent", "marketing_opt_in")):
        return True
    typed = feedback.identifiers.get(IdentityKind.EMAIL)
    return bool(
        feedback.contact_consent and typed and feedback.customer_id and typed in _emails_on_file(feedback.customer_id)
    )


def _thank_you(feedback: Feedback) -> FollowUp | None:
    """A thank-you on the customer's channel: e-mail with consent, else a callback task (unless do-not-call).

    Only for a live linked customer, and only to what is on file for them.
    """
    customer = _contactable(feedback)
    if customer is None:
        return None
    prefs = _preferences(customer.pk)
    email = _customer_email(feedback)
    prefers_voice = prefs.get("preferred_channel") in ("phone", "sms")
    now = timezone.now()
    if email and not prefers_voice and _email_consent(feedback, prefs):
        follow_up, _ = FollowUp.objects.get_or_create(
            feedback=feedback,
            kind=FollowUpKind.THANK_YOU_EMAIL,
            defaults={
                "customer": customer,
                "channel": "email",
                "due_at": now + THANK_YOU_EMAIL_GRACE,
                "note": "Automatic thank-you",
            },
        )
        return follow_up
    if str(prefs.get("do_not_call", "")).lower() in TRUTHY:
        return None
    interaction = feedback.interaction
    FollowUp.objects.get_or_create(
        feedback=feedback,
        kind=FollowUpKind.THANK_YOU_CALLBACK,
        defaults={
            "customer": customer,
            "owner": interaction.agent if interaction is not None else None,
            "channel": prefs.get("preferred_channel") if prefers_voice else "phone",
            "due_at": now + dt.timedelta(hours=THANK_YOU_CALLBACK_HOURS),
            "note": "Call the customer to thank them for their feedback.",
        },
    )
    return None


def thank_you_email_send(follow_up_id) -> bool:
    """Send the automatic thank-you once: the follow-up is claimed as done, then the e-mail goes.

    Claimed from open or escalated (a sweep may have escalated it while the send
    was being retried). The address is looked up again: only one on file now.
    """
    follow_up = FollowUp.objects.select_related("feedback__customer", "customer").get(pk=follow_up_id)
    unfinished = [FollowUpStatus.OPEN, FollowUpStatus.ESCALATED]
    email = _customer_email(follow_up.feedback) if follow_up.feedback else None
    if not email:
        # Erased, or the address removed since: nothing to send, nothing to escalate.
        FollowUp.objects.filter(pk=follow_up_id, status__in=unfinished).update(status=FollowUpStatus.CANCELLED)
        return False
    claimed = FollowUp.objects.filter(pk=follow_up_id, status__in=unfinished).update(
        status=FollowUpStatus.DONE, completed_at=timezone.now()
    )
    if not claimed:
        return False
    customer = _contactable(follow_up.feedback)
    name = (customer.preferred_name or customer.display_name) if customer else ""
    try:
        send_mail(
            "Thank you for your feedback",
            f"Dear {name or 'customer'},\n\nThank you for taking the time to tell us about your experience. "
            "We have passed your kind words on to the team.\n",
            settings.DEFAULT_FROM_EMAIL,
            [email],
        )
    except Exception:
        # Release the claim to what it was: escalated if the sweep got to it first.
        FollowUp.objects.filter(pk=follow_up_id).update(
            status=SqlCase(
                When(escalated_at__isnull=False, then=Value(FollowUpStatus.ESCALATED)),
                default=Value(FollowUpStatus.OPEN),
            ),
            completed_at=None,
        )
        raise
    return True


def recovery_owner(feedback: Feedback) -> Any | None:
    """Who owns a complaint: the supervisor of the agent who handled the contact (or of a named agent)."""
    interaction = feedback.interaction
    if interaction is not None and interaction.agent is not None:
        supervisor = supervisor_of(interaction.agent)
        if supervisor is not None:
            return supervisor
    for staff, _ in feedback_staff_involved(feedback):
        supervisor = supervisor_of(staff)
        if supervisor is not None:
            return supervisor
    return None


def _negative(feedback: Feedback) -> list[int]:
    """A service-recovery case and a follow-up with a deadline, owned by the team's supervisor.

    Called holding the feedback's row lock, so the case is made once.
    """
    now = timezone.now()
    owner = recovery_owner(feedback)
    due = now + dt.timedelta(hours=settings.CRM_RECOVERY_DEADLINE_HOURS)
    interaction = feedback.interaction
    if feedback.case_id is None:
        case = Case.objects.create(
            customer=feedback.customer,
            subject=f"Service recovery: {_headline(feedback)}",
            kind=CaseKind.SERVICE_RECOVERY,
            reason=interaction.reason if interaction is not None else None,
            owner=owner,
            opened_at=now,
            due_at=due,
        )
        feedback.case = case
        feedback.save(update_fields=["case"])
        if interaction is not None and interaction.case_id is None:
            Interaction.objects.filter(pk=interaction.pk, case__isnull=True).update(case=case)
    follow_up, _ = FollowUp.objects.get_or_create(
        feedback=feedback,
        kind=FollowUpKind.SERVICE_RECOVERY,
        defaults={
            "customer": feedback.customer,
            "case_id": feedback.case_id,
            "owner": owner,
            "channel": "phone",
            "due_at": due,
            "note": "Contact the customer and put things right.",
        },
    )
    recipients = [owner] if owner is not None else _supervisors()
    return [
        notification_create(
            recipient=recipient,
            kind="service_recovery",
            key=str(follow_up.pk),
            subject=f"Complaint to recover by {follow_up.due_at:%Y-%m-%d %H:%M} UTC",
            body=(
                f"A customer left negative feedback ({_headline(feedback)}). A service-recovery follow-up is "
                f"{'yours' if owner is not None else 'unassigned'}, due {follow_up.due_at:%Y-%m-%d %H:%M} UTC. "
                f"Feedback {feedback.pk}, case {feedback.case_id}."
            ),
        ).pk
        for recipient in recipients
    ]


def _headline(feedback: Feedback) -> str:
    parts = []
    if feedback.rating is not None:
        parts.append(f"rating {feedback.rating}/5")
    if feedback.nps is not None:
        parts.append(f"NPS {feedback.nps}")
    return ", ".join(parts) or "negative comment"


# --- escalation ---------------------------------------------------------------------------------


def next_level_for(owner) -> list:
    """Who hears about an overdue follow-up: the owner's own supervisor, else the administrators."""
    if owner is not None:
        supervisor = supervisor_of(owner)
        if supervisor is not None:
            return [supervisor]
    return _admins() or _supervisors()


def follow_ups_escalate(*, now: dt.datetime | None = None, batch: int = ESCALATION_BATCH) -> tuple[int, bool]:
    """Escalate open follow-ups past their deadline; returns (escalated, has_more).

    Each follow-up is claimed with a conditional update (status still open, still
    overdue), so however often and however concurrently this runs, each is
    escalated and notified once. Each run also sends notifications an earlier
    failed send left behind, so an SMTP outage delays escalation mails but does
    not lose them.
    """
    now = now or timezone.now()
    overdue = list(
        FollowUp.objects.filter(status=FollowUpStatus.OPEN, due_at__lt=now)
        .order_by("due_at")
        .values_list("pk", flat=True)[: batch + 1]
    )
    escalated = 0
    notification_ids: list[int] = []
    for pk in overdue[:batch]:
        with transaction.atomic():
            claimed = FollowUp.objects.filter(pk=pk, status=FollowUpStatus.OPEN, due_at__lt=now).update(
                status=FollowUpStatus.ESCALATED, escalated_at=now, escalation_level=F("escalation_level") + 1
            )
            if not claimed:
                continue
            follow_up = FollowUp.objects.select_related("owner").get(pk=pk)
            escalated += 1
            for recipient in next_level_for(follow_up.owner):
                notification_ids.append(
                    notification_create(
                        recipient=recipient,
                        kind="escalation",
                        key=f"{follow_up.pk}:{follow_up.escalation_level}",
                        subject=f"Overdue follow-up escalated ({follow_up.get_kind_display()})",
                        body=(
                            f"Follow-up {follow_up.pk} ({follow_up.kind}) was due {follow_up.due_at:%Y-%m-%d %H:%M} "
                            f"UTC and is not done; owner: {follow_up.owner.username if follow_up.owner else 'none'}."
                        ),
                    ).pk
                )
    notifications_deliver(notification_ids)
    # Escalation mails a failed run left unsent (its follow-ups are claimed already), and any others.
    notifications_deliver_pending(now=now)
    if escalated:
        logger.info("escalated %d overdue follow-ups", escalated)
    return escalated, len(overdue) > batch


# --- follow-ups (supervisors) ----------------------------------------------------------------------


@transaction.atomic
def follow_up_update(
    *,
    follow_up_id,
    status: str | None = None,
    owner: str | None = None,
    due_at: dt.datetime | None = None,
    note: str | None = None,
) -> FollowUp:
    """A supervisor works a follow-up: done, cancelled, reopened with a new deadline, reassigned."""
    try:
        follow_up = FollowUp.objects.select_for_update().get(pk=follow_up_id)
    except (FollowUp.DoesNotExist, DjangoValidationError, ValueError):
        raise NotFound(f"No follow-up with id '{follow_up_id}'.", field="id") from None
    changed: list[str] = []
    if status is not None and status != follow_up.status:
        follow_up.status = status
        follow_up.completed_at = timezone.now() if status == FollowUpStatus.DONE else None
        changed += ["status", "completed_at"]
    if owner is not None:
        try:
            follow_up.owner = _staff_users().filter(username=owner).distinct().get()
        except User.DoesNotExist:
            raise DomainError(f"No member of staff '{owner}'.", field="owner") from None
        changed.append("owner")
    if due_at is not None:
        follow_up.due_at = due_at
        changed.append("due_at")
    if note is not None:
        follow_up.note = note
        changed.append("note")
    if changed:
        follow_up.save(update_fields=changed)
    return follow_up


# --- recurring problems ------------------------------------------------------------------------------


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


# --- selectors (reads) ----------------------------------------------------------------------------------


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
