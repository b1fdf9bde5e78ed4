"""Writes to the customer memory. Each function is one unit of work.

Callers pass validated primitives; these functions raise DomainError subclasses
for what the domain refuses, and are transactional so that a refused request
changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from django.contrib.auth import authenticate, get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from crm import login_limits, tokens
from crm.exceptions import Conflict, DomainError, Forbidden, NotFound
from crm.identifiers import InvalidIdentifier, erased_key, normalize
from crm.models import (
    AccessAudit,
    AuditAction,
    Case,
    ContactReason,
    Customer,
    Fact,
    Feedback,
    FollowUp,
    Identity,
    IdentityKind,
    Interaction,
    Preference,
)
from crm.permissions import is_agent, is_supervisor
from crm.queue import enqueue_on_commit

User = get_user_model()

# The Celery task that looks for a recurring problem (crm.tasks.recurring_problem_check_task).
RECURRING_PROBLEM_CHECK_TASK = "crm.recurring_problem_check"


# --- audit -------------------------------------------------------------------------


def row_get_or_create(model, *, new: bool, defaults: Mapping[str, Any], **lookup) -> tuple[Any, bool]:
    """get_or_create, or a plain INSERT when the caller knows the row cannot exist yet.

    A workflow's first run (crm.feedback) makes rows nobody else makes: looking for them
    first cost a SELECT and a savepoint pair per row, most of a praise workflow's queries.
    """
    if new:
        return model.objects.create(**lookup, **defaults), True
    return model.objects.get_or_create(defaults=defaults, **lookup)


def audit_record(
    *,
    actor,
    action: str,
    customer: Customer | None = None,
    customer_id=None,
    interaction_id=None,
    detail: Mapping[str, Any] | None = None,
) -> AccessAudit:
    """Append one row to the access audit (ids and counts only, never personal data)."""
    return AccessAudit.objects.create(
        actor=actor if actor is not None and actor.is_authenticated else None,
        action=action,
        customer_id=customer.pk if customer is not None else customer_id,
        interaction_id=interaction_id,
        detail=dict(detail or {}),
    )


def audit_record_many(
    *, actor, action: str, customers: Iterable[Customer], detail: Mapping[str, Any] | None = None
) -> int:
    """One audit row per customer in a single INSERT (a search result page)."""
    actor = actor if actor is not None and actor.is_authenticated else None
    rows = [AccessAudit(actor=actor, action=action, customer=c, detail=dict(detail or {})) for c in customers]
    AccessAudit.objects.bulk_create(rows)
    return len(rows)


# --- lookups used by writers ----------------------------------------------------------


def customer_resolve(customer_id) -> Customer | None:
    """The live customer behind an id: a merged-away id gives its survivor; None when missing or erased.

    Merges keep chains one hop long (customer_merge repoints earlier duplicates to
    the survivor), so one hop is the whole walk.
    """
    try:
        customer = Customer.objects.select_related("merged_into").filter(pk=customer_id).first()
    except (ValueError, TypeError, DjangoValidationError):
        return None
    if customer is not None and customer.merged_into_id is not None:
        customer = customer.merged_into
    if customer is None or customer.erased_at is not None:
        return None
    return customer


def live_customer_get(customer_id, *, field: str = "customer_id") -> Customer:
    """A live customer by id; a merged-away id resolves to its survivor."""
    customer = customer_resolve(customer_id)
    if customer is None:
        raise NotFound(f"No customer with id '{customer_id}'.", field=field)
    return customer


def interaction_live_get(interaction_id, *, field: str = "id") -> Interaction:
    """A contact by id under the one live-customer rule: a contact of an erased customer is not
    found (nothing may be read or written through it); one still on a merged-away customer is
    shown on its survivor."""
    try:
        interaction = (
            Interaction.objects.select_related("customer", "agent", "reason").filter(pk=interaction_id).first()
        )
    except (ValueError, TypeError, DjangoValidationError):
        interaction = None
    if interaction is not None and interaction.customer_id is not None:
        live = customer_resolve(interaction.customer_id)
        if live is None:
            interaction = None
        elif live.pk != interaction.customer_id:
            interaction.customer = live
    if interaction is None:
        raise NotFound(f"No contact with id '{interaction_id}'.", field=field)
    return interaction


def wrap_up_authorize(actor, interaction: Interaction) -> None:
    """Only the contact's own agent or a supervisor may wrap it up (or relink it)."""
    if is_supervisor(actor):
        return
    if actor is None or not actor.is_authenticated or interaction.agent_id != actor.pk:
        raise Forbidden("Only the contact's own agent or a supervisor may change it.")


def reason_get(code: str | None, *, field: str = "reason") -> ContactReason | None:
    if code in (None, ""):
        return None
    try:
        return ContactReason.objects.get(code=code, active=True)
    except ContactReason.DoesNotExist:
        raise DomainError(f"'{code}' is not a contact reason; see /api/v1/reasons.", field=field) from None


def staff_get(username: str | None, *, field: str = "agent"):
    if username in (None, ""):
        return None
    try:
        return User.objects.get(username=username, is_active=True)
    except User.DoesNotExist:
        raise DomainError(f"No member of staff '{username}'.", field=field) from None


def normalize_or_fail(kind: str, value: str, *, field: str | None = None) -> str:
    try:
        return normalize(kind, value)
    except InvalidIdentifier as exc:
        raise DomainError(exc.message, field=field or kind) from None


# --- customers ----------------------------------------------------------------------


@transaction.atomic
def customer_create(
    *,
    actor,
    display_name: str,
    preferred_name: str = "",
    language: str = "en",
    timezone_name: str = "",
    tier: str = "standard",
    identities: Iterable[Mapping[str, Any]] = (),
) -> Customer:
    customer = Customer.objects.create(
        display_name=display_name,
        preferred_name=preferred_name,
        language=language,
        timezone=timezone_name,
        tier=tier,
    )
    for identity in identities:
        try:
            identity_add(
                actor=actor,
                customer=customer,
                kind=identity["kind"],
                value=identity["value"],
                verified=identity.get("verified", False),
                audit=False,
            )
        except DomainError as exc:
            # Raised inside the transaction: the customer row goes too.
            raise type(exc)(exc.message, field="identities") from None
    audit_record(actor=actor, action=AuditAction.CREATE, customer=customer)
    return customer


@transaction.atomic
def customer_update(*, actor, customer: Customer, **fields: Any) -> Customer:
    allowed = {"display_name", "preferred_name", "language", "timezone", "tier"}
    changed = [name for name in fields if name in allowed]
    for name in changed:
        setattr(customer, name, fields[name])
    if changed:
        customer.save(update_fields=[*changed, "updated_at"])
    audit_record(actor=actor, action=AuditAction.UPDATE, customer=customer, detail={"fields": sorted(changed)})
    return customer


def identity_add(
    *,
    actor,
    customer: Customer,
    kind: str,
    value: str,
    verified: bool = False,
    source: str = "agent",
    audit: bool = True,
) -> Identity:
    """Attach an identifier; adding one the customer already has only updates verification."""
    normalized = normalize_or_fail(kind, value, field="value")
    now = timezone.now()
    try:
        with transaction.atomic():
            identity, created = Identity.objects.get_or_create(
                customer=customer,
                kind=kind,
                normalized=normalized,
                defaults={"value": value, "verified_at": now if verified else None, "source": source},
            )
    except IntegrityError:
        # Either the account is another live customer's (account_belongs_to_one_customer),
        # or a concurrent request just added this same identifier to this customer.
        identity = Identity.objects.filter(customer=customer, kind=kind, normalized=normalized).first()
        if identity is None:
            raise Conflict(f"Account '{normalized}' already belongs to another customer.", field="value") from None
        created = False
    if not created and verified and identity.verified_at is None:
        identity.verified_at = now
        identity.save(update_fields=["verified_at"])
    if audit:
        audit_record(actor=actor, action=AuditAction.UPDATE, customer=customer, detail={"identity": identity.pk})
    return identity


# --- facts and preferences -----------------------------------------------------------


def customer_lock(customer: Customer) -> None:
    """Take the customer's row lock for the rest of the transaction (writes to one customer's memory take turns).

    Called inside an atomic block; outside one the lock would end with the statement. FOR NO
    KEY UPDATE: writers to this customer's memory take turns, while rows that merely reference
    the customer (a lookup's new interaction, an audit row) are not held up.
    """
    Customer.objects.select_for_update(no_key=True).filter(pk=customer.pk).values_list("pk", flat=True).first()


@transaction.atomic
def fact_record(
    *, customer: Customer, key: str, value: str, actor=None, interaction: Interaction | None = None
) -> Fact:
    """The newest value per key is current; the previous one stays as history.

    Holds the customer's row lock until commit, so concurrent wrap-ups of one
    customer take turns: each demotes the value committed before it, none trips
    the one-current-per-key constraint, and recorded_at follows commit order.
    """
    customer_lock(customer)
    now = timezone.now()  # read under the lock: history is ordered as the writes commit
    Fact.objects.filter(customer=customer, key=key, is_current=True).update(is_current=False)
    return Fact.objects.create(
        customer=customer,
        key=key,
        value=value,
        is_current=True,
        channel=interaction.channel if interaction else "",
        recorded_at=now,
        recorded_by=actor if actor is not None and actor.is_authenticated else None,
        interaction=interaction,
    )


@transaction.atomic
def preference_set(
    *, customer: Customer, key: str, value: str, actor=None, interaction: Interaction | None = None
) -> Preference:
    """Set a preference; the earlier value stays in history unless it is unchanged.

    Under the customer's row lock, like fact_record: the current value read is the
    last committed one.
    """
    customer_lock(customer)
    current = Preference.objects.filter(customer=customer, key=key, is_current=True).first()
    if current is not None and current.value == value:
        return current
    if current is not None:
        current.is_current = False
        current.save(update_fields=["is_current"])
    return Preference.objects.create(
        customer=customer,
        key=key,
        value=value,
        is_current=True,
        recorded_at=timezone.now(),
        recorded_by=actor if actor is not None and actor.is_authenticated else None,
        interaction=interaction,
    )


# --- interactions -------------------------------------------------------------------


def identifiers_normalize(raw: Mapping[str, Any]) -> dict[str, str]:
    """{kind: normalized} for the identifier fields present; the field is named on error."""
    found = {}
    for kind in IdentityKind.values:
        value = raw.get(kind)
        if value not in (None, ""):
            found[kind] = normalize_or_fail(kind, value)
    return found


def customers_matching(identifiers: Mapping[str, str]) -> list[Customer]:
    """Live customers holding any of these normalized identifiers."""
    if not identifiers:
        return []
    condition = Q()
    for kind, normalized in identifiers.items():
        condition |= Q(kind=kind, normalized=normalized)
    ids = Identity.objects.filter(condition).values_list("customer_id", flat=True).distinct()
    return list(Customer.objects.live().filter(pk__in=ids))


# The idempotency namespace of external_id for contacts posted through the API.
EXTERNAL_SOURCE = "api"


@transaction.atomic
def interaction_record(
    *,
    actor,
    channel: str,
    started_at: dt.datetime | None = None,
    ended_at: dt.datetime | None = None,
    customer_id=None,
    identifiers: Mapping[str, str] | None = None,
    reason: str | None = None,
    reason_text: str = "",
    summary: str = "",
    outcome: str = "",
    agent: str | None = None,
    direction: str = "inbound",
    queue: str = "",
    external_id: str | None = None,
    source: str = EXTERNAL_SOURCE,
) -> tuple[Interaction, bool]:
    """Record a contact from another channel; the same external_id is the same contact.

    External ids share one namespace whatever the channel: a repeat posted with
    another channel is still the same contact. Returns (interaction, created).
    """
    if external_id:
        existing = Interaction.objects.filter(
            source=source, external_id__in=[external_id, erased_key(external_id)]
        ).first()
        if existing is not None:
            # A replay reaches the contact, so the live-customer rule holds (erased: 404).
            return interaction_live_get(existing.pk, field="external_id"), False
    reason_obj = reason_get(reason)
    agent_obj = staff_get(agent)
    if agent_obj is not None and not is_agent(agent_obj):
        raise DomainError(f"'{agent}' does not have the agent or supervisor role.", field="agent")
    started_at = started_at or timezone.now()
    if ended_at is not None and ended_at < started_at:
        raise DomainError("ended_at is before the contact started.", field="ended_at")
    normalized = identifiers_normalize(identifiers or {})
    customer = None
    if customer_id:
        customer = live_customer_get(customer_id)
    elif normalized:
        matches = customers_matching(normalized)
        customer = matches[0] if len(matches) == 1 else None
    interaction = Interaction(
        customer=customer,
        channel=channel,
        direction=direction,
        started_at=started_at,
        ended_at=ended_at,
        agent=agent_obj or (actor if actor is not None and actor.is_authenticated else None),
        queue=queue,
        reason=reason_obj,
        reason_text=reason_text,
        summary=summary,
        outcome=outcome,
        identifiers=normalized,
        source=source,
        external_id=external_id or None,
    )
    try:
        with transaction.atomic():
            interaction.save(force_insert=True)
    except IntegrityError:
        # A concurrent request with the same external_id won the race: same contact.
        existing = Interaction.objects.filter(source=source, external_id=external_id).first()
        if existing is None:
            raise
        return existing, False
    if customer is not None:
        audit_record(actor=actor, action=AuditAction.CREATE, customer=customer, interaction_id=interaction.pk)
    if customer is not None and reason_obj is not None:
        _recurring_problem_check_on_commit(interaction)
    return interaction, True


@transaction.atomic
def interaction_wrap_up(
    *,
    actor,
    interaction: Interaction,
    reason: str | None = None,
    reason_text: str | None = None,
    summary: str | None = None,
    outcome: str | None = None,
    ended_at: dt.datetime | None = None,
    customer_id=None,
    facts: Iterable[Mapping[str, str]] = (),
    preferences: Mapping[str, str] | None = None,
) -> Interaction:
    """Close a contact: what it was about, how it ended, what the customer told us.

    Linking an unknown caller to a customer also attaches the number they called
    from, unverified, so the next call finds them.
    """
    facts = list(facts)
    if (facts or preferences) and interaction.customer_id is not None:
        # The customer before the contact, the order merge and erasure lock them in, so a
        # wrap-up racing a merge of the same customer waits instead of deadlocking.
        customer_lock(Customer(pk=interaction.customer_id))
    interaction = Interaction.objects.select_for_update().get(pk=interaction.pk)
    wrap_up_authorize(actor, interaction)
    if interaction.customer_id is not None:
        live = customer_resolve(interaction.customer_id)
        if live is None:
            raise NotFound(f"No contact with id '{interaction.pk}'.", field="id")
        interaction.customer = live
    changed: list[str] = []
    relinked_from = None
    if customer_id is not None:
        customer = live_customer_get(customer_id)
        if interaction.customer_id is not None and interaction.customer_id != customer.pk:
            # An explicit relink by the contact's agent or a supervisor (a repeat lookup never
            # relinks): the contact and the feedback about it move; both customers' audits say so.
            relinked_from = interaction.customer_id
            interaction.customer = customer
            changed.append("customer")
            Feedback.objects.filter(interaction=interaction, customer_id=relinked_from).update(customer=customer)
            audit_record(
                actor=actor,
                action=AuditAction.UPDATE,
                customer_id=relinked_from,
                interaction_id=interaction.pk,
                detail={"relinked_to": str(customer.pk)},
            )
        elif interaction.customer_id is None:
            interaction.customer = customer
            changed.append("customer")
            for kind, normalized in (interaction.identifiers or {}).items():
                if kind == IdentityKind.ACCOUNT and Identity.objects.filter(kind=kind, normalized=normalized).exists():
                    continue
                identity_add(actor=actor, customer=customer, kind=kind, value=normalized, source="contact", audit=False)
            # Feedback about this contact (and its cases, follow-ups) becomes the customer's too.
            contact_followers_link(interaction, customer)
    if reason is not None:
        interaction.reason = reason_get(reason)
        changed.append("reason")
    for name, value in (("reason_text", reason_text), ("summary", summary), ("outcome", outcome)):
        if value is not None:
            setattr(interaction, name, value)
            changed.append(name)
    if ended_at is not None:
        if ended_at < interaction.started_at:
            raise DomainError("ended_at is before the contact started.", field="ended_at")
        interaction.ended_at = ended_at
        changed.append("ended_at")
    if changed:
        interaction.save(update_fields=changed)
    if ("reason" in changed or "customer" in changed) and interaction.customer_id and interaction.reason_id:
        _recurring_problem_check_on_commit(interaction)

    if (facts or preferences) and interaction.customer_id is None:
        field = "facts" if facts else "preferences"
        raise DomainError("Link the contact to a customer (customer_id) to record what they told us.", field=field)
    for fact in facts:
        fact_record(
            customer=interaction.customer, key=fact["key"], value=fact["value"], actor=actor, interaction=interaction
        )
    for key, value in (preferences or {}).items():
        preference_set(customer=interaction.customer, key=key, value=value, actor=actor, interaction=interaction)
    if interaction.customer_id is not None:
        audit_record(
            actor=actor,
            action=AuditAction.UPDATE,
            customer_id=interaction.customer_id,
            interaction_id=interaction.pk,
            detail={
                "wrap_up": sorted(changed),
                "facts": len(facts),
                "preferences": len(preferences or {}),
                **({"relinked_from": str(relinked_from)} if relinked_from else {}),
            },
        )
    return interaction


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


def _recurring_problem_check_on_commit(interaction: Interaction) -> None:
    """A contact now has a customer and a reason: check for a recurring problem once this commits."""
    enqueue_on_commit(RECURRING_PROBLEM_CHECK_TASK, str(interaction.pk))


# --- auth -----------------------------------------------------------------------------


def token_for_credentials(*, request, username: str, password: str) -> tuple[str, dt.datetime | None]:
    """A new API token for these credentials and when it expires (None: never, for integrations).

    `request` lets the login limiter (axes) count the attempt per username and client address.
    """
    user = authenticate(request, username=username, password=password)
    if user is None or not user.is_active:
        if login_limits.is_locked_out(request):
            raise login_limits.LoginLockedOut()
        raise DomainError("Wrong username or password.")
    return tokens.issue(user)


def tokens_revoke(user, presented, *, everything: bool) -> None:
    """Log out an API client: the token it presented, or (everything) all of the user's tokens."""
    if everything:
        tokens.revoke_all(user)
    else:
        tokens.revoke(presented)
