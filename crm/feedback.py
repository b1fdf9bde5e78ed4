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
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone
from django.utils.text import Truncator

from crm.exceptions import DomainError
from crm.follow_ups import thank_you_arrange, thank_you_email_send
from crm.models import (
    AuditAction,
    Case,
    CaseKind,
    Customer,
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
from crm.sentiment import classify
from crm.services import (
    audit_record,
    customer_resolve,
    customers_matching,
    identifiers_normalize,
    row_get_or_create,
)
from crm.staff import supervisor_of, supervisors
from crm.webhooks import webhook_emit  # issue 16

logger = logging.getLogger(__name__)

# A recent contact whose agent's first name appears in the text counts as "named".
STAFF_MENTION_CONTACTS = 20


# --- intake ---------------------------------------------------------------------------


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
    Feedback without a contact is one INSERT (no transaction around it: nothing else is
    written); through a contact, the row and its audit entry commit together.
    """
    if rating is None and nps is None and not (text or "").strip():
        raise DomainError("Give a rating, an NPS score or some text.", field="text")
    fields = {
        "rating": rating,
        "nps": nps,
        "text": (text or "").strip(),
        "staff_named": [s.strip() for s in staff if s and s.strip()],
        "identifiers": identifiers_normalize({"email": email, "phone": phone, "account": account}),
        "contact_consent": contact_consent,
    }
    if interaction_id is None:
        # Named only by an identifier: not linked here (the task does it), so neither the answer
        # nor its timing tells the poster whether the identifier belongs to a customer.
        feedback = Feedback.objects.create(unverified=bool(fields["identifiers"]), received_at=timezone.now(), **fields)
        _dispatch_after_commit(feedback, linked=False)
        return feedback
    with transaction.atomic():
        interaction, customer = _contact_for_feedback(interaction_id)
        try:
            with transaction.atomic():
                feedback = Feedback.objects.create(
                    interaction=interaction,
                    customer=customer,
                    unverified=customer is None and bool(fields["identifiers"]),
                    received_at=timezone.now(),
                    **fields,
                )
        except IntegrityError:
            # One feedback per contact (feedback_once_per_interaction): a repeat, or a concurrent
            # one that won, is answered with the first and starts nothing new.
            first = Feedback.objects.filter(interaction=interaction).first()
            if first is None:
                raise
            return first
        if customer is not None:
            audit_record(
                actor=None, action=AuditAction.CREATE, customer=customer, detail={"feedback": str(feedback.pk)}
            )
        _dispatch_after_commit(feedback, linked=customer is not None)
    return feedback


def _contact_for_feedback(interaction_id) -> tuple[Interaction, Customer | None]:
    """The contact and its live customer, in one query; DomainError for an unknown contact.

    A contact of an erased customer is answered like an unknown one (nothing is written);
    one still on a merged-away customer belongs to the survivor (as customer_resolve).
    """
    try:
        interaction = Interaction.objects.select_related("customer__merged_into").filter(pk=interaction_id).first()
    except (DjangoValidationError, ValueError):
        interaction = None
    customer = None
    if interaction is not None and interaction.customer is not None:
        customer = interaction.customer
        if customer.merged_into_id is not None:
            customer = customer.merged_into
        if customer is None or customer.erased_at is not None:
            interaction = None
    if interaction is None:
        raise DomainError(f"No contact with id '{interaction_id}'.", field="interaction_id")
    return interaction, customer


def _dispatch_after_commit(feedback: Feedback, *, linked: bool) -> None:
    feedback_id = str(feedback.pk)
    transaction.on_commit(lambda: feedback_dispatch(feedback_id))
    logger.info("feedback %s received (linked=%s)", feedback_id, linked)


# --- classification ---------------------------------------------------------------------


def feedback_classify(*, rating: int | None, nps: int | None, text: str) -> tuple[str, float]:
    """(sentiment, score in [-1, 1]) from rating, NPS and the text read together (crm.sentiment says how)."""
    return classify(rating=rating, nps=nps, text=text)


def feedback_reclassify(*, feedback_id, sentiment: str, actor) -> bool:
    """A supervisor sets the sentiment; the workflow re-runs for it. Returns whether anything changed.

    Audited. Idempotent: the workflow finds the case, follow-up, recognitions and
    notifications it already made and adds only what the new sentiment needs.
    Moving away from negative leaves an open case open, for the supervisor to close.
    """
    if sentiment not in Sentiment.values:
        raise DomainError(f"Unknown sentiment '{sentiment}'.", field="sentiment")
    with transaction.atomic():
        feedback = Feedback.objects.select_for_update().filter(pk=feedback_id).first()
        if feedback is None:
            raise DomainError(f"No feedback with id '{feedback_id}'.", field="feedback_id")
        if feedback.sentiment == sentiment and feedback.sentiment_set_by_id is not None:
            return False
        before = feedback.sentiment
        feedback.sentiment, feedback.sentiment_set_by = sentiment, actor
        feedback.sentiment_score = {"positive": 1.0, "negative": -1.0}.get(sentiment, 0.0)
        feedback.status, feedback.dispatched_at = FeedbackStatus.RECEIVED, None
        feedback.save(update_fields=["sentiment", "sentiment_set_by", "sentiment_score", "status", "dispatched_at"])
        audit_record(
            actor=actor,
            action=AuditAction.UPDATE,
            customer_id=feedback.customer_id,
            detail={"feedback": str(feedback.pk), "reclassified": {"from": before, "to": sentiment}},
        )
        key = str(feedback.pk)
        transaction.on_commit(lambda: feedback_dispatch(key))
    return True


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
    """Run the workflow for one feedback; returns 'processed', 'already', 'missing' or 'dead'.

    Every row it makes (recognitions, case, follow-ups, notifications and their
    e-mails in the outbox) and the processed mark commit in one transaction holding
    the feedback's row lock: two deliveries of one message cannot both run it, and a
    worker killed mid-run leaves nothing half done for a redelivery or the outbox
    sweep. The e-mails are sent after that commit (crm.emails: marked sent only
    once sent). Each run that starts is counted; after CRM_WORKFLOW_MAX_ATTEMPTS
    the feedback is dead-lettered for a person to retry from the admin.
    """
    if not _attempt_start(feedback_id):
        return _settled(feedback_id)
    try:
        return _feedback_run(feedback_id)
    except Exception as exc:
        _attempt_failed(feedback_id, exc)
        raise


def _attempt_start(feedback_id: str) -> bool:
    """Count this run (committed at once, so a run that dies still counts); False when there is nothing to run.

    Whether the count is over CRM_WORKFLOW_MAX_ATTEMPTS is checked by the run itself, on
    the row it locks (one query less than reading the count back here).
    """
    return bool(
        Feedback.objects.filter(pk=feedback_id, status=FeedbackStatus.RECEIVED, failed_at__isnull=True).update(
            attempts=F("attempts") + 1
        )
    )


def _attempt_failed(feedback_id: str, exc: Exception) -> None:
    """Record why a run failed; dead-letter the feedback when it has used its attempts."""
    error = f"{type(exc).__name__}: {exc}"[:200]
    try:
        attempts = Feedback.objects.filter(pk=feedback_id).values_list("attempts", flat=True).first() or 0
        if attempts >= settings.CRM_WORKFLOW_MAX_ATTEMPTS:
            _dead_letter(feedback_id, error)
        else:
            Feedback.objects.filter(pk=feedback_id).update(last_error=error)
    except Exception:  # noqa: BLE001 - the database may be what failed; the next run counts again
        logger.warning("feedback %s: could not record the failure (%s)", feedback_id, type(exc).__name__)


def _dead_letter(feedback_id: str, error: str) -> None:
    Feedback.objects.filter(pk=feedback_id, status=FeedbackStatus.RECEIVED, failed_at__isnull=True).update(
        failed_at=timezone.now(), last_error=error[:200]
    )
    logger.error("feedback %s dead-lettered: %s", feedback_id, error)


def _settled(feedback_id: str) -> str:
    row = Feedback.objects.filter(pk=feedback_id).values_list("status", "failed_at").first()
    if row is None:
        logger.warning("feedback %s not found; nothing to do", feedback_id)
        return "missing"
    return "already" if row[0] == FeedbackStatus.PROCESSED else "dead"


def _feedback_run(feedback_id: str) -> str:
    with transaction.atomic():
        # The row lock serializes concurrent deliveries of the same feedback (the case is not unique by constraint).
        feedback = (
            Feedback.objects.select_related("interaction__agent", "interaction__reason", "customer")
            .annotate(has_rows=_workflow_rows_exist())
            .select_for_update(of=("self",))
            .filter(pk=feedback_id)
            .first()
        )
        if feedback is None:
            return "missing"
        if feedback.status == FeedbackStatus.PROCESSED:
            return "already"
        if feedback.failed_at is not None:
            return "dead"
        if feedback.attempts > settings.CRM_WORKFLOW_MAX_ATTEMPTS:
            # Earlier runs died without recording an error (a worker killed each time): give up.
            _dead_letter(feedback_id, f"gave up after {feedback.attempts - 1} runs that did not finish")
            return "dead"
        # Nothing made for this feedback yet (the usual first run): its rows are inserted without
        # looking for each first (row_get_or_create).
        first_run = not feedback.has_rows
        _follow_merge(feedback)
        if feedback.unverified and feedback.customer_id is None:
            _unverified_link(feedback)
        if feedback.sentiment_set_by_id is not None:  # a supervisor's reclassification stands
            sentiment, score = feedback.sentiment, feedback.sentiment_score
        else:
            sentiment, score = feedback_classify(rating=feedback.rating, nps=feedback.nps, text=feedback.text)
        feedback.sentiment, feedback.sentiment_score = sentiment, score
        if sentiment == Sentiment.POSITIVE:
            notification_ids, thank_you = _positive(feedback, new=first_run)
        elif sentiment == Sentiment.NEGATIVE:
            notification_ids, thank_you = _negative(feedback, new=first_run), None
        else:
            notification_ids, thank_you = [], None
        feedback.status, feedback.processed_at, feedback.last_error = FeedbackStatus.PROCESSED, timezone.now(), ""
        feedback.save(update_fields=["sentiment", "sentiment_score", "status", "processed_at", "last_error"])
        # issue 16: the webhook's outbox row commits with the processed mark.
        webhook_emit("feedback.processed", key=f"feedback:{feedback_id}", data=_feedback_event(feedback))
    # The customer's thank-you first: a slow or failing staff mail must not hold it up.
    # A send that fails (or a worker that dies here) leaves the e-mail to the sweep.
    if thank_you is not None:
        thank_you_email_send(thank_you.pk)
    notifications_deliver(notification_ids)
    logger.info("feedback %s processed: %s, %d notifications", feedback_id, sentiment, len(notification_ids))
    return "processed"


def _workflow_rows_exist() -> Q:
    """Whether a run already made rows for the feedback: its recognitions or follow-ups.

    Everything else a run makes hangs off those (notifications keyed by their ids, e-mails
    by the notification's or follow-up's), or is looked for anyway (the case, webhooks).
    Read with the feedback's locked row, so it costs no query of its own.
    """
    return Exists(Recognition.objects.filter(feedback=OuterRef("pk"))) | Exists(
        FollowUp.objects.filter(feedback=OuterRef("pk"))
    )


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


def _unverified_link(feedback: Feedback) -> None:
    """Link feedback that names a customer only by an identifier, at most
    CRM_UNVERIFIED_FEEDBACK_PER_DAY a day per customer: beyond that it stays unlinked (kept,
    starting no case on their card), so one e-mail address cannot be flooded with complaints.
    The customer's row lock makes the count exact under concurrent deliveries."""
    matches = customers_matching(feedback.identifiers or {})
    if len(matches) != 1:
        return
    target = Customer.objects.select_for_update().get(pk=matches[0].pk)
    since = timezone.now() - dt.timedelta(days=1)
    linked_today = Feedback.objects.filter(customer=target, unverified=True, received_at__gte=since).count()
    if linked_today >= settings.CRM_UNVERIFIED_FEEDBACK_PER_DAY:
        logger.warning("feedback %s: unverified feedback limit reached for its customer; left unlinked", feedback.pk)
        return
    feedback.customer = target
    feedback.save(update_fields=["customer"])
    audit_record(actor=None, action=AuditAction.CREATE, customer=target, detail={"feedback": str(feedback.pk)})


def _positive(feedback: Feedback, *, new: bool) -> tuple[list[int], FollowUp | None]:
    """Recognize the staff involved (each told, with their supervisor) and arrange the customer's thank-you.

    `new`: the workflow's first run, so none of these rows exist yet (row_get_or_create).
    """
    notification_ids: list[int] = []
    quote = feedback.text[:2000]
    for staff, interaction in feedback_staff_involved(feedback):
        recognition, created = row_get_or_create(
            Recognition, new=new, feedback=feedback, staff=staff, defaults={"interaction": interaction, "quote": quote}
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
                new=new,
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
                    new=new,
                ).pk
            )
    return notification_ids, thank_you_arrange(feedback, new=new)


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


# A complaint whose poster named the customer only by an identifier says so in its case subject.
UNVERIFIED_MARK = " (unverified)"


def _negative(feedback: Feedback, *, new: bool) -> list[int]:
    """A service-recovery case and a follow-up with a deadline, owned by the team's supervisor.

    Called holding the feedback's row lock, so the case is made once. `new`: the
    workflow's first run, so the follow-up and notifications do not exist yet.
    """
    now = timezone.now()
    owner = recovery_owner(feedback)
    due = now + dt.timedelta(hours=settings.CRM_RECOVERY_DEADLINE_HOURS)
    interaction = feedback.interaction
    if feedback.case_id is None:
        case = Case.objects.create(
            customer=feedback.customer,
            subject=Truncator(
                f"Service recovery{UNVERIFIED_MARK if feedback.unverified else ''}: "
                f"{_headline(feedback)}{_words(feedback)}"
            ).chars(200),
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
    follow_up, _ = row_get_or_create(
        FollowUp,
        new=new,
        feedback=feedback,
        kind=FollowUpKind.SERVICE_RECOVERY,
        defaults={
            "customer": feedback.customer,
            "case_id": feedback.case_id,
            "owner": owner,
            "channel": "phone",
            "due_at": due,
            "note": (
                "Unverified: the poster named the customer only by an identifier; check before acting. "
                if feedback.unverified
                else ""
            )
            + _recovery_note(feedback),
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
            new=new,
        ).pk
        for recipient in recipients
    ]


def _words(feedback: Feedback) -> str:
    """' — "what they said"', for the case's subject: the team lead reads the complaint, not only its score."""
    return f' — "{feedback.text}"' if feedback.text else ""


def _recovery_note(feedback: Feedback) -> str:
    """The follow-up carries what the customer said, their score, and which contact and agent it was about."""
    lines = [f'The customer said: "{feedback.text}"' if feedback.text else "The customer left no comment."]
    lines.append(f"Score: {_headline(feedback)}.")
    contact = feedback.interaction
    if contact is not None:
        agent = contact.agent.get_full_name() or contact.agent.username if contact.agent is not None else "no agent"
        lines.append(f"Contact: {contact.started_at:%Y-%m-%d %H:%M} UTC, {contact.channel}, with {agent}.")
    lines.append("Contact the customer and put things right.")
    return "\n".join(lines)


def _headline(feedback: Feedback) -> str:
    parts = []
    if feedback.rating is not None:
        parts.append(f"rating {feedback.rating}/5")
    if feedback.nps is not None:
        parts.append(f"NPS {feedback.nps}")
    return ", ".join(parts) or "negative comment"
