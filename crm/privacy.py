"""Supervisor operations on a whole customer: merge duplicates, export, erase."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from crm.exceptions import DomainError, NotFound
from crm.models import (
    AccessAudit,
    AuditAction,
    Case,
    Customer,
    Fact,
    Feedback,
    FollowUp,
    Identity,
    Interaction,
    MergeRecord,
    Preference,
    Recognition,
    RecurringProblem,
    RecurringProblemStatus,
)
from crm.services import audit_record

ERASED = "(erased)"


def _ids(qs) -> list[str]:
    return [str(pk) for pk in qs.values_list("pk", flat=True)]


def _resolve_current(model, survivor: Customer, duplicate: Customer) -> list[str]:
    """Before moving facts or preferences: per key, the newer current value wins.

    The loser stays as history (is_current=False), so nothing is lost and the
    one-current-per-key constraint holds after the move.
    """
    demoted = []
    survivor_current = {row.key: row for row in model.objects.filter(customer=survivor, is_current=True)}
    for row in model.objects.filter(customer=duplicate, is_current=True):
        other = survivor_current.get(row.key)
        if other is None:
            continue
        loser = row if row.recorded_at < other.recorded_at else other
        loser.is_current = False
        loser.save(update_fields=["is_current"])
        demoted.append(str(loser.pk))
    return demoted


@transaction.atomic
def customer_merge(*, actor, survivor: Customer, duplicate_id) -> MergeRecord:
    """Move everything the duplicate had to the survivor, in one transaction.

    Both rows are locked in primary-key order, so two merges touching the same
    pair cannot deadlock or interleave.
    """
    if str(duplicate_id) == str(survivor.pk):
        raise DomainError("A customer cannot be merged into itself.", field="duplicate_id")
    locked = {
        c.pk: c for c in Customer.objects.select_for_update().filter(pk__in=[survivor.pk, duplicate_id]).order_by("pk")
    }
    if duplicate_id not in locked and str(duplicate_id) not in {str(k) for k in locked}:
        raise NotFound(f"No customer with id '{duplicate_id}'.", field="duplicate_id")
    survivor = locked[survivor.pk]
    duplicate = next(c for pk, c in locked.items() if pk != survivor.pk)
    if not survivor.is_live:
        raise DomainError("The surviving customer has been erased or merged away.", field="id")
    if duplicate.erased_at is not None:
        raise DomainError("The duplicate has been erased; there is nothing to merge.", field="duplicate_id")
    if duplicate.merged_into_id is not None:
        raise DomainError("The duplicate was already merged into another customer.", field="duplicate_id")

    moved: dict[str, Any] = {}
    # Identities: a value both hold is kept once, on the survivor.
    shared = Identity.objects.filter(
        customer=duplicate,
        normalized__in=Identity.objects.filter(customer=survivor).values("normalized"),
    )
    dropped = []
    survivor_keys = set(Identity.objects.filter(customer=survivor).values_list("kind", "normalized"))
    for identity in shared:
        if (identity.kind, identity.normalized) in survivor_keys:
            dropped.append({"kind": identity.kind, "id": identity.pk})
            identity.delete()
    moved["identities_dropped_as_duplicate"] = dropped
    moved["identities"] = _ids(Identity.objects.filter(customer=duplicate))
    Identity.objects.filter(customer=duplicate).update(customer=survivor)

    moved["preferences_demoted"] = _resolve_current(Preference, survivor, duplicate)
    moved["facts_demoted"] = _resolve_current(Fact, survivor, duplicate)
    for name, model in (
        ("preferences", Preference),
        ("facts", Fact),
        ("interactions", Interaction),
        ("cases", Case),
        ("feedback", Feedback),
        ("follow_ups", FollowUp),
    ):
        qs = model.objects.filter(customer=duplicate)
        moved[name] = _ids(qs)
        qs.update(customer=survivor)

    # Recurring problems: one open per customer and reason; fold the duplicate's in.
    survivor_open = {
        p.reason_id: p for p in RecurringProblem.objects.filter(customer=survivor, status=RecurringProblemStatus.OPEN)
    }
    moved["recurring_problems"] = []
    for problem in RecurringProblem.objects.filter(customer=duplicate):
        target = survivor_open.get(problem.reason_id) if problem.status == RecurringProblemStatus.OPEN else None
        if target is not None:
            target.interactions.add(*problem.interactions.all())
            target.contact_count = target.interactions.count()
            target.first_contact_at = min(target.first_contact_at, problem.first_contact_at)
            target.last_contact_at = max(target.last_contact_at, problem.last_contact_at)
            target.save(update_fields=["contact_count", "first_contact_at", "last_contact_at"])
            problem.status = RecurringProblemStatus.RESOLVED
            problem.save(update_fields=["status"])
        problem.customer = survivor
        problem.save(update_fields=["customer"])
        moved["recurring_problems"].append(str(problem.pk))

    moved["audit"] = AccessAudit.objects.filter(customer=duplicate).count()
    AccessAudit.objects.filter(customer=duplicate).update(customer=survivor)

    duplicate.merged_into = survivor
    duplicate.save(update_fields=["merged_into", "updated_at"])
    record = MergeRecord.objects.create(survivor=survivor, duplicate=duplicate, merged_by=actor, moved=moved)
    audit_record(
        actor=actor,
        action=AuditAction.MERGE,
        customer=survivor,
        detail={"duplicate": str(duplicate.pk), "merge_record": record.pk},
    )
    return record


def customer_export(*, actor, customer: Customer) -> dict[str, Any]:
    """Everything held on the customer, as plain data."""
    audit_record(actor=actor, action=AuditAction.EXPORT, customer=customer)

    def rows(qs, *fields):
        return [{f: _plain(getattr(obj, f)) for f in fields} for obj in qs]

    return {
        "customer": {
            "id": str(customer.pk),
            "display_name": customer.display_name,
            "preferred_name": customer.preferred_name,
            "language": customer.language,
            "timezone": customer.timezone,
            "tier": customer.tier,
            "created_at": customer.created_at,
            "erased_at": customer.erased_at,
        },
        "identities": rows(
            customer.identities.all(), "kind", "value", "normalized", "verified_at", "source", "created_at"
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
            customer.interactions.order_by("started_at"),
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
            "ivr",
        ),
        "cases": rows(
            customer.cases.order_by("opened_at"), "id", "subject", "kind", "status", "opened_at", "resolved_at"
        ),
        "feedback": rows(
            customer.feedback.order_by("received_at"), "id", "rating", "nps", "text", "sentiment", "received_at"
        ),
        "follow_ups": rows(customer.follow_ups.order_by("created_at"), "id", "kind", "status", "note", "due_at"),
    }


def _plain(value):
    if hasattr(value, "hex") and not isinstance(value, (bytes, str)):
        return str(value)
    return value


@transaction.atomic
def customer_erase(*, actor, customer: Customer) -> None:
    """Erase personal data irreversibly; keep the anonymous rows that reports count.

    Customers merged into this one are erased too: their names and former
    identifiers are the same person's data.
    """
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    if customer.erased_at is not None:
        raise NotFound("This customer has already been erased.", field="id")
    group = [customer.pk, *Customer.objects.filter(merged_into=customer).values_list("pk", flat=True)]
    counts = {
        "identities": Identity.objects.filter(customer_id__in=group).delete()[0],
        "facts": Fact.objects.filter(customer_id__in=group).delete()[0],
        "preferences": Preference.objects.filter(customer_id__in=group).delete()[0],
    }
    counts["interactions"] = Interaction.objects.filter(customer_id__in=group).update(
        summary="", reason_text="", identifiers={}, ivr={}, verified=[]
    )
    counts["feedback"] = Feedback.objects.filter(customer_id__in=group).update(text="", identifiers={})
    Recognition.objects.filter(feedback__customer_id__in=group).update(quote="")
    Case.objects.filter(customer_id__in=group).update(subject=ERASED)
    FollowUp.objects.filter(customer_id__in=group).update(note="")
    Customer.objects.filter(pk__in=group).update(
        display_name="", preferred_name="", timezone="", language="", erased_at=timezone.now()
    )
    audit_record(actor=actor, action=AuditAction.ERASE, customer=customer, detail={"counts": counts})
