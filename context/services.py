"""The screen-pop lookup: who is calling, and everything the agent needs not to ask again."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.utils import timezone

from context import selectors
from context.selectors import CONTACT_SOURCE  # noqa: F401 - re-exported: call events share the namespace
from crm.exceptions import DomainError, NotFound
from crm.models import TRUTHY, Customer, Tier
from crm.services import identifiers_normalize

STRONG_KINDS = ("customer_id", "account")
RECENT_LIMIT = selectors.RECENT_LIMIT


def match_resolve(
    rows: Iterable[tuple[str, Any, str]], verified: Iterable[str]
) -> tuple[str, list[Any], dict[Any, list[str]]]:
    """Decide ('unique'|'ambiguous'|'none', candidate ids, matched_on per candidate).

    Strong identifiers (customer_id, account, anything verified) outrank phone and
    e-mail; strong ones that disagree make the match ambiguous. Among weak ones,
    identifiers that agree on one customer pick them (an e-mail picks one member of
    a household sharing a phone); otherwise every holder is a candidate.
    """
    verified = set(verified)
    by_kind: dict[str, set] = {}
    for kind, cid, _name in rows:
        by_kind.setdefault(kind, set()).add(cid)
    if not by_kind:
        return "none", [], {}
    strong = [k for k in by_kind if k in STRONG_KINDS or k in verified]
    deciding = strong or list(by_kind)
    agreed = set.intersection(*(by_kind[k] for k in deciding))
    weak = [k for k in by_kind if k not in deciding]
    if len(agreed) > 1 and weak:
        # Strong identifiers shared by several (a verified household phone): a weak one
        # that only one of them holds tells them apart.
        narrowed = agreed & set.intersection(*(by_kind[k] for k in weak))
        agreed = narrowed if len(narrowed) == 1 else agreed
    if len(agreed) == 1:
        candidates = agreed
    elif strong:
        candidates = set().union(*(by_kind[k] for k in strong))
    else:
        candidates = agreed or set().union(*(by_kind[k] for k in deciding))
    matched_on = {cid: sorted(k for k in by_kind if cid in by_kind[k]) for cid in candidates}
    if len(candidates) == 1:
        return "unique", list(candidates), matched_on
    return "ambiguous", list(candidates), matched_on


def _user_id(user) -> int | None:
    return user.pk if user is not None and getattr(user, "is_authenticated", False) else None


def context_lookup(
    *,
    actor,
    channel: str = "phone",
    phone: str | None = None,
    email: str | None = None,
    account: str | None = None,
    customer_id=None,
    call_id: str | None = None,
    verified: Iterable[str] = (),
    ivr: Mapping[str, Any] | None = None,
    agent=None,
    withheld: bool = False,
) -> dict[str, Any]:
    """Resolve the caller, open (or find, by call_id) the contact, audit, and build the card.

    `withheld`: the telephony reports a call whose number is withheld; it still pops
    (match "none") when it has a call_id, so the agent can identify the caller.

    Returns the response body as plain JSON-ready data. Input is validated before
    anything is written: a refused lookup opens nothing. Two round trips to
    PostgreSQL whatever the history size (see context.selectors).
    """
    identifiers = identifiers_normalize({"phone": phone, "email": email, "account": account})
    if customer_id is not None and not isinstance(customer_id, uuid.UUID):
        try:
            customer_id = uuid.UUID(str(customer_id))
        except ValueError:
            raise DomainError(f"'{customer_id}' is not a customer id.", field="customer_id") from None
    if not identifiers and customer_id is None and not (withheld and call_id):
        raise DomainError("Give at least one of phone, email, account, customer_id.", field="phone")
    verified = list(dict.fromkeys(verified or ()))
    ivr = dict(ivr or {})
    call_id = call_id or None

    rows = selectors.identity_rows(identifiers, customer_id)
    if customer_id is not None and not any(kind == "customer_id" for kind, _cid, _name in rows):
        raise NotFound(f"No customer with id '{customer_id}'.", field="customer_id")
    names = {cid: name for _kind, cid, name in rows}
    match, candidate_ids, matched_on_by_id = match_resolve(rows, verified)
    chosen = candidate_ids[0] if match == "unique" else None
    matched_on = matched_on_by_id.get(chosen, []) if chosen else sorted({k for k, _c, _n in rows})

    now = timezone.now()
    window_start = now - dt.timedelta(days=settings.CRM_REPEAT_WINDOW_DAYS)
    intent = ivr.get("intent") if isinstance(ivr.get("intent"), str) else None
    detail: dict[str, Any] = {"match": match, "candidates": len(candidate_ids)}
    if match == "ambiguous":
        detail["candidate_ids"] = sorted(str(cid) for cid in candidate_ids)
    raw = selectors.contact_open_and_card(
        customer_id=chosen,
        channel=channel,
        call_id=call_id,
        agent_id=_user_id(agent) or _user_id(actor),
        actor_id=_user_id(actor),
        identifiers=identifiers,
        verified=verified,
        ivr=ivr,
        audit_detail=detail,
        now=now,
        window_start=window_start,
        intent=intent,
    )

    do_not_ask = set(matched_on) | set(verified) | set(ivr)
    response: dict[str, Any] = {
        "match": match,
        "matched_on": matched_on,
        "interaction_id": str(raw["interaction_id"]),
        "customer": None,
        "candidates": [],
        "verified": match == "unique" and any(k in matched_on for k in verified),
        "do_not_ask": [],
        "ivr": ivr,
        "open_cases": [],
        "recent_interactions": [],
        "flags": [],
        "last_feedback": None,
    }
    if chosen is not None:
        response.update(card_from_rows(chosen, raw, intent=intent))
        do_not_ask |= {fact["key"] for fact in response["customer"]["facts"]}
    elif match == "ambiguous":
        response["candidates"] = [
            {"id": str(cid), "display_name": names[cid], "matched_on": matched_on_by_id[cid]}
            for cid in sorted(candidate_ids, key=lambda c: (names[c], str(c)))
        ]
    response["do_not_ask"] = sorted(do_not_ask)
    return response


def card_from_rows(customer_id, raw: Mapping[str, Any], *, intent: str | None) -> dict[str, Any]:
    """The card's part of the response (customer, cases, recent contacts, flags, feedback) from raw rows."""
    display_name, preferred_name, language, tier, is_new = raw["customer"]
    preferences = dict(raw["preferences"])
    reason_counts: dict[str, int] = raw["reason_counts"]
    open_cases = raw["open_cases"]

    if intent and intent in reason_counts:
        repeat = reason_counts[intent] >= 2
    elif intent and raw["intent_known"]:
        repeat = False
    else:
        repeat = any(n >= 2 for n in reason_counts.values())
    repeat = repeat or any(case[4] >= 2 for case in open_cases)
    flags = []
    if repeat:
        flags.append("repeat_contact")
    if raw["recent_complaint"]:
        flags.append("recent_complaint")
    if tier == Tier.VIP:
        flags.append("vip")
    if str(preferences.get("do_not_call", "")).strip().lower() in TRUTHY:
        flags.append("do_not_call")
    if is_new:
        flags.append("new_customer")
    last = raw["last_feedback"]
    return {
        "customer": {
            "id": str(customer_id),
            "display_name": display_name,
            "preferred_name": preferred_name,
            "language": language,
            "tier": tier,
            "identities": [{"kind": k, "value": v, "verified": ver} for k, v, ver in raw["identities"]],
            "preferences": preferences,
            "facts": [
                {
                    "key": key,
                    "value": value,
                    "source": {"channel": channel or None, "interaction_id": str(iid) if iid else None},
                    "recorded_at": recorded_at,
                }
                for key, value, channel, iid, recorded_at in raw["facts"]
            ],
        },
        "open_cases": [
            {"id": str(cid), "subject": subject, "status": status, "opened_at": opened_at}
            for cid, subject, status, opened_at, _recent in open_cases
        ],
        "recent_interactions": [
            {
                "id": str(iid),
                "channel": channel,
                "started_at": started_at,
                "agent": agent,
                "reason": reason,
                "summary": summary,
                "outcome": outcome or None,
            }
            for iid, channel, started_at, agent, reason, summary, outcome in raw["recent"]
        ],
        "flags": flags,
        "last_feedback": (
            {"rating": last[0], "sentiment": last[1] or None, "received_at": last[2]} if last is not None else None
        ),
    }


def customer_card(customer: Customer, *, exclude_interaction_id=None, ivr: Mapping | None = None) -> dict[str, Any]:
    """The card of one customer without opening a contact (read-only; for pages that show it again)."""
    now = timezone.now()
    intent = (ivr or {}).get("intent")
    intent = intent if isinstance(intent, str) else None
    raw = selectors.card_rows_orm(
        customer.pk,
        exclude_interaction_id=exclude_interaction_id,
        window_start=now - dt.timedelta(days=settings.CRM_REPEAT_WINDOW_DAYS),
        intent=intent,
    )
    return card_from_rows(customer.pk, raw, intent=intent)
