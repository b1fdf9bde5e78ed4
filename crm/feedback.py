"""Feedback: intake, classification, and the praise / complaint workflow it starts.

Intake stores the feedback and answers at once; the workflow runs afterwards on a
Celery worker (or in-process after commit on the embedded defaults), handed over
by crm.outbox. Everything here is safe to run twice: a second run finds the rows
the first one made (unique constraints, conditional updates) and does nothing new.

The intake is public, so nothing a poster types is trusted to reach or reveal a
customer. Praise recognizes staff and thanks the customer (crm.follow_ups decides
how); a complaint opens a service-recovery case and follow-up. Staff named in the
`staff` field are recognized only if they served this customer (the linked contact
or the customer's recent contacts).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils import timezone

from crm.exceptions import DomainError
from crm.follow_ups import thank_you_arrange, thank_you_email_send
from crm.models import (
    AuditAction,
    Case,
    CaseKind,
    Feedback,
    FeedbackStatus,
    FollowUp,
    FollowUpKind,
    Interaction,
    Recognition,
    Sentiment,
)
from crm.notifications import notification_create, notifications_deliver
from crm.outbox import feedback_dispatch
from crm.services import audit_record, customer_resolve, customers_matching, identifiers_normalize
from crm.staff import supervisor_of, supervisors
from crm.webhooks import webhook_emit  # issue 16

logger = logging.getLogger(__name__)

# Rating and NPS are what the customer chose deliberately; they weigh twice the text.
EXPLICIT_WEIGHT = 2.0
TEXT_WEIGHT = 1.0
# |score| below this is neutral. VADER's own convention is 0.05; feedback is noisier.
SENTIMENT_THRESHOLD = 0.15
# A recent contact whose agent's first name appears in the text counts as "named".
STAFF_MENTION_CONTACTS = 20


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
        customer = customer_resolve(interaction.customer_id) if interaction.customer_id else None
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
    with transaction.atomic():  # the status and its webhook (issue 16) commit together
        if Feedback.objects.filter(pk=feedback_id, status=FeedbackStatus.RECEIVED).update(
            status=FeedbackStatus.PROCESSED, processed_at=timezone.now()
        ):
            webhook_emit("feedback.processed", key=f"feedback:{feedback_id}", data=_feedback_event(feedback))
    logger.info("feedback %s processed: %s, %d notifications", feedback_id, sentiment, len(notification_ids))
    return "processed"


def _id(value) -> str | None:
    return str(value) if value is not None else None


def _feedback_event(feedback: Feedback) -> dict[str, Any]:
    """The feedback.processed webhook's data: ids and kinds only."""
    return {
        "feedback_id": str(feedback.pk),
        "sentiment": feedback.sentiment,
        "interaction_id": str(feedback.interaction_id) if feedback.interaction_id else None,
        "customer_id": str(feedback.customer_id) if feedback.customer_id else None,
        "case_id": feedback.case_id,
    }


def _follow_merge(feedback: Feedback) -> None:
    """Feedback stored against a customer who was merged away meanwhile belongs to the survivor."""
    if feedback.customer is None or feedback.customer.merged_into_id is None:
        return
    survivor = customer_resolve(feedback.customer_id)
    if survivor is not None:
        feedback.customer = survivor
        feedback.save(update_fields=["customer"])


def _positive(feedback: Feedback) -> tuple[list[int], FollowUp | None]:
    notification_ids: list[int] = []
    quote = feedback.text[:2000]
    for staff, interaction in feedback_staff_involved(feedback):
        recognition, created = Recognition.objects.get_or_create(
            feedback=feedback, staff=staff, defaults={"interaction": interaction, "quote": quote}
        )
        if created:
            webhook_emit(
                "recognition.created", key=f"recognition:{recognition.pk}", data=_recognition_event(recognition)
            )
        said = f'"{quote}"' if quote else f"a rating of {feedback.rating or '-'} / NPS {feedback.nps or '-'}"
        notification_ids.append(
            notification_create(
                recipient=staff,
                kind="recognition",
                key=str(recognition.pk),
                recognition=recognition,
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
                    recognition=recognition,
                    subject=f"A customer praised {staff.get_full_name() or staff.username}",
                    body=f"{staff.get_full_name() or staff.username} was praised by a customer: {said}",
                ).pk
            )
    return notification_ids, thank_you_arrange(feedback)


def _recognition_event(recognition: Recognition) -> dict[str, Any]:
    return {
        "recognition_id": recognition.pk,
        "feedback_id": str(recognition.feedback_id),
        "staff_id": recognition.staff_id,
        "interaction_id": str(recognition.interaction_id) if recognition.interaction_id else None,
    }


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
        webhook_emit(
            "case.opened",
            key=f"case:{case.pk}",
            data={
                "case_id": case.pk,
                "kind": case.kind,
                "customer_id": _id(case.customer_id),
                "feedback_id": _id(feedback.pk),
            },
        )
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
    recipients = [owner] if owner is not None else supervisors()
    return [
        notification_create(
            recipient=recipient,
            kind="service_recovery",
            key=str(follow_up.pk),
            follow_up=follow_up,
            feedback=feedback,
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
