"""Safe merges (issue 13): conflicts a supervisor must see, "not a duplicate", and undoing a merge.

crm.privacy.customer_merge does the merge; this module decides what the preview
warns about, remembers pairs judged to be different people, and reverses a
merge from its MergeRecord.

The unmerge rule: exactly the rows the merge record lists go back to the
duplicate (contacts, cases, feedback, follow-ups, identities, preferences, facts,
recurring problems, audit rows, customers merged into it earlier); identities
folded into one the survivor already had are re-created on the duplicate.
Whatever was recorded on the survivor after the merge stays with the survivor,
even when it concerns a contact that moves back: that is what the agent saw and
did while the two were one customer. Per preference/fact key, each customer
ends with exactly one current value: its newest row for that key.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction
from django.db.models import Max, Min
from django.utils import timezone

from crm.exceptions import Conflict, DomainError, NotFound
from crm.models import (
    AccessAudit,
    AuditAction,
    Case,
    Customer,
    DuplicateDismissal,
    Fact,
    Feedback,
    FollowUp,
    Identity,
    IdentityKind,
    Interaction,
    MergeRecord,
    Preference,
    RecurringProblem,
    RecurringProblemStatus,
)
from crm.services import audit_record

# Rows a merge moves wholesale, by their name in MergeRecord.moved: crm.privacy.MOVED_WHOLESALE
# (which imports this module; a test keeps the two lists equal).
MOVED_BACK = (("interactions", Interaction), ("cases", Case), ("feedback", Feedback), ("follow_ups", FollowUp))
# Preferences that say whether and how we may contact the customer: a merge must not guess them.
CONSENT_KEYS = ("contact_consent", "marketing_opt_in", "do_not_call", "preferred_channel")


# --- what the preview warns about -----------------------------------------------------------


def merge_conflicts(survivor: Customer, duplicate: Customer) -> dict[str, Any]:
    """Every differing identifier, the tier and consent; `blocked` when both hold different verified accounts.

    A merge that is blocked goes ahead only with a reason the supervisor types.
    """
    mine = list(Identity.objects.filter(customer=survivor).order_by("kind", "normalized"))
    theirs = list(Identity.objects.filter(customer=duplicate).order_by("kind", "normalized"))
    conflicts: list[dict[str, Any]] = []
    for kind in IdentityKind.values:
        ours = {i.normalized: i for i in mine if i.kind == kind}
        other = {i.normalized: i for i in theirs if i.kind == kind}
        if ours and other and set(ours) != set(other):
            conflicts.append(
                {
                    "kind": "identifier",
                    "key": kind,
                    "survivor_value": ", ".join(_shown(i) for i in ours.values()),
                    "duplicate_value": ", ".join(_shown(i) for i in other.values()),
                    "after": "both kept on the survivor",
                }
            )
    if survivor.tier != duplicate.tier:
        conflicts.append(
            {
                "kind": "tier",
                "key": "tier",
                "survivor_value": survivor.get_tier_display(),
                "duplicate_value": duplicate.get_tier_display(),
                "after": survivor.get_tier_display(),
            }
        )
    our_prefs = _current(Preference, survivor, CONSENT_KEYS)
    their_prefs = _current(Preference, duplicate, CONSENT_KEYS)
    for key in CONSENT_KEYS:
        a, b = our_prefs.get(key), their_prefs.get(key)
        if (a is None and b is None) or (a is not None and b is not None and a.value == b.value):
            continue
        newer = b if a is None or (b is not None and b.recorded_at > a.recorded_at) else a
        conflicts.append(
            {
                "kind": "consent",
                "key": key,
                "survivor_value": a.value if a is not None else "(not given)",
                "duplicate_value": b.value if b is not None else "(not given)",
                "after": newer.value if newer is not None else "",
            }
        )
    ours_verified = {i.normalized for i in mine if i.kind == IdentityKind.ACCOUNT and i.verified_at}
    theirs_verified = {i.normalized for i in theirs if i.kind == IdentityKind.ACCOUNT and i.verified_at}
    blocked = bool(ours_verified and theirs_verified and not ours_verified & theirs_verified)
    return {
        "conflicts": conflicts,
        "blocked": blocked,
        "blocked_because": (
            "Both customers hold a different verified account: they are probably two people." if blocked else ""
        ),
    }


def _shown(identity: Identity) -> str:
    return identity.normalized + (" ✓" if identity.verified_at else "")


def _current(model, customer: Customer, keys) -> dict[str, Any]:
    return {r.key: r for r in model.objects.filter(customer=customer, is_current=True, key__in=keys)}


def merge_requires_reason(survivor: Customer, duplicate: Customer, reason: str) -> str:
    """The reason to store (stripped); DomainError when the merge is blocked and none was given."""
    reason = (reason or "").strip()
    if not reason and merge_conflicts(survivor, duplicate)["blocked"]:
        raise Conflict(
            "These customers hold different verified accounts. Give a reason to merge them anyway.", field="reason"
        )
    return reason[:500]


# --- "not a duplicate" ---------------------------------------------------------------------------


def _pair(a, b) -> tuple[uuid.UUID, uuid.UUID]:
    a, b = uuid.UUID(str(a)), uuid.UUID(str(b))
    if a == b:
        raise DomainError("A customer is always the same person as itself.", field="duplicate_id")
    return (a, b) if a < b else (b, a)


@transaction.atomic
def duplicate_dismiss(*, actor, customer_id, other_id, reason: str = "") -> DuplicateDismissal:
    """Remember that two customers are different people; the duplicates list stops offering them. Audited."""
    low, high = _pair(customer_id, other_id)
    found = Customer.objects.filter(pk__in=[low, high]).count()
    if found != 2:
        raise NotFound("No such pair of customers.", field="duplicate_id")
    dismissal, created = DuplicateDismissal.objects.get_or_create(
        customer_low_id=low,
        customer_high_id=high,
        defaults={"dismissed_by": actor if actor and actor.is_authenticated else None, "reason": reason[:200]},
    )
    if created:
        for customer_id_, other in ((low, high), (high, low)):
            audit_record(
                actor=actor,
                action=AuditAction.DISMISS,
                customer_id=customer_id_,
                detail={"not_a_duplicate_of": str(other), "dismissal": dismissal.pk},
            )
    return dismissal


@transaction.atomic
def duplicate_dismissal_undo(*, actor, dismissal_id) -> bool:
    """Forget a "not a duplicate" judgement; the pair is offered again. Audited; False when already undone."""
    dismissal = DuplicateDismissal.objects.select_for_update().filter(pk=dismissal_id).first()
    if dismissal is None:
        return False
    for customer_id_, other in (
        (dismissal.customer_low_id, dismissal.customer_high_id),
        (dismissal.customer_high_id, dismissal.customer_low_id),
    ):
        audit_record(
            actor=actor,
            action=AuditAction.DISMISS,
            customer_id=customer_id_,
            detail={"undone": True, "not_a_duplicate_of": str(other), "dismissal": dismissal.pk},
        )
    dismissal.delete()
    return True


def dismissed_pairs() -> set[tuple[uuid.UUID, uuid.UUID]]:
    return set(DuplicateDismissal.objects.values_list("customer_low_id", "customer_high_id"))


# --- unmerge ---------------------------------------------------------------------------------------


@transaction.atomic
def customer_unmerge(*, actor, survivor_id, merge_id) -> MergeRecord:
    """Undo one merge from its record (the module docstring states the rule). Audited on both customers.

    Refused (409) when the record is already undone, the survivor was merged or
    erased since, or the duplicate was erased.
    """
    try:
        merge_pk = int(merge_id)
    except (TypeError, ValueError):
        raise NotFound(f"No merge with id '{merge_id}'.", field="merge_id") from None
    record = MergeRecord.objects.select_for_update().filter(pk=merge_pk, survivor_id=survivor_id).first()
    if record is None:
        raise NotFound(f"No merge with id '{merge_id}' into this customer.", field="merge_id")
    locked = {
        c.pk: c
        for c in Customer.objects.select_for_update()
        .filter(pk__in=[record.survivor_id, record.duplicate_id])
        .order_by("pk")
    }
    survivor, duplicate = locked[record.survivor_id], locked[record.duplicate_id]
    if record.undone_at is not None:
        raise Conflict("This merge was already undone.", field="merge_id")
    if survivor.merged_into_id is not None or survivor.erased_at is not None:
        raise Conflict("The survivor was merged or erased since; undo that first.", field="merge_id")
    if duplicate.erased_at is not None or duplicate.merged_into_id != survivor.pk:
        raise Conflict("The duplicate is no longer merged into this customer.", field="merge_id")

    moved = record.moved
    back: dict[str, int] = {}
    survivor_ids = [survivor.pk]

    # Identities: moved ones back; folded ones re-created as they were (the survivor's verification restored).
    back["identities"] = Identity.objects.filter(pk__in=moved.get("identities", []), customer=survivor).update(
        customer=duplicate
    )
    recreated = 0
    for folded in moved.get("identities_folded", []):
        kept = Identity.objects.filter(pk=folded["into"]).first()
        if kept is None or Identity.objects.filter(pk=folded["id"]).exists():
            continue
        Identity.objects.create(
            pk=folded["id"],
            customer=duplicate,
            kind=kept.kind,
            value=kept.value,
            normalized=kept.normalized,
            verified_at=folded.get("verified_at"),
            source=folded.get("source") or "agent",
        )
        if "into_verified_at" in folded:
            Identity.objects.filter(pk=kept.pk).update(verified_at=folded["into_verified_at"])
        recreated += 1
    back["identities_recreated"] = recreated

    for name, model in (("preferences", Preference), ("facts", Fact)):
        ids = moved.get(name, [])
        back[name] = model.objects.filter(pk__in=ids, customer__in=survivor_ids).update(customer=duplicate)
        demoted = moved.get(f"{name}_demoted", [])
        keys = set(model.objects.filter(pk__in=[*ids, *demoted]).values_list("key", flat=True))
        for customer in (survivor, duplicate):
            _newest_current(model, customer, keys)

    for name, owned in MOVED_BACK:
        back[name] = owned.objects.filter(pk__in=moved.get(name, []), customer=survivor).update(customer=duplicate)

    folded_into = {str(f["id"]): f["into"] for f in moved.get("recurring_problems_folded", [])}
    problems = 0
    for problem in RecurringProblem.objects.filter(pk__in=moved.get("recurring_problems", []), customer=survivor):
        target_id = folded_into.get(str(problem.pk))
        if target_id is not None:
            target = RecurringProblem.objects.filter(pk=target_id).first()
            if target is not None:
                target.interactions.remove(*problem.interactions.all())
                _recount(target)
            problem.status = RecurringProblemStatus.OPEN
        problem.customer = duplicate
        problem.save(update_fields=["customer", "status"])
        problems += 1
    back["recurring_problems"] = problems

    back["audit"] = AccessAudit.objects.filter(pk__in=moved.get("audit", []), customer=survivor).update(
        customer=duplicate
    )
    back["earlier_duplicates"] = Customer.objects.filter(
        pk__in=moved.get("earlier_duplicates", []), merged_into=survivor
    ).update(merged_into=duplicate)

    # Fields the merge filled on the survivor are emptied again, unless someone changed them since.
    emptied = [
        name for name in moved.get("survivor_fields_filled", []) if getattr(survivor, name) == getattr(duplicate, name)
    ]
    for name in emptied:
        setattr(survivor, name, "")
    survivor.save(update_fields=[*emptied, "updated_at"])
    duplicate.merged_into = None
    duplicate.save(update_fields=["merged_into", "updated_at"])

    record.undone_at = timezone.now()
    record.undone_by = actor if actor and actor.is_authenticated else None
    record.save(update_fields=["undone_at", "undone_by"])
    for customer, other in ((survivor, duplicate), (duplicate, survivor)):
        audit_record(
            actor=actor,
            action=AuditAction.UNMERGE,
            customer=customer,
            detail={"merge_record": record.pk, "other": str(other.pk), "counts": back},
        )
    return record


def _newest_current(model, customer: Customer, keys) -> None:
    """Per key, the customer's newest row is the current one (and only it)."""
    for key in keys:
        rows = model.objects.filter(customer=customer, key=key)
        newest = rows.order_by("-recorded_at", "-pk").first()
        if newest is None:
            continue
        rows.exclude(pk=newest.pk).filter(is_current=True).update(is_current=False)
        if not newest.is_current:
            model.objects.filter(pk=newest.pk).update(is_current=True)


def _recount(problem: RecurringProblem) -> None:
    span = problem.interactions.aggregate(first=Min("started_at"), last=Max("started_at"))
    problem.contact_count = problem.interactions.count()
    if span["first"] is not None:
        problem.first_contact_at, problem.last_contact_at = span["first"], span["last"]
    problem.save(update_fields=["contact_count", "first_contact_at", "last_contact_at"])
