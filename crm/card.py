"""The customer's card: what an agent needs not to ask again, and the contact it is read for.

`contact_open_and_card` opens the contact (idempotent on call_id), appends the
access-audit row and reads the whole card. On PostgreSQL that is one hand-written
statement whose text never varies (absent values are bound as NULL), so psycopg
prepares it once per connection; every other database (the SQLite demo) gets the
same `CardRows` from `contact_open_and_card_orm`, which PostgreSQL can run too
(tests/context/test_card_parity.py compares the two). `card_from_rows` turns the
rows into the card's part of the API response; `customer_card` reads a card
without opening a contact (the admin's customer page).
"""

# ruff: noqa: S608 - the card's SQL is built from module constants only; every value is a bound parameter
from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict, overload

import orjson
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone
from psycopg.types.json import JsonLoader

from crm import fastjson
from crm.exceptions import Conflict, NotFound
from crm.identifiers import erased_key
from crm.models import (
    CONTACT_SOURCE,
    TRUTHY,
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
    Tier,
    contact_counts,
    time_ordered_uuid,
)

# Lookups and call events share one idempotency namespace for call_id (CONTACT_SOURCE,
# from crm.models), so a call event and a lookup for the same call open the same interaction.
RECENT_LIMIT = 5
# The card shows the newest open cases; a customer with more has a bigger problem than a card.
OPEN_CASES_LIMIT = 20
OPEN_CASE = (CaseStatus.OPEN, CaseStatus.IN_PROGRESS)
ISO_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


# --- the rows: named fields, the same from the SQL and the ORM path ----------------------------


class CustomerRow(TypedDict):
    display_name: str
    preferred_name: str
    language: str
    tier: str
    is_new: bool  # created inside the repeat window


class IdentityRow(TypedDict):
    kind: str
    value: str  # normalized
    verified: bool
    verified_at: str | None
    verified_via: str  # crm.models.VerifiedVia, or "" when not known


class FactRow(TypedDict):
    key: str
    value: str
    channel: str
    interaction_id: str | None
    import_ref: str  # issue 15: "file:line" when a bulk import recorded it, else ""
    recorded_at: str


class CaseRow(TypedDict):
    id: str
    subject: str
    status: str
    opened_at: str
    recent: int  # contacts about the case inside the repeat window


class RecentRow(TypedDict):
    id: str
    channel: str
    started_at: str
    agent: str | None
    reason: str | None
    summary: str
    outcome: str


class FeedbackRow(TypedDict):
    rating: int | None
    nps: int | None
    sentiment: str | None
    # issue 13: the customer's words (first CARD_FEEDBACK_TEXT characters), not only the score.
    text: str
    received_at: str


# The card quotes this many characters of the last feedback; the 360 shows the rest.
CARD_FEEDBACK_TEXT = 280


@dataclass(frozen=True)
class CardRows:
    """Everything the card is built from; timestamps are already API text (see `iso`)."""

    customer: CustomerRow | None
    identities: list[IdentityRow]
    preferences: dict[str, str]
    facts: list[FactRow]
    open_cases: list[CaseRow]
    recent: list[RecentRow]
    reason_counts: dict[str, int]
    intent_known: bool
    last_feedback: FeedbackRow | None
    recent_complaint: bool


@dataclass(frozen=True)
class OpenedContact:
    """The contact a lookup opened (or found again by call_id) and the card read with it."""

    interaction_id: uuid.UUID
    rows: CardRows
    verified: list[str]  # identifier kinds verified during this contact so far (IVR, login, agent)


@overload
def iso(value: dt.datetime) -> str: ...
@overload
def iso(value: None) -> None: ...


def iso(value: dt.datetime | None) -> str | None:
    """Timestamps as the API writes them: UTC, microseconds, 'Z' (same text as the SQL path)."""
    if value is None:
        return None
    return value.astimezone(dt.UTC).strftime(ISO_FORMAT)


# --- PostgreSQL: one statement --------------------------------------------------------------


def _iso_sql(column: str) -> str:
    """The API's timestamp form, computed in PostgreSQL by crm_iso() (migration 0019: an inlined SQL
    function, the same to_char as before, written once so the statement stays under psycopg's cache limit)."""
    return f"crm_iso({column})"


def _obj(**fields: str) -> str:
    """json_build_object('name', expression, ...): the rows' field names are the TypedDicts' keys."""
    return "json_build_object(" + ",".join(f"'{name}',{expr}" for name, expr in fields.items()) + ")"


def _compact(sql: str) -> str:
    """One space for every run of whitespace: the statement stays under psycopg's 4,096-character
    query cache limit (the SQL holds no string literal with a run of spaces, nor a -- comment)."""
    return " ".join(sql.split())


# Table names from the models (crm_customer, ...), keyed by model name.
_T = {
    m.__name__: m._meta.db_table
    for m in (AccessAudit, Case, ContactReason, Customer, Fact, Feedback, Identity, Interaction, Preference)
}
_USER_TABLE = get_user_model()._meta.db_table

# The INSERT ... ON CONFLICT makes call_id idempotent (interaction_call_id_once); columns it
# does not name (direction, queue, reason_text, summary, outcome) take the models' db_default.
# A repeat of the call (ringing, then connected, then the desktop's own lookup) is the same
# contact, and what it learnt sticks: a caller identified or verified only now is linked now,
# so the wrap-up lands on the customer the card shows. A contact already linked is never
# moved by a repeat: the DO UPDATE's WHERE leaves a repeat that identifies someone else
# without a row, so nothing is updated or audited and contact_open_and_card answers 409.
# A call whose customer was erased holds erased_key(call_id): the insert is skipped
# (NOT EXISTS) and the repeat answers 404 instead of opening the call again.
# Data-modifying CTEs run to completion whether or not the SELECT reads them, and the card's
# reads see the snapshot from before the insert, so the contact being opened is not in
# "recent". Each card read is served by an index named in crm/models.py:
# identity_once_per_customer, one_current_preference_per_key, one_current_fact_per_key,
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
# contact holds at most one row (one INSERT of one row), so no LIMIT: the statement stays under the cache limit.
_NOT_THIS = "IS DISTINCT FROM (SELECT id FROM contact)"
# crm.models.contact_counts() in SQL: a pop or lookup nobody wrapped up is not a contact.
_COUNTS = f"(source<>'{CONTACT_SOURCE}' OR reason_id IS NOT NULL OR outcome<>'' OR summary<>'')"
_CARD = _obj(
    customer=f"""(SELECT {
        _obj(
            display_name="c.display_name",
            preferred_name="c.preferred_name",
            language="c.language",
            tier="c.tier",
            is_new="c.created_at>=%(window)s",
        )
    }
                  FROM {_T["Customer"]} c WHERE c.id=%(cid)s)""",
    identities=f"""(SELECT coalesce(json_agg({
        _obj(
            kind="i.kind",
            value="i.normalized",
            verified="i.verified_at IS NOT NULL",
            verified_at=_iso_sql("i.verified_at"),
            verified_via="i.verified_via",
        )
    }
                                             ORDER BY i.kind,i.created_at),'[]')
                    FROM {_T["Identity"]} i WHERE i.customer_id=%(cid)s)""",
    preferences=f"""(SELECT coalesce(json_object_agg(p.key,p.value ORDER BY p.key),'{{}}')
                     FROM {_T["Preference"]} p WHERE p.customer_id=%(cid)s AND p.is_current)""",
    facts=f"""(SELECT coalesce(json_agg({
        _obj(
            key="f.key",
            value="f.value",
            channel="f.channel",
            interaction_id="f.interaction_id",
            import_ref="f.import_ref",
            recorded_at=_iso_sql("f.recorded_at"),
        )
    } ORDER BY f.key),'[]')
               FROM {_T["Fact"]} f WHERE f.customer_id=%(cid)s AND f.is_current)""",
    open_cases=f"""(SELECT coalesce(json_agg({
        _obj(
            id="k.id",
            subject="k.subject",
            status="k.status",
            opened_at=_iso_sql("k.opened_at"),
            recent=f"(SELECT count(*) FROM {_T['Interaction']} x WHERE x.case_id=k.id AND x.started_at>=%(window)s)",
        )
    }
                                             ORDER BY k.opened_at DESC),'[]')
                    FROM (SELECT id,subject,status,opened_at FROM {_T["Case"]}
                          WHERE customer_id=%(cid)s AND status IN {tuple(str(s) for s in OPEN_CASE)}
                          ORDER BY opened_at DESC LIMIT {OPEN_CASES_LIMIT}) k)""",
    recent=f"""(SELECT coalesce(json_agg({
        _obj(
            id="r.id",
            channel="r.channel",
            started_at=_iso_sql("r.started_at"),
            agent="u.username",
            reason="cr.code",
            summary="r.summary",
            outcome="r.outcome",
        )
    } ORDER BY r.started_at DESC),'[]')
                FROM (SELECT id,channel,started_at,agent_id,reason_id,summary,outcome FROM {_T["Interaction"]}
                      WHERE customer_id=%(cid)s AND id {_NOT_THIS} AND {_COUNTS}
                      ORDER BY started_at DESC LIMIT {RECENT_LIMIT}) r
                LEFT JOIN {_USER_TABLE} u ON u.id=r.agent_id
                LEFT JOIN {_T["ContactReason"]} cr ON cr.id=r.reason_id)""",
    reason_counts=f"""(SELECT coalesce(json_object_agg(t.code,t.n),'{{}}')
                       FROM (SELECT cr.code,count(*) AS n
                             FROM {_T["Interaction"]} x JOIN {_T["ContactReason"]} cr ON cr.id=x.reason_id
                             WHERE x.customer_id=%(cid)s AND x.started_at>=%(window)s AND x.id {_NOT_THIS}
                             GROUP BY cr.code) t)""",
    intent_known=f"EXISTS (SELECT 1 FROM {_T['ContactReason']} WHERE code=%(intent)s)",
    last_feedback=f"""(SELECT {
        _obj(
            rating="fb.rating",
            nps="fb.nps",
            sentiment="nullif(fb.sentiment,'')",
            text=f"left(fb.text,{CARD_FEEDBACK_TEXT})",
            received_at=_iso_sql("fb.received_at"),
        )
    }
                       FROM {_T["Feedback"]} fb WHERE fb.customer_id=%(cid)s ORDER BY fb.received_at DESC LIMIT 1)""",
    recent_complaint=f"""EXISTS (SELECT 1 FROM {_T["Feedback"]} fb
                                 WHERE fb.customer_id=%(cid)s AND fb.received_at>=%(window)s
                                   AND fb.sentiment='{Sentiment.NEGATIVE}')""",
)
_CONTACT_SQL = _compact(f"""
WITH ins AS (
    INSERT INTO {_T["Interaction"]} AS t (id,customer_id,channel,started_at,agent_id,identifiers,verified,ivr,source,
                                          call_id,created_at)
    SELECT %(id)s,%(cid)s,%(channel)s,%(now)s,%(agent_id)s,%(identifiers)s::jsonb,%(verified)s::jsonb,%(ivr)s::jsonb,
            '{CONTACT_SOURCE}',%(call_id)s,%(now)s
    WHERE NOT EXISTS (SELECT 1 FROM {_T["Interaction"]} e
                      WHERE e.source='{CONTACT_SOURCE}' AND e.call_id=%(erased_call_id)s)
    ON CONFLICT (source,call_id) WHERE call_id IS NOT NULL DO UPDATE SET
        customer_id=COALESCE(EXCLUDED.customer_id,t.customer_id),
        verified=t.verified||coalesce((SELECT jsonb_agg(v) FROM jsonb_array_elements(EXCLUDED.verified) v
                                       WHERE NOT t.verified@>jsonb_build_array(v)),'[]'),
        identifiers=t.identifiers||EXCLUDED.identifiers,
        ivr=t.ivr||EXCLUDED.ivr
    WHERE t.customer_id IS NULL OR EXCLUDED.customer_id IS NULL OR t.customer_id=EXCLUDED.customer_id
    RETURNING id,verified
), contact AS (
    SELECT id,verified FROM ins
), audit AS (
    INSERT INTO {_T["AccessAudit"]} (at,actor_id,action,customer_id,interaction_id,detail)
    SELECT %(now)s,%(actor_id)s,'{AuditAction.LOOKUP}',%(cid)s,contact.id,%(detail)s::jsonb FROM contact
    RETURNING 1
)
SELECT
    (SELECT id FROM contact),
    (SELECT verified FROM contact),
    set_config('synchronous_commit',
               CASE WHEN %(async_commit)s THEN 'off' ELSE current_setting('synchronous_commit') END,true),
    {_CARD}
""")
# The statement is prepared (psycopg, server-side binding), but with plan_cache_mode
# 'auto' PostgreSQL keeps re-planning it for every call (its custom plans look cheaper
# than the generic one), and planning this statement costs more than running it:
# measured at 1M customers, 1.6 ms of backend CPU per lookup re-planned against
# 0.5 ms with the generic plan, whose every read is still an index scan (EXPLAIN test).
# SET LOCAL keeps the setting to this statement's transaction.
_GENERIC_PLAN_SQL = "SET LOCAL plan_cache_mode = force_generic_plan"


class CardJsonLoader(JsonLoader):
    """The card arrives as one json value, built in SQL from typed columns (text, counts, times:
    no integer beyond 64 bits), so orjson decodes it exactly, several times faster than json."""

    _loads = staticmethod(orjson.loads)


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
) -> OpenedContact:
    """Open (or find, by call_id) the contact, audit the lookup, read the card's rows."""
    if connection.vendor != "postgresql":
        return contact_open_and_card_orm(**locals())
    params = {
        "id": time_ordered_uuid(),
        "cid": customer_id,
        "channel": channel,
        "call_id": call_id,
        "erased_call_id": erased_key(call_id) if call_id else None,
        "agent_id": agent_id,
        "actor_id": actor_id,
        "identifiers": fastjson.dumps(dict(identifiers)).decode(),
        "verified": fastjson.dumps(list(verified)).decode(),
        "ivr": fastjson.dumps(dict(ivr)).decode(),
        "detail": fastjson.dumps(dict(audit_detail)).decode(),
        "now": now,
        "window": window_start,
        "intent": intent,
        "async_commit": settings.CRM_LOOKUP_ASYNC_COMMIT and not connection.in_atomic_block,
    }
    # One round trip (psycopg pipeline): the SET LOCAL and the statement share one
    # transaction, so the generic-plan setting ends with it (see _GENERIC_PLAN_SQL).
    # ON CONFLICT ... DO UPDATE returns the row whether it was inserted or repeated.
    with connection.cursor() as cursor, cursor.cursor.connection.pipeline():
        cursor.cursor.adapters.register_loader("json", CardJsonLoader)
        cursor.execute(_GENERIC_PLAN_SQL)
        cursor.execute(_CONTACT_SQL, params)
        interaction_id, verified_now, _commit_mode, card = cursor.fetchone()
    if interaction_id is None:
        repeat_refuse(call_id)
    # Django reads jsonb as text (its JSONField decodes it); json columns come decoded.
    verified_now = json.loads(verified_now) if isinstance(verified_now, str) else verified_now
    return OpenedContact(interaction_id=interaction_id, rows=CardRows(**card), verified=verified_now)


def repeat_refuse(call_id: str | None) -> None:
    """A repeat of a call that may not be served: its customer was erased (404) or it is
    linked to someone other than this lookup identifies (409). Nothing was written."""
    if call_id and Interaction.objects.filter(source=CONTACT_SOURCE, call_id=erased_key(call_id)).exists():
        raise NotFound("This call's customer has been erased.", field="call_id")
    raise Conflict(
        "This call is already linked to another customer; a repeat does not move it "
        "(an agent or supervisor may relink it in the wrap-up, with customer_id).",
        field="call_id",
    )


# --- the portable path -------------------------------------------------------------------


def contact_open_and_card_orm(
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
) -> OpenedContact:
    """The portable path (SQLite demo, and the parity test on PostgreSQL): several ORM queries."""
    with transaction.atomic():
        interaction = None
        if call_id:
            interaction = (
                Interaction.objects.select_for_update()
                .filter(source=CONTACT_SOURCE, call_id__in=[call_id, erased_key(call_id)])
                .first()
            )
        if interaction is not None:
            # A repeat of the call: what it learnt sticks (as ON CONFLICT DO UPDATE above), but a
            # linked contact never moves and an erased customer's call stays closed; verification
            # only ever adds (a transfer keeps what the first agent verified).
            if interaction.call_id != call_id or (
                customer_id is not None
                and interaction.customer_id is not None
                and interaction.customer_id != customer_id
            ):
                repeat_refuse(call_id)
            interaction.customer_id = customer_id or interaction.customer_id
            interaction.verified = interaction.verified + [k for k in verified if k not in interaction.verified]
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
    rows = card_rows_orm(customer_id, exclude_interaction_id=interaction.pk, window_start=window_start, intent=intent)
    return OpenedContact(interaction_id=interaction.pk, rows=rows, verified=list(interaction.verified))


def card_rows_orm(
    customer_id: uuid.UUID | None,
    *,
    exclude_interaction_id: uuid.UUID | None = None,
    window_start: dt.datetime,
    intent: str | None,
) -> CardRows:
    """The card's rows through the ORM, field for field those of the SQL path."""
    intent_known = bool(intent) and ContactReason.objects.filter(code=intent).exists()
    customer = Customer.objects.filter(pk=customer_id).first() if customer_id else None
    if customer is None:
        return CardRows(
            customer=None,
            identities=[],
            preferences={},
            facts=[],
            open_cases=[],
            recent=[],
            reason_counts={},
            intent_known=intent_known,
            last_feedback=None,
            recent_complaint=False,
        )
    cases = (
        Case.objects.filter(customer=customer, status__in=OPEN_CASE)
        .order_by("-opened_at")
        .annotate(recent=Count("interactions", filter=Q(interactions__started_at__gte=window_start)))[:OPEN_CASES_LIMIT]
    )
    history = Interaction.objects.filter(customer=customer).filter(contact_counts())
    if exclude_interaction_id is not None:
        history = history.exclude(pk=exclude_interaction_id)
    last = Feedback.objects.filter(customer=customer).order_by("-received_at").first()
    return CardRows(
        customer=CustomerRow(
            display_name=customer.display_name,
            preferred_name=customer.preferred_name,
            language=customer.language,
            tier=customer.tier,
            is_new=customer.created_at >= window_start,
        ),
        identities=[
            IdentityRow(
                kind=i.kind,
                value=i.normalized,
                verified=i.verified_at is not None,
                verified_at=iso(i.verified_at),
                verified_via=i.verified_via,
            )
            for i in Identity.objects.filter(customer=customer).order_by("kind", "created_at")
        ],
        preferences=dict(
            Preference.objects.filter(customer=customer, is_current=True).order_by("key").values_list("key", "value")
        ),
        facts=[
            FactRow(
                key=f.key,
                value=f.value,
                channel=f.channel,
                interaction_id=str(f.interaction_id) if f.interaction_id else None,
                import_ref=f.import_ref,
                recorded_at=iso(f.recorded_at),
            )
            for f in Fact.objects.filter(customer=customer, is_current=True).order_by("key")
        ],
        open_cases=[
            CaseRow(id=str(c.pk), subject=c.subject, status=c.status, opened_at=iso(c.opened_at), recent=c.recent)
            for c in cases
        ],
        recent=[
            RecentRow(
                id=str(i.pk),
                channel=i.channel,
                started_at=iso(i.started_at),
                agent=i.agent.username if i.agent else None,
                reason=i.reason.code if i.reason else None,
                summary=i.summary,
                outcome=i.outcome,
            )
            for i in history.select_related("agent", "reason").order_by("-started_at")[:RECENT_LIMIT]
        ],
        reason_counts=dict(
            history.filter(started_at__gte=window_start, reason__isnull=False)
            .values_list("reason__code")
            .annotate(n=Count("id"))
            .values_list("reason__code", "n")
        ),
        intent_known=intent_known,
        last_feedback=(
            FeedbackRow(
                rating=last.rating,
                nps=last.nps,
                sentiment=last.sentiment or None,
                text=last.text[:CARD_FEEDBACK_TEXT],
                received_at=iso(last.received_at),
            )
            if last
            else None
        ),
        recent_complaint=Feedback.objects.filter(
            customer=customer, sentiment=Sentiment.NEGATIVE, received_at__gte=window_start
        ).exists(),
    )


# --- the card ------------------------------------------------------------------------------


def card_from_rows(customer_id: uuid.UUID, rows: CardRows, *, intent: str | None) -> dict[str, Any]:
    """The card's part of the response (customer, cases, recent contacts, flags, feedback)."""
    customer = rows.customer
    assert customer is not None, "a card needs a customer"
    reason_counts = rows.reason_counts
    if intent and intent in reason_counts:
        repeat = reason_counts[intent] >= 2
    elif intent and rows.intent_known:
        repeat = False
    else:
        repeat = any(n >= 2 for n in reason_counts.values())
    repeat = repeat or any(case["recent"] >= 2 for case in rows.open_cases)
    repeat_about = repeat_reason(reason_counts, intent=intent) if repeat else None
    flags = []
    if repeat:
        flags.append("repeat_contact")
    if rows.recent_complaint:
        flags.append("recent_complaint")
    if customer["tier"] == Tier.VIP:
        flags.append("vip")
    if str(rows.preferences.get("do_not_call", "")).strip().lower() in TRUTHY:
        flags.append("do_not_call")
    if customer["is_new"]:
        flags.append("new_customer")
    last = rows.last_feedback
    return {
        "customer": {
            "id": str(customer_id),
            "display_name": customer["display_name"],
            "preferred_name": customer["preferred_name"],
            "language": customer["language"],
            "tier": customer["tier"],
            "identities": [
                {
                    "kind": i["kind"],
                    "value": i["value"],
                    "verified": i["verified"],
                    "verified_at": i["verified_at"],
                    "verified_via": i["verified_via"] or None,
                }
                for i in rows.identities
            ],
            "preferences": dict(rows.preferences),
            "facts": [
                {
                    "key": f["key"],
                    "value": f["value"],
                    "source": {
                        "channel": f["channel"] or None,
                        "interaction_id": f["interaction_id"],
                        "imported_from": f["import_ref"] or None,
                    },
                    "recorded_at": f["recorded_at"],
                }
                for f in rows.facts
            ],
        },
        "open_cases": [
            {"id": c["id"], "subject": c["subject"], "status": c["status"], "opened_at": c["opened_at"]}
            for c in rows.open_cases
        ],
        "recent_interactions": [
            {
                "id": r["id"],
                "channel": r["channel"],
                "started_at": r["started_at"],
                "agent": r["agent"],
                "reason": r["reason"],
                "summary": r["summary"],
                "outcome": r["outcome"] or None,
            }
            for r in rows.recent
        ],
        "flags": flags,
        "repeat": repeat_about,
        "last_feedback": (
            {
                "rating": last["rating"],
                "nps": last["nps"],
                "sentiment": last["sentiment"],
                "text": last["text"],
                "received_at": last["received_at"],
            }
            if last is not None
            else None
        ),
    }


def repeat_reason(reason_counts: Mapping[str, int], *, intent: str | None) -> dict[str, Any] | None:
    """What a repeat contact is about, for the agent to say so: the IVR's intent, else the most frequent reason.

    None when the repeat comes from an open case only (the card lists the case).
    """
    if intent and reason_counts.get(intent, 0) >= 2:
        code = intent
    else:
        frequent = sorted(((n, code) for code, n in reason_counts.items() if n >= 2), reverse=True)
        if not frequent:
            return None
        code = frequent[0][1]
    return {"reason": code, "count": reason_counts[code]}


def customer_card(customer: Customer, *, exclude_interaction_id=None, ivr: Mapping | None = None) -> dict[str, Any]:
    """The card of one customer without opening a contact (read-only; for pages that show it again)."""
    intent = (ivr or {}).get("intent")
    intent = intent if isinstance(intent, str) else None
    rows = card_rows_orm(
        customer.pk,
        exclude_interaction_id=exclude_interaction_id,
        window_start=timezone.now() - dt.timedelta(days=settings.CRM_REPEAT_WINDOW_DAYS),
        intent=intent,
    )
    return card_from_rows(customer.pk, rows, intent=intent)
