"""Supervisor operations on a whole customer: merge duplicates, export, erase."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Q
from django.dispatch import Signal
from django.utils import timezone

from crm.exceptions import DomainError, NotFound
from crm.identifiers import ERASED_KEY_PREFIX, erased_key
from crm.merges import merge_conflicts, merge_requires_reason
from crm.models import (
    OPEN_FOLLOW_UP,
    AccessAudit,
    AuditAction,
    Case,
    Customer,
    EmailStatus,
    Fact,
    Feedback,
    FollowUp,
    FollowUpKind,
    FollowUpStatus,
    Identity,
    Interaction,
    MergeRecord,
    Notification,
    OutboundEmail,
    Preference,
    Recognition,
    RecurringProblem,
    RecurringProblemStatus,
)
from crm.services import audit_record
from crm.webhooks import webhook_emit  # issue 16

ERASED = "(erased)"
# Sent once an erasure commits, with customer_ids and interaction_ids (strings): layers above
# crm that keep copies of customer data outside the database (the agent page's current card
# in the cache) drop them.
customer_erased = Signal()
# Related rows that simply change owner in a merge: (name in MergeRecord.moved, model).
MOVED_WHOLESALE = (
    ("interactions", Interaction),
    ("cases", Case),
    ("feedback", Feedback),
    ("follow_ups", FollowUp),
)
# Blank survivor fields a merge fills from the duplicate (nothing the survivor has is overwritten).
FILLABLE_FIELDS = ("display_name", "preferred_name", "language", "timezone")


def _ids(qs) -> list[str]:
    return [str(pk) for pk in qs.values_list("pk", flat=True)]


def _as_uuid(value, *, field: str) -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        raise NotFound(f"No customer with id '{value}'.", field=field) from None


def _resolve_current(model, survivor: Customer, duplicate: Customer) -> list[str]:
    """Before moving facts or preferences: per key, the newer current value wins.

    The loser stays as history (is_current=False), so nothing is lost and the
    one-current-per-key constraint holds after the move. On a tie the survivor's
    value stays current. Returns the ids demoted, so a reversal can restore them.
    """
    demoted = []
    survivor_current = {row.key: row for row in model.objects.filter(customer=survivor, is_current=True)}
    for row in model.objects.filter(customer=duplicate, is_current=True):
        other = survivor_current.get(row.key)
        if other is None:
            continue
        loser = row if row.recorded_at <= other.recorded_at else other
        model.objects.filter(pk=loser.pk).update(is_current=False)
        demoted.append(str(loser.pk))
    return demoted


def merge_check(survivor: Customer, duplicate: Customer) -> None:
    """Raise DomainError with a message a supervisor understands when this merge cannot happen."""
    if survivor.pk == duplicate.pk:
        raise DomainError("A customer cannot be merged into itself.", field="duplicate_id")
    if survivor.erased_at is not None:
        raise DomainError("The surviving customer has been erased; merge into a live customer.", field="id")
    if survivor.merged_into_id is not None:
        raise DomainError("The surviving customer was itself merged away; merge into its survivor.", field="id")
    if duplicate.erased_at is not None:
        raise DomainError("The duplicate has been erased; there is nothing to merge.", field="duplicate_id")
    if duplicate.merged_into_id is not None:
        raise DomainError("The duplicate was already merged into another customer.", field="duplicate_id")


def merge_preview(*, survivor: Customer, duplicate: Customer) -> dict[str, Any]:
    """What a merge would move, as counts and preference/fact conflicts (a handful of bounded queries)."""
    merge_check(survivor, duplicate)
    counts = {name: model.objects.filter(customer=duplicate).count() for name, model in MOVED_WHOLESALE}
    counts["recognitions"] = Recognition.objects.filter(feedback__customer=duplicate).count()
    counts["recurring_problems"] = RecurringProblem.objects.filter(customer=duplicate).count()
    counts["audit_rows"] = AccessAudit.objects.filter(customer=duplicate).count()
    counts["earlier_duplicates"] = Customer.objects.filter(merged_into=duplicate).count()
    survivor_ids = set(Identity.objects.filter(customer=survivor).values_list("kind", "normalized"))
    identities = [
        {
            "kind": i.kind,
            "normalized": i.normalized,
            "verified": i.verified_at is not None,
            "shared": (i.kind, i.normalized) in survivor_ids,
        }
        for i in Identity.objects.filter(customer=duplicate).order_by("kind", "normalized")
    ]
    conflicts = []
    for label, model in (("preference", Preference), ("fact", Fact)):
        mine = {r.key: r for r in model.objects.filter(customer=survivor, is_current=True)}
        for theirs in model.objects.filter(customer=duplicate, is_current=True).order_by("key"):
            ours = mine.get(theirs.key)
            if ours is None or ours.value == theirs.value:
                continue
            winner = theirs if theirs.recorded_at > ours.recorded_at else ours
            conflicts.append(
                {
                    "kind": label,
                    "key": theirs.key,
                    "survivor_value": ours.value,
                    "survivor_recorded_at": ours.recorded_at,
                    "duplicate_value": theirs.value,
                    "duplicate_recorded_at": theirs.recorded_at,
                    "winner": "duplicate" if winner is theirs else "survivor",
                }
            )
    counts["preferences"] = Preference.objects.filter(customer=duplicate).count()
    counts["facts"] = Fact.objects.filter(customer=duplicate).count()
    counts["identities"] = len(identities)
    # issue 13: differing identifiers, tier and consent, and whether the merge needs a reason.
    safety = merge_conflicts(survivor, duplicate)
    return {
        "counts": counts,
        "identities": identities,
        "conflicts": conflicts,
        "other_conflicts": safety["conflicts"],
        "blocked": safety["blocked"],
        "blocked_because": safety["blocked_because"],
    }


@transaction.atomic
def customer_merge(*, actor, survivor: Customer, duplicate_id, reason: str = "") -> MergeRecord:
    """Move everything the duplicate had to the survivor, in one transaction.

    Both rows are locked in primary-key order, so two merges touching the same
    pair cannot deadlock or interleave. The MergeRecord lists every moved row's
    id (and what was folded or demoted), ids only, so the merge can be reversed
    by hand and the record outlives an erasure without holding personal data.
    """
    duplicate_pk = _as_uuid(duplicate_id, field="duplicate_id")
    if duplicate_pk == survivor.pk:
        raise DomainError("A customer cannot be merged into itself.", field="duplicate_id")
    locked = {
        c.pk: c for c in Customer.objects.select_for_update().filter(pk__in=[survivor.pk, duplicate_pk]).order_by("pk")
    }
    if duplicate_pk not in locked:
        raise NotFound(f"No customer with id '{duplicate_id}'.", field="duplicate_id")
    if survivor.pk not in locked:
        raise NotFound(f"No customer with id '{survivor.pk}'.", field="id")
    survivor, duplicate = locked[survivor.pk], locked[duplicate_pk]
    merge_check(survivor, duplicate)
    # issue 13: two different verified accounts need a reason (crm.merges).
    reason = merge_requires_reason(survivor, duplicate, reason)

    moved: dict[str, Any] = {}
    # Identities: a value both hold is kept once, on the survivor (verified if either was).
    survivor_identities = {(i.kind, i.normalized): i for i in Identity.objects.filter(customer=survivor)}
    folded = []
    for identity in Identity.objects.filter(customer=duplicate):
        kept = survivor_identities.get((identity.kind, identity.normalized))
        if kept is None:
            continue
        if identity.verified_at and (kept.verified_at is None or identity.verified_at < kept.verified_at):
            Identity.objects.filter(pk=kept.pk).update(verified_at=identity.verified_at)
        folded.append(
            {
                "id": identity.pk,
                "into": kept.pk,
                "verified_at": identity.verified_at,
                "source": identity.source,
                "into_verified_at": kept.verified_at,  # issue 13: what an unmerge puts back
            }
        )
        identity.delete()
    moved["identities_folded"] = folded
    moved["identities"] = list(Identity.objects.filter(customer=duplicate).values_list("pk", flat=True))
    Identity.objects.filter(customer=duplicate).update(customer=survivor)

    moved["preferences_demoted"] = _resolve_current(Preference, survivor, duplicate)
    moved["facts_demoted"] = _resolve_current(Fact, survivor, duplicate)
    for name, model in (("preferences", Preference), ("facts", Fact)):
        qs = model.objects.filter(customer=duplicate)
        moved[name] = list(qs.values_list("pk", flat=True))
        qs.update(customer=survivor)
    for name, model in MOVED_WHOLESALE:
        qs = model.objects.filter(customer=duplicate)
        moved[name] = _ids(qs)
        qs.update(customer=survivor)
    # Recognitions belong to feedback, which just moved: listed so the record is complete.
    moved["recognitions"] = _ids(Recognition.objects.filter(feedback_id__in=moved["feedback"]))

    # Recurring problems: one open per customer and reason; the duplicate's open one folds in.
    survivor_open = {
        p.reason_id: p for p in RecurringProblem.objects.filter(customer=survivor, status=RecurringProblemStatus.OPEN)
    }
    moved["recurring_problems"] = []
    moved["recurring_problems_folded"] = []
    for problem in RecurringProblem.objects.filter(customer=duplicate).prefetch_related("interactions"):
        target = survivor_open.get(problem.reason_id) if problem.status == RecurringProblemStatus.OPEN else None
        if target is not None:
            target.interactions.add(*problem.interactions.all())
            target.contact_count = target.interactions.count()
            target.first_contact_at = min(target.first_contact_at, problem.first_contact_at)
            target.last_contact_at = max(target.last_contact_at, problem.last_contact_at)
            target.save(update_fields=["contact_count", "first_contact_at", "last_contact_at"])
            problem.status = RecurringProblemStatus.RESOLVED
            moved["recurring_problems_folded"].append({"id": problem.pk, "into": target.pk, "status_before": "open"})
        problem.customer = survivor
        problem.save(update_fields=["customer", "status"])
        moved["recurring_problems"].append(problem.pk)

    moved["audit"] = list(AccessAudit.objects.filter(customer=duplicate).values_list("pk", flat=True))
    AccessAudit.objects.filter(customer=duplicate).update(customer=survivor)
    # Customers merged into the duplicate earlier now point straight at the survivor,
    # so resolution and erasure see the whole family in one step.
    moved["earlier_duplicates"] = _ids(Customer.objects.filter(merged_into=duplicate))
    Customer.objects.filter(merged_into=duplicate).update(merged_into=survivor)

    filled = [name for name in FILLABLE_FIELDS if not getattr(survivor, name) and getattr(duplicate, name)]
    for name in filled:
        setattr(survivor, name, getattr(duplicate, name))
    survivor.save(update_fields=[*filled, "updated_at"])
    moved["survivor_fields_filled"] = filled

    duplicate.merged_into = survivor
    duplicate.save(update_fields=["merged_into", "updated_at"])
    record = MergeRecord.objects.create(
        survivor=survivor,
        duplicate=duplicate,
        merged_by=actor if actor and actor.is_authenticated else None,
        moved=_jsonable(moved),
        reason=reason,
    )
    counts = {name: len(value) for name, value in moved.items() if isinstance(value, list)}
    audit_record(
        actor=actor,
        action=AuditAction.MERGE,
        customer=survivor,
        detail={
            "duplicate": str(duplicate.pk),
            "merge_record": record.pk,
            "counts": counts,
            "reason_given": bool(reason),
        },
    )
    webhook_emit(
        "customer.merged",
        key=f"merge:{record.pk}",
        data={"survivor_id": str(survivor.pk), "duplicate_id": str(duplicate.pk), "merge_record_id": record.pk},
    )
    return record


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def customer_export(*, actor, customer: Customer) -> dict[str, Any]:
    """Everything held on the customer (and on duplicates merged into it), as plain data."""
    audit_record(actor=actor, action=AuditAction.EXPORT, customer=customer)
    family = [customer.pk, *_merged_family(customer.pk)]

    # Their feedback, also that given about one of their contacts before it was linked to them.
    feedback_ids = [
        *Feedback.objects.filter(customer=customer).values_list("pk", flat=True),
        *Feedback.objects.filter(interaction__customer=customer)
        .exclude(customer=customer)
        .values_list("pk", flat=True),
    ]

    def rows(qs, *fields):
        return [{f: _jsonable(getattr(obj, f)) for f in fields} for obj in qs]

    def person(c: Customer) -> dict[str, Any]:
        return {
            "id": str(c.pk),
            "display_name": c.display_name,
            "preferred_name": c.preferred_name,
            "language": c.language,
            "timezone": c.timezone,
            "tier": c.tier,
            "created_at": _jsonable(c.created_at),
            "erased_at": _jsonable(c.erased_at),
        }

    return {
        "customer": person(customer),
        "merged_duplicates": [person(c) for c in Customer.objects.filter(pk__in=family[1:]).order_by("created_at")],
        "identities": rows(
            customer.identities.order_by("kind", "created_at"),
            "kind",
            "value",
            "normalized",
            "verified_at",
            "source",
            "created_at",
        ),
        "preferences": rows(
            customer.preferences.order_by("key", "recorded_at"),
            "key",
            "value",
            "is_current",
            "recorded_at",
            "interaction_id",
        ),
        "facts": rows(
            customer.facts.order_by("key", "recorded_at"),
            "key",
            "value",
            "is_current",
            "channel",
            "recorded_at",
            "interaction_id",
        ),
        "interactions": rows(
            customer.interactions.select_related("reason").order_by("started_at"),
            "id",
            "channel",
            "direction",
            "started_at",
            "ended_at",
            "reason_id",
            "reason_text",
            "summary",
            "outcome",
            "identifiers",
            "verified",
            "ivr",
        ),
        "cases": rows(
            customer.cases.order_by("opened_at"), "id", "subject", "kind", "status", "opened_at", "resolved_at"
        ),
        "feedback": rows(
            Feedback.objects.filter(pk__in=feedback_ids).order_by("received_at"),
            "id",
            "rating",
            "nps",
            "text",
            "identifiers",
            "sentiment",
            "received_at",
        ),
        "recognitions": rows(
            Recognition.objects.filter(feedback_id__in=feedback_ids).order_by("created_at"),
            "id",
            "staff_id",
            "quote",
            "created_at",
        ),
        "follow_ups": rows(
            customer.follow_ups.order_by("created_at"), "id", "kind", "status", "note", "due_at", "completed_at"
        ),
        "recurring_problems": rows(
            customer.recurring_problems.order_by("first_contact_at"),
            "id",
            "reason_id",
            "status",
            "contact_count",
            "first_contact_at",
            "last_contact_at",
        ),
    }


def _merged_family(customer_id) -> list:
    """Ids of every customer merged into this one: merges keep chains one hop long, so one query finds them."""
    return list(Customer.objects.filter(merged_into_id=customer_id).values_list("pk", flat=True))


@transaction.atomic
def customer_erase(*, actor, customer: Customer) -> dict[str, int]:
    """Erase personal data irreversibly; keep the anonymous rows that reports count.

    Removed: identities, facts, preferences, names; blanked: what contacts,
    feedback, recognitions, cases and follow-ups say, and the identifiers the
    caller gave. Kept: the rows themselves with reason, outcome, channel, agent,
    ratings and timestamps, so repeat-contact, CSAT and recognition counts do not
    change. Customers merged into this one are erased too: their names and former
    identifiers are the same person's data. The audit row holds counts only.
    """
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    if customer.erased_at is not None:
        raise NotFound("This customer has already been erased.", field="id")
    group = [customer.pk, *_merged_family(customer.pk)]
    former = list(Identity.objects.filter(customer_id__in=group).values_list("kind", "normalized"))
    # Rows the admin's change log may name (object_repr, change_message), gathered before deletion.
    logged: dict[type, list[str]] = {
        model: _ids(model.objects.filter(customer_id__in=group)) for model in (Identity, Fact, Preference)
    }
    interaction_ids = _ids(Interaction.objects.filter(customer_id__in=group))
    counts = {
        "identities": Identity.objects.filter(customer_id__in=group).delete()[0],
        "facts": Fact.objects.filter(customer_id__in=group).delete()[0],
        "preferences": Preference.objects.filter(customer_id__in=group).delete()[0],
    }
    scrub = {"summary": "", "reason_text": "", "queue": "", "identifiers": {}, "ivr": {}, "verified": []}
    counts["interactions"] = Interaction.objects.filter(customer_id__in=group).update(**scrub)
    # Their feedback: linked to them, or to one of their contacts (a contact linked to
    # them after the feedback came in), or (below) never linked but carrying one of
    # their identifiers. Separate indexed queries: an OR across the join would scan.
    feedback_ids = _ids(Feedback.objects.filter(customer_id__in=group))
    feedback_ids += _ids(Feedback.objects.filter(interaction__customer_id__in=group).exclude(customer_id__in=group))
    if former:
        # Contacts and feedback never linked to a customer (an unknown caller) that carry
        # one of this person's identifiers are theirs too. A rare, deliberate scan.
        given = Q()
        for kind, normalized in former:
            given |= Q(**{f"identifiers__{kind}": normalized})
        unlinked_contacts = Interaction.objects.filter(given, customer__isnull=True)
        interaction_ids += _ids(unlinked_contacts)
        counts["unlinked_interactions"] = unlinked_contacts.update(**scrub)
        unlinked = _ids(Feedback.objects.filter(given, customer__isnull=True))
        counts["unlinked_feedback"] = len(unlinked)
        feedback_ids = list(dict.fromkeys([*feedback_ids, *unlinked]))
    counts["feedback"] = Feedback.objects.filter(pk__in=feedback_ids).update(text="", identifiers={}, staff_named=[])
    counts["idempotency_keys"] = _idempotency_keys_hash(interaction_ids)
    recognition_ids = _ids(Recognition.objects.filter(feedback_id__in=feedback_ids))
    counts["recognitions"] = Recognition.objects.filter(pk__in=recognition_ids).update(quote="")
    feedback_cases = Feedback.objects.filter(pk__in=feedback_ids, case__isnull=False).values_list("case_id", flat=True)
    counts["cases"] = Case.objects.filter(Q(customer_id__in=group) | Q(pk__in=list(feedback_cases))).update(
        subject=ERASED
    )
    follow_up_ids = _ids(FollowUp.objects.filter(Q(customer_id__in=group) | Q(feedback_id__in=feedback_ids)))
    counts["follow_ups"] = FollowUp.objects.filter(pk__in=follow_up_ids).update(note="")
    # Staff notifications about this person (their feedback, recognitions or follow-ups,
    # by foreign key) may quote them; keep the row, drop the words.
    if feedback_ids or recognition_ids or follow_up_ids:
        about = Q(feedback_id__in=feedback_ids) | Q(recognition_id__in=recognition_ids)
        about |= Q(follow_up_id__in=follow_up_ids)
        counts["notifications"] = Notification.objects.filter(about).update(subject=ERASED, body="")
        # issue 11: their e-mails in the outbox (the thank-you holds their address and name, a
        # notification quotes them): keep the row, drop address and words; unsent ones are no longer owed.
        emails = OutboundEmail.objects.filter(
            Q(follow_up_id__in=follow_up_ids) | Q(notification__in=Notification.objects.filter(about))
        )
        emails.filter(status=EmailStatus.PENDING).update(status=EmailStatus.CANCELLED, claimed_until=None)
        counts["emails"] = emails.update(to="", subject=ERASED, body="")
        FollowUp.objects.filter(
            pk__in=follow_up_ids, kind=FollowUpKind.THANK_YOU_EMAIL, status__in=OPEN_FOLLOW_UP
        ).update(status=FollowUpStatus.CANCELLED)
    counts["customers"] = Customer.objects.filter(pk__in=group).update(
        display_name="",
        preferred_name="",
        timezone="",
        language="",
        erased_at=timezone.now(),
        external_ref=None,  # issue 15: the source system's id is personal data too; a re-import starts afresh
        import_digest=None,  # a hash of the row last imported: of personal data, so it goes too
    )
    logged.update(
        {
            Customer: [str(pk) for pk in group],
            Interaction: interaction_ids,
            Feedback: feedback_ids,
            Recognition: recognition_ids,
            Case: _ids(Case.objects.filter(Q(customer_id__in=group) | Q(pk__in=list(feedback_cases)))),
            FollowUp: follow_up_ids,
        }
    )
    counts["admin_log"] = _admin_log_scrub(logged)
    audit_record(actor=actor, action=AuditAction.ERASE, customer=customer, detail={"counts": counts})
    webhook_emit("customer.erased", key=f"customer:{customer.pk}", data={"customer_id": str(customer.pk)})
    erased_ids = [str(pk) for pk in group]
    transaction.on_commit(
        lambda: customer_erased.send(sender=Customer, customer_ids=erased_ids, interaction_ids=interaction_ids),
        robust=True,
    )
    return counts


def _idempotency_keys_hash(interaction_ids: list[str]) -> int:
    """call_id and external_id become erased_key(...): a repeat of the call is still recognized
    (and refused), but the key no longer names the call or the other system's record."""
    changed = 0
    rows = Interaction.objects.filter(pk__in=interaction_ids).filter(
        Q(call_id__isnull=False) | Q(external_id__isnull=False)
    )
    for pk, call_id, external_id in rows.values_list("pk", "call_id", "external_id"):
        keys = {
            name: erased_key(value)
            for name, value in (("call_id", call_id), ("external_id", external_id))
            if value and not value.startswith(ERASED_KEY_PREFIX)
        }
        if keys:
            changed += Interaction.objects.filter(pk=pk).update(**keys)
    return changed


def _admin_log_scrub(rows: dict[type, list[str]]) -> int:
    """The admin's change log names objects by their str() and lists changed inlines by name:
    keep who changed what when, drop the words."""
    condition = Q()
    for model, ids in rows.items():
        if ids:
            content_type = ContentType.objects.get_for_model(model)
            condition |= Q(content_type=content_type, object_id__in=[str(pk) for pk in ids])
    if not condition:
        return 0
    return LogEntry.objects.filter(condition).update(object_repr=ERASED, change_message="")


def customer_related_counts(customer: Customer) -> dict[str, int]:
    """Row counts of what is attached to a customer, one indexed count per table."""
    tables = (*MOVED_WHOLESALE, ("identities", Identity), ("preferences", Preference), ("facts", Fact))
    return {name: model.objects.filter(customer=customer).count() for name, model in tables}
