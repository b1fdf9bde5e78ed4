"""Reads (and the one combined write) behind the screen-pop lookup.

A lookup costs two round trips whatever the customer's history:

1. `identity_rows` — which live customers hold the given identifiers (and
   where a given customer_id leads after merges);
2. `contact_open_and_card` — opens the interaction (idempotent on call_id),
   appends the access-audit row and reads the whole card, in one statement.

On PostgreSQL both are single hand-written statements whose text never varies
(absent identifiers are bound as NULL), so psycopg's server-side binding
prepares them once per connection. Other databases (the SQLite demo) get the
same answers from a portable ORM path. Both return the same raw shape, which
`context.services` turns into the response.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Q

from crm.models import (
    AccessAudit,
    AuditAction,
    Case,
    CaseStatus,
    ContactReason,
    Customer,
    Fact,
    Feedback,
    Identity,
    Interaction,
    Preference,
    Sentiment,
)

# Lookups and call events share one idempotency namespace for call_id, so a
# call event and a lookup for the same call open the same interaction.
CONTACT_SOURCE = "contact"
RECENT_LIMIT = 5
# The card shows the newest open cases; a customer with more has a bigger problem than a card.
OPEN_CASES_LIMIT = 20
MERGE_CHAIN_LIMIT = 10
ISO_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def iso(value: dt.datetime | None) -> str | None:
    """Timestamps as the API writes them: UTC, microseconds, 'Z' (same text as the SQL path)."""
    if value is None:
        return None
    return value.astimezone(dt.UTC).strftime(ISO_FORMAT)


def _sql_iso(column: str) -> str:
    return f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""


def _postgres() -> bool:
    return connection.vendor == "postgresql"


# --- 1. identity resolution ------------------------------------------------------------

# Served by identity_lookup_idx (kind, normalized) and the customer primary key; the
# merge chain walks the primary key. Absent identifiers are NULL and match nothing.
_IDENTITY_SQL = f"""
WITH RECURSIVE chain (id, merged_into_id, erased_at, display_name, depth) AS (
    SELECT id, merged_into_id, erased_at, display_name, 0 FROM crm_customer WHERE id = %(customer_id)s
  UNION ALL
    SELECT c.id, c.merged_into_id, c.erased_at, c.display_name, chain.depth + 1
    FROM crm_customer c JOIN chain ON c.id = chain.merged_into_id
    WHERE chain.depth < {MERGE_CHAIN_LIMIT}
)
SELECT 'customer_id', id, display_name FROM chain WHERE merged_into_id IS NULL AND erased_at IS NULL
UNION ALL
SELECT i.kind, c.id, c.display_name
FROM crm_identity i JOIN crm_customer c ON c.id = i.customer_id
WHERE ((i.kind = 'phone' AND i.normalized = %(phone)s)
    OR (i.kind = 'email' AND i.normalized = %(email)s)
    OR (i.kind = 'account' AND i.normalized = %(account)s))
  AND c.erased_at IS NULL AND c.merged_into_id IS NULL
"""  # noqa: S608 - only module constants are formatted in; every value is a bound parameter


def identity_rows(identifiers: Mapping[str, str], customer_id: uuid.UUID | None) -> list[tuple[str, uuid.UUID, str]]:
    """(kind, live customer id, display_name) for each identifier that matched.

    A customer_id that was merged away yields its survivor as kind 'customer_id';
    an unknown or erased one yields no 'customer_id' row.
    """
    if _postgres():
        params = {
            "customer_id": customer_id,
            "phone": identifiers.get("phone"),
            "email": identifiers.get("email"),
            "account": identifiers.get("account"),
        }
        with connection.cursor() as cursor:
            cursor.execute(_IDENTITY_SQL, params)
            return [
                (kind, cid if isinstance(cid, uuid.UUID) else uuid.UUID(str(cid)), name) for kind, cid, name in cursor
            ]
    rows: list[tuple[str, uuid.UUID, str]] = []
    if customer_id is not None:
        customer = Customer.objects.filter(pk=customer_id).first()
        for _ in range(MERGE_CHAIN_LIMIT):
            if customer is None or customer.merged_into_id is None:
                break
            customer = Customer.objects.filter(pk=customer.merged_into_id).first()
        if customer is not None and customer.is_live:
            rows.append(("customer_id", customer.pk, customer.display_name))
    if identifiers:
        condition = Q()
        for kind, normalized in identifiers.items():
            condition |= Q(kind=kind, normalized=normalized)
        rows.extend(
            Identity.objects.filter(condition)
            .filter(customer__erased_at__isnull=True, customer__merged_into__isnull=True)
            .values_list("kind", "customer_id", "customer__display_name")
        )
    return rows


# --- 2. open the contact, audit, read the card --------------------------------------------

# One statement. The INSERT ... ON CONFLICT makes call_id idempotent (interaction_call_id_once);
# data-modifying CTEs run to completion whether or not the SELECT reads them, and the card's
# reads see the snapshot from before the insert, so the contact being opened is not in
# "recent". Each card read is served by an index named in crm/models.py:
# identity_once_per_customer, preference_current_idx, fact_current_idx,
# case_open_by_customer_idx + interaction_case_idx, interaction_recent_idx,
# feedback_recent_idx, and primary keys for the joins.
#
# Commit: when the statement is its own transaction (autocommit, the normal case), it
# may commit asynchronously (settings.CRM_LOOKUP_ASYNC_COMMIT): PostgreSQL then does not
# wait for the WAL flush (about 1 ms p50 and tens of ms p99 on a shared disk, several
# times the rest of the lookup). The price: if the database server itself crashes within
# a fraction of a second (3 x wal_writer_delay) after a lookup, that lookup's new
# interaction and audit row may be lost; nothing is ever half-written. Inside a caller's
# transaction the caller's commit mode is left alone.
_CONTACT_SQL = f"""
WITH ins AS (
    INSERT INTO crm_interaction (
        id, customer_id, channel, direction, started_at, agent_id, queue, reason_text, summary, outcome,
        identifiers, verified, ivr, source, call_id, created_at)
    VALUES (
        %(id)s, %(cid)s, %(channel)s, 'inbound', %(now)s, %(agent_id)s, '', '', '', '',
        %(identifiers)s::jsonb, %(verified)s::jsonb, %(ivr)s::jsonb, '{CONTACT_SOURCE}', %(call_id)s, %(now)s)
    -- A repeat of the call (ringing, then connected, then the desktop's own lookup) is
    -- the same contact, and what it learnt sticks: a caller identified or verified only
    -- now is linked now, so the wrap-up lands on the customer the card shows.
    ON CONFLICT (source, call_id) WHERE call_id IS NOT NULL DO UPDATE SET
        customer_id = COALESCE(EXCLUDED.customer_id, crm_interaction.customer_id),
        verified = CASE WHEN jsonb_array_length(EXCLUDED.verified) > 0
                        THEN EXCLUDED.verified ELSE crm_interaction.verified END,
        identifiers = crm_interaction.identifiers || EXCLUDED.identifiers,
        ivr = crm_interaction.ivr || EXCLUDED.ivr
    RETURNING id
), contact AS (
    SELECT id FROM ins
), audit AS (
    INSERT INTO crm_accessaudit (at, actor_id, action, customer_id, interaction_id, detail)
    SELECT %(now)s, %(actor_id)s, '{AuditAction.LOOKUP}', %(cid)s, contact.id, %(detail)s::jsonb FROM contact
    RETURNING 1
)
SELECT
    (SELECT id FROM contact LIMIT 1),
    set_config('synchronous_commit',
               CASE WHEN %(async_commit)s THEN 'off' ELSE current_setting('synchronous_commit') END, true),
    (SELECT json_build_array(c.display_name, c.preferred_name, c.language, c.tier, c.created_at >= %(window)s)
       FROM crm_customer c WHERE c.id = %(cid)s),
    (SELECT coalesce(json_agg(json_build_array(i.kind, i.normalized, i.verified_at IS NOT NULL)
                              ORDER BY i.kind, i.created_at), '[]')
       FROM crm_identity i WHERE i.customer_id = %(cid)s),
    (SELECT coalesce(json_agg(json_build_array(p.key, p.value) ORDER BY p.key), '[]')
       FROM crm_preference p WHERE p.customer_id = %(cid)s AND p.is_current),
    (SELECT coalesce(json_agg(json_build_array(f.key, f.value, f.channel, f.interaction_id,
                                               {_sql_iso("f.recorded_at")}) ORDER BY f.key), '[]')
       FROM crm_fact f WHERE f.customer_id = %(cid)s AND f.is_current),
    (SELECT coalesce(json_agg(json_build_array(k.id, k.subject, k.status, {_sql_iso("k.opened_at")},
                                               (SELECT count(*) FROM crm_interaction x
                                                 WHERE x.case_id = k.id AND x.started_at >= %(window)s))
                              ORDER BY k.opened_at DESC), '[]')
       FROM (SELECT id, subject, status, opened_at FROM crm_case
              WHERE customer_id = %(cid)s AND status IN ('{CaseStatus.OPEN}', '{CaseStatus.IN_PROGRESS}')
              ORDER BY opened_at DESC LIMIT {OPEN_CASES_LIMIT}) k),
    (SELECT coalesce(json_agg(json_build_array(r.id, r.channel, {_sql_iso("r.started_at")}, u.username, cr.code,
                                               r.summary, r.outcome) ORDER BY r.started_at DESC), '[]')
       FROM (SELECT id, channel, started_at, agent_id, reason_id, summary, outcome FROM crm_interaction
              WHERE customer_id = %(cid)s AND id IS DISTINCT FROM (SELECT id FROM contact LIMIT 1)
              ORDER BY started_at DESC LIMIT {RECENT_LIMIT}) r
       LEFT JOIN auth_user u ON u.id = r.agent_id
       LEFT JOIN crm_contactreason cr ON cr.id = r.reason_id),
    (SELECT coalesce(json_object_agg(t.code, t.n), '{{}}')
       FROM (SELECT cr.code, count(*) AS n FROM crm_interaction x JOIN crm_contactreason cr ON cr.id = x.reason_id
              WHERE x.customer_id = %(cid)s AND x.started_at >= %(window)s
                AND x.id IS DISTINCT FROM (SELECT id FROM contact LIMIT 1)
              GROUP BY cr.code) t),
    EXISTS (SELECT 1 FROM crm_contactreason WHERE code = %(intent)s),
    (SELECT json_build_array(fb.rating, nullif(fb.sentiment, ''), {_sql_iso("fb.received_at")})
       FROM crm_feedback fb WHERE fb.customer_id = %(cid)s ORDER BY fb.received_at DESC LIMIT 1),
    EXISTS (SELECT 1 FROM crm_feedback fb
             WHERE fb.customer_id = %(cid)s AND fb.received_at >= %(window)s
               AND fb.sentiment = '{Sentiment.NEGATIVE}')
"""  # noqa: S608 - only module constants are formatted in; every value is a bound parameter
# The statement is prepared (psycopg, server-side binding), but with plan_cache_mode
# 'auto' PostgreSQL keeps re-planning it for every call (its custom plans look cheaper
# than the generic one), and planning this statement costs more than running it:
# measured at 1M customers, 1.6 ms of backend CPU per lookup re-planned against
# 0.5 ms with the generic plan, whose every read is still an index scan (EXPLAIN test).
# SET LOCAL keeps the setting to this statement's transaction.
_GENERIC_PLAN_SQL = "SET LOCAL plan_cache_mode = force_generic_plan"
_CONTACT_COLUMNS = (
    "interaction_id",
    "commit_mode",
    "customer",
    "identities",
    "preferences",
    "facts",
    "open_cases",
    "recent",
    "reason_counts",
    "intent_known",
    "last_feedback",
    "recent_complaint",
)


def contact_open_and_card(
    *,
    customer_id: uuid.UUID | None,
    channel: str,
    call_id: str | None,
    agent_id: int | None,
    actor_id: int | None,
    identifiers: Mapping[str, str],
    verified: list[str],
    ivr: Mapping[str, Any],
    audit_detail: Mapping[str, Any],
    now: dt.datetime,
    window_start: dt.datetime,
    intent: str | None,
) -> dict[str, Any]:
    """Open (or find, by call_id) the contact, audit the lookup, read the card: raw rows."""
    if not _postgres():
        return _contact_open_and_card_orm(**locals())
    params = {
        "id": uuid.uuid4(),
        "cid": customer_id,
        "channel": channel,
        "call_id": call_id,
        "agent_id": agent_id,
        "actor_id": actor_id,
        "identifiers": json.dumps(dict(identifiers)),
        "verified": json.dumps(list(verified)),
        "ivr": json.dumps(dict(ivr)),
        "detail": json.dumps(dict(audit_detail)),
        "now": now,
        "window": window_start,
        "intent": intent,
        "async_commit": settings.CRM_LOOKUP_ASYNC_COMMIT and not connection.in_atomic_block,
    }
    # One round trip (psycopg pipeline): the SET LOCAL and the statement share one
    # transaction, so the generic-plan setting ends with it (see _GENERIC_PLAN_SQL).
    # ON CONFLICT ... DO UPDATE returns the row whether it was inserted or repeated.
    with connection.cursor() as cursor, cursor.cursor.connection.pipeline():
        cursor.execute(_GENERIC_PLAN_SQL)
        cursor.execute(_CONTACT_SQL, params)
        row = cursor.fetchone()
    return dict(zip(_CONTACT_COLUMNS, row, strict=True))


def _contact_open_and_card_orm(
    *,
    customer_id,
    channel,
    call_id,
    agent_id,
    actor_id,
    identifiers,
    verified,
    ivr,
    audit_detail,
    now,
    window_start,
    intent,
) -> dict[str, Any]:
    """The portable path (SQLite demo): same rows, several ORM queries in one transaction."""
    with transaction.atomic():
        interaction = None
        if call_id:
            interaction = Interaction.objects.select_for_update().filter(source=CONTACT_SOURCE, call_id=call_id).first()
        if interaction is not None:
            # A repeat of the call: what it learnt sticks (as ON CONFLICT DO UPDATE above).
            interaction.customer_id = customer_id or interaction.customer_id
            interaction.verified = list(verified) or interaction.verified
            interaction.identifiers = {**interaction.identifiers, **identifiers}
            interaction.ivr = {**interaction.ivr, **ivr}
            interaction.save(update_fields=["customer", "verified", "identifiers", "ivr"])
        else:
            interaction = Interaction.objects.create(
                customer_id=customer_id,
                channel=channel,
                started_at=now,
                agent_id=agent_id,
                identifiers=dict(identifiers),
                verified=list(verified),
                ivr=dict(ivr),
                source=CONTACT_SOURCE,
                call_id=call_id,
            )
        AccessAudit.objects.create(
            actor_id=actor_id,
            action=AuditAction.LOOKUP,
            customer_id=customer_id,
            interaction_id=interaction.pk,
            detail=dict(audit_detail),
        )
    raw = card_rows_orm(customer_id, exclude_interaction_id=interaction.pk, window_start=window_start, intent=intent)
    raw["interaction_id"] = interaction.pk
    return raw


def card_rows_orm(
    customer_id, *, exclude_interaction_id=None, window_start: dt.datetime, intent: str | None
) -> dict[str, Any]:
    """The card's raw rows through the ORM, in the same shape as the SQL path."""
    raw: dict[str, Any] = {"customer": None, "intent_known": bool(intent) and _reason_known(intent)}
    customer = Customer.objects.filter(pk=customer_id).first() if customer_id else None
    if customer is None:
        raw.update(
            identities=[],
            preferences=[],
            facts=[],
            open_cases=[],
            recent=[],
            reason_counts={},
            last_feedback=None,
            recent_complaint=False,
        )
        return raw
    raw["customer"] = [
        customer.display_name,
        customer.preferred_name,
        customer.language,
        customer.tier,
        customer.created_at >= window_start,
    ]
    raw["identities"] = [
        [kind, normalized, verified_at is not None]
        for kind, normalized, verified_at in Identity.objects.filter(customer=customer)
        .order_by("kind", "created_at")
        .values_list("kind", "normalized", "verified_at")
    ]
    raw["preferences"] = [
        list(row)
        for row in Preference.objects.filter(customer=customer, is_current=True)
        .order_by("key")
        .values_list("key", "value")
    ]
    raw["facts"] = [
        [key, value, channel, str(interaction_id) if interaction_id else None, iso(recorded_at)]
        for key, value, channel, interaction_id, recorded_at in Fact.objects.filter(customer=customer, is_current=True)
        .order_by("key")
        .values_list("key", "value", "channel", "interaction_id", "recorded_at")
    ]
    cases = (
        Case.objects.filter(customer=customer, status__in=[CaseStatus.OPEN, CaseStatus.IN_PROGRESS])
        .order_by("-opened_at")
        .annotate(recent=Count("interactions", filter=Q(interactions__started_at__gte=window_start)))[:OPEN_CASES_LIMIT]
    )
    raw["open_cases"] = [[str(c.pk), c.subject, c.status, iso(c.opened_at), c.recent] for c in cases]
    history = Interaction.objects.filter(customer=customer)
    if exclude_interaction_id is not None:
        history = history.exclude(pk=exclude_interaction_id)
    raw["recent"] = [
        [str(i.pk), i.channel, iso(i.started_at), i.agent.username if i.agent else None,
         i.reason.code if i.reason else None, i.summary, i.outcome]
        for i in history.select_related("agent", "reason").order_by("-started_at")[:RECENT_LIMIT]
    ]  # fmt: skip
    raw["reason_counts"] = dict(
        history.filter(started_at__gte=window_start, reason__isnull=False)
        .values_list("reason__code")
        .annotate(n=Count("id"))
        .values_list("reason__code", "n")
    )
    last = Feedback.objects.filter(customer=customer).order_by("-received_at").first()
    raw["last_feedback"] = [last.rating, last.sentiment or None, iso(last.received_at)] if last else None
    raw["recent_complaint"] = Feedback.objects.filter(
        customer=customer, sentiment=Sentiment.NEGATIVE, received_at__gte=window_start
    ).exists()
    return raw


def _reason_known(code: str) -> bool:
    return ContactReason.objects.filter(code=code).exists()
