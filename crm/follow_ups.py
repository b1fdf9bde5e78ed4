"""Follow-ups: the customer's thank-you, escalation of overdue ones, and supervisors working them.

The automatic thank-you e-mail goes only to a live linked customer, only to an
address on file for them, and only with consent: a current preference
`contact_consent` or `marketing_opt_in` set to a true value, or "you may e-mail me"
(`contact_consent`) ticked together with an address that is on file. Without
consent, or when the customer prefers phone or SMS, the thank-you becomes a callback
task for an agent.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from crm.emails import email_queue, emails_send_where
from crm.exceptions import DomainError, NotFound
from crm.models import (
    OPEN_FOLLOW_UP,
    TRUTHY,
    AuditAction,
    Customer,
    Feedback,
    FollowUp,
    FollowUpKind,
    FollowUpStatus,
    Identity,
    IdentityKind,
    Preference,
)
from crm.notifications import notification_create, notifications_deliver
from crm.services import audit_record, customer_resolve, row_get_or_create
from crm.staff import admins, staff_users, supervisor_of, supervisors
from crm.webhooks import webhook_emit  # issue 16

logger = logging.getLogger(__name__)
User = get_user_model()

# A thank-you callback is a courtesy: it should happen within two days.
THANK_YOU_CALLBACK_HOURS = 48
# Periodic work in bounded batches so one run never holds a worker for long.
ESCALATION_BATCH = 200
# The automatic thank-you is due an hour after the feedback: it is sent at once, and
# the escalation sweep must not report it overdue while the sending is retried.
THANK_YOU_EMAIL_GRACE = dt.timedelta(hours=1)
THANK_YOU_SUBJECT = "Thank you for your feedback"


# --- thank-you ------------------------------------------------------------------------------------


def _emails_on_file(customer_id) -> list[str]:
    """The customer's addresses, verified ones first."""
    return list(
        Identity.objects.filter(customer_id=customer_id, kind=IdentityKind.EMAIL)
        .order_by(F("verified_at").desc(nulls_last=True), "created_at")
        .values_list("normalized", flat=True)[:20]
    )


def _contactable(feedback: Feedback) -> Customer | None:
    """The live customer the feedback is linked to, or None (unlinked, or erased).

    The workflow has loaded the customer with the feedback and followed a merge already: a
    live one needs no second look.
    """
    if feedback.customer_id is None:
        return None
    if feedback.customer is not None and feedback.customer.is_live:
        return feedback.customer
    return customer_resolve(feedback.customer_id)


def _customer_email(customer: Customer, typed: str | None, on_file: list[str]) -> str | None:
    """Where to thank the customer: only ever an address on file for the linked customer.

    The form is public: anyone can type a stranger's phone number and their own
    address. A typed address is used only when it is one of the customer's; an
    address not on file gets nothing, so the service neither tells a stranger
    whose number it was nor mails whoever it is told to.
    """
    if typed and typed in on_file:
        return typed
    return on_file[0] if on_file else None


def _preferences(customer_id) -> dict[str, str]:
    if customer_id is None:
        return {}
    return dict(Preference.objects.filter(customer_id=customer_id, is_current=True).values_list("key", "value")[:100])


def _email_consent(feedback: Feedback, prefs: dict[str, str], on_file: list[str]) -> bool:
    """Consent on file, or ticked on this feedback together with an address that is on file.

    A ticked box next to someone else's address (or none) is not the customer's consent.
    """
    if any(str(prefs.get(key, "")).lower() in TRUTHY for key in ("contact_consent", "marketing_opt_in")):
        return True
    typed = feedback.identifiers.get(IdentityKind.EMAIL)
    return bool(feedback.contact_consent and typed and typed in on_file)


def thank_you_arrange(feedback: Feedback, *, new: bool = False) -> FollowUp | None:
    """A thank-you on the customer's channel: e-mail with consent, else a callback task (unless do-not-call).

    Only for a live linked customer, and only to what is on file for them. `new`: the
    workflow's first run, so no thank-you exists yet (crm.services.row_get_or_create).
    """
    customer = _contactable(feedback)
    if customer is None:
        return None
    prefs = _preferences(customer.pk)
    on_file = _emails_on_file(customer.pk)
    email = _customer_email(customer, feedback.identifiers.get(IdentityKind.EMAIL), on_file)
    prefers_voice = prefs.get("preferred_channel") in ("phone", "sms")
    now = timezone.now()
    if email and not prefers_voice and _email_consent(feedback, prefs, on_file):
        follow_up, _ = row_get_or_create(
            FollowUp,
            new=new,
            feedback=feedback,
            kind=FollowUpKind.THANK_YOU_EMAIL,
            defaults={
                "customer": customer,
                "channel": "email",
                "due_at": now + THANK_YOU_EMAIL_GRACE,
                "note": "Automatic thank-you",
            },
        )
        name = customer.preferred_name or customer.display_name
        # Queued with the follow-up (same transaction); sent after commit, done once sent.
        email_queue(
            key=f"thank-you:{follow_up.pk}",
            to=email,
            subject=THANK_YOU_SUBJECT,
            body=(
                f"Dear {name or 'customer'},\n\nThank you for taking the time to tell us about your experience. "
                "We have passed your kind words on to the team.\n"
            ),
            follow_up=follow_up,
            new=new,
        )
        return follow_up
    if str(prefs.get("do_not_call", "")).lower() in TRUTHY:
        return None
    interaction = feedback.interaction
    row_get_or_create(
        FollowUp,
        new=new,
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
    """Send the automatic thank-you now (its outbox row); the follow-up is done once the e-mail went.

    A failed send is left to the e-mail sweep, which retries it; False then.
    """
    return emails_send_where(follow_up_id=follow_up_id) > 0


# --- escalation ---------------------------------------------------------------------------------


def next_level_for(owner) -> list:
    """Who hears about an overdue follow-up: the owner's own supervisor, else the administrators."""
    if owner is not None:
        supervisor = supervisor_of(owner)
        if supervisor is not None:
            return [supervisor]
    return admins() or supervisors()


def follow_ups_escalate(*, now: dt.datetime | None = None, batch: int = ESCALATION_BATCH) -> tuple[int, bool]:
    """Escalate open follow-ups past their deadline; returns (escalated, has_more).

    Each follow-up is claimed with a conditional update (status still open, still
    overdue), so however often and however concurrently this runs, each is
    escalated and notified once. Each notification's e-mail is in the outbox with
    it, so an SMTP outage delays escalation mails but does not lose them.
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
            webhook_emit(
                "follow_up.overdue",
                key=f"follow_up:{follow_up.pk}:{follow_up.escalation_level}",
                data={
                    "follow_up_id": follow_up.pk,
                    "kind": follow_up.kind,
                    "case_id": follow_up.case_id,
                    "customer_id": str(follow_up.customer_id) if follow_up.customer_id else None,
                    "escalation_level": follow_up.escalation_level,
                    "due_at": follow_up.due_at.isoformat(),
                },
                at=now,
            )
            for recipient in next_level_for(follow_up.owner):
                notification_ids.append(
                    notification_create(
                        recipient=recipient,
                        kind="escalation",
                        key=f"{follow_up.pk}:{follow_up.escalation_level}",
                        follow_up=follow_up,
                        subject=f"Overdue follow-up escalated ({follow_up.get_kind_display()})",
                        body=(
                            f"Follow-up {follow_up.pk} ({follow_up.kind}) was due {follow_up.due_at:%Y-%m-%d %H:%M} "
                            f"UTC and is not done; owner: {follow_up.owner.username if follow_up.owner else 'none'}."
                        ),
                    ).pk
                )
    # A mail that fails here is in the outbox: the e-mail sweep (crm.emails) sends it later.
    notifications_deliver(notification_ids)
    if escalated:
        logger.info("escalated %d overdue follow-ups", escalated)
    return escalated, len(overdue) > batch


# --- supervisors working follow-ups ------------------------------------------------------------------


@transaction.atomic
def follow_ups_complete(*, actor, ids: Iterable, statuses: Iterable[str] = OPEN_FOLLOW_UP) -> int:
    """Mark follow-ups done, each audited against its customer; the one completion for the admin and the API.

    Only those still in `statuses` (open or escalated, by default) are touched, by a
    conditional update, so clicking twice does nothing the second time.
    """
    ids, statuses = list(ids), list(statuses)
    now = timezone.now()
    targets = list(FollowUp.objects.filter(pk__in=ids, status__in=statuses).values_list("pk", "customer_id"))
    done = FollowUp.objects.filter(pk__in=[pk for pk, _ in targets], status__in=statuses).update(
        status=FollowUpStatus.DONE, completed_at=now
    )
    for pk, customer_id in targets:
        if customer_id:
            audit_record(
                actor=actor, action=AuditAction.UPDATE, customer_id=customer_id, detail={"follow_up_done": str(pk)}
            )
    return done


def follow_up_complete(*, actor, follow_up_id, statuses: Iterable[str] = OPEN_FOLLOW_UP) -> bool:
    """Mark one follow-up done (audited); False when it was not in `statuses` any more."""
    return follow_ups_complete(actor=actor, ids=[follow_up_id], statuses=statuses) == 1


@transaction.atomic
def follow_up_update(
    *,
    actor,
    follow_up_id,
    status: str | None = None,
    owner: str | None = None,
    due_at: dt.datetime | None = None,
    note: str | None = None,
) -> FollowUp:
    """A supervisor works a follow-up: done, cancelled, reopened with a new deadline, reassigned.

    Done goes through follow_up_complete (audited), from any other status.
    """
    try:
        follow_up = FollowUp.objects.select_for_update().get(pk=follow_up_id)
    except (FollowUp.DoesNotExist, DjangoValidationError, ValueError):
        raise NotFound(f"No follow-up with id '{follow_up_id}'.", field="id") from None
    if follow_up.customer_id is not None and customer_resolve(follow_up.customer_id) is None:
        # issue 10: nothing new is written about an erased customer (a note would be personal data).
        raise NotFound(f"No follow-up with id '{follow_up_id}'.", field="id")
    changed: list[str] = []
    complete = status == FollowUpStatus.DONE and status != follow_up.status
    if status is not None and status != follow_up.status and not complete:
        follow_up.status = status
        follow_up.completed_at = None
        changed += ["status", "completed_at"]
    if owner is not None:
        try:
            follow_up.owner = staff_users().filter(username=owner).distinct().get()
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
    if complete:
        not_done = [s for s in FollowUpStatus.values if s != FollowUpStatus.DONE]
        follow_up_complete(actor=actor, follow_up_id=follow_up.pk, statuses=not_done)
        follow_up.refresh_from_db(fields=["status", "completed_at"])
    return follow_up
