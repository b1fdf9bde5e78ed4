"""Audited reads: one function per kind of read of a customer's data, each appending its access-audit row.

Views (API and admin) call these when they show a customer's data and never write audit rows
themselves, so "who looked at this customer" has one home per kind of read. Rows hold ids and
counts only, never personal data. `via` names the page or path that read the data when the
same kind of read happens in more than one place (e.g. "admin_change"), and lands in the row's
detail as {"page": via}. The screen-pop lookup audits inside its own SQL statement
(context/selectors.py) and writes (create, update, merge, export, erase) audit in crm/services.py
and crm/privacy.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from crm.models import AccessAudit, AuditAction, Customer, Feedback, Interaction
from crm.services import audit_record, audit_record_many


def _detail(via: str | None, **detail: Any) -> dict[str, Any]:
    return {**detail, **({"page": via} if via else {})}


def customer_view(actor, customer: Customer | uuid.UUID | str, *, via: str | None = None) -> AccessAudit:
    """One customer opened: GET /customers/{id}, the admin 360 page, its change form, the erase confirmation."""
    if isinstance(customer, Customer):
        return audit_record(actor=actor, action=AuditAction.VIEW, customer=customer, detail=_detail(via))
    return audit_record(actor=actor, action=AuditAction.VIEW, customer_id=customer, detail=_detail(via))


def customers_search_view(actor, customers: Iterable[Customer], *, via: str | None = None) -> int:
    """A search result: one row per customer shown (API search, the admin changelist search)."""
    return audit_record_many(
        actor=actor, action=AuditAction.VIEW, customers=customers, detail=_detail(via, search=True)
    )


def timeline_view(actor, customer: Customer) -> AccessAudit:
    """A page of a customer's timeline (GET /customers/{id}/timeline)."""
    return audit_record(actor=actor, action=AuditAction.VIEW, customer=customer, detail={"timeline": True})


def interaction_view(actor, interaction: Interaction, *, via: str | None = None) -> AccessAudit | None:
    """One contact opened (API detail, admin change form, an external_id replay); none for an anonymous contact."""
    if interaction.customer_id is None:
        return None
    return audit_record(
        actor=actor,
        action=AuditAction.VIEW,
        customer_id=interaction.customer_id,
        interaction_id=interaction.pk,
        detail=_detail(via),
    )


def feedback_view(actor, feedback: Feedback, *, via: str | None = None) -> AccessAudit | None:
    """One piece of feedback opened (API detail, admin change form); none when no customer gave it."""
    if feedback.customer_id is None:
        return None
    return audit_record(
        actor=actor,
        action=AuditAction.VIEW,
        customer_id=feedback.customer_id,
        detail=_detail(via, feedback=str(feedback.pk)),
    )


def merge_preview_view(actor, survivor: Customer, duplicate: Customer) -> int:
    """The merge preview shows both customers' identifiers and counts: one row for each."""
    for customer, other in ((survivor, duplicate), (duplicate, survivor)):
        audit_record(
            actor=actor,
            action=AuditAction.VIEW,
            customer=customer,
            detail=_detail("merge_preview", other=str(other.pk)),
        )
    return 2


def queue_view(actor, customer_ids: Iterable[Any], *, via: str) -> int:
    """A supervisors' queue (follow-ups, recurring problems, recognitions) shows what customers
    said or how often they called: one row per customer shown, in one INSERT (issue 10)."""
    ids = sorted({str(pk) for pk in customer_ids if pk})
    actor = actor if actor is not None and actor.is_authenticated else None
    AccessAudit.objects.bulk_create(
        AccessAudit(actor=actor, action=AuditAction.VIEW, customer_id=pk, detail=_detail(via, queue=True)) for pk in ids
    )
    return len(ids)
