"""The screen-pop lookup: who is calling, and everything the agent needs not to ask again."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.utils import timezone

from context import selectors
from context.selectors import IdentityMatch
from crm import card
from crm.card import CONTACT_SOURCE  # noqa: F401 - re-exported: call events share the namespace
from crm.exceptions import DomainError, NotFound
from crm.services import identifiers_normalize

STRONG_KINDS = ("customer_id", "account")


def match_resolve(
    rows: Iterable[IdentityMatch], verified: Iterable[str]
) -> tuple[str, list[Any], dict[Any, list[str]]]:
    """Decide ('unique'|'ambiguous'|'none', candidate ids, matched_on per candidate).

    Strong identifiers (customer_id, account, anything verified) outrank phone and
    e-mail; strong ones that disagree make the match ambiguous. Among weak ones,
    identifiers that agree on one customer pick them (an e-mail picks one member of
    a household sharing a phone); otherwise every holder is a candidate.
    """
    verified = set(verified)
    by_kind: dict[str, set] = {}
    for row in rows:
        by_kind.setdefault(row.kind, set()).add(row.customer_id)
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
    PostgreSQL whatever the history size (see context.selectors and crm.card).
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
    if customer_id is not None and not any(row.kind == "customer_id" for row in rows):
        raise NotFound(f"No customer with id '{customer_id}'.", field="customer_id")
    names = {row.customer_id: row.display_name for row in rows}
    match, candidate_ids, matched_on_by_id = match_resolve(rows, verified)
    chosen = candidate_ids[0] if match == "unique" else None
    matched_on = matched_on_by_id.get(chosen, []) if chosen else sorted({row.kind for row in rows})

    now = timezone.now()
    window_start = now - dt.timedelta(days=settings.CRM_REPEAT_WINDOW_DAYS)
    intent = ivr.get("intent") if isinstance(ivr.get("intent"), str) else None
    detail: dict[str, Any] = {"match": match, "candidates": len(candidate_ids)}
    if match == "ambiguous":
        detail["candidate_ids"] = sorted(str(cid) for cid in candidate_ids)
    opened = card.contact_open_and_card(
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

    # Verification sticks to the contact: a repeat of the call (a transfer) keeps what the
    # IVR or an agent verified earlier on it (opened.verified is the contact's whole list).
    verified_on_call = list(opened.verified)
    held = {i["kind"] for i in opened.rows.identities}
    do_not_ask = set(matched_on) | set(verified_on_call) | set(ivr)
    response: dict[str, Any] = {
        "match": match,
        "matched_on": matched_on,
        "interaction_id": str(opened.interaction_id),
        "customer": None,
        "candidates": [],
        "verified": match == "unique" and any(k in matched_on or k in held for k in verified_on_call),
        "verified_on_call": verified_on_call if match == "unique" else [],
        "do_not_ask": [],
        "ivr": ivr,
        "open_cases": [],
        "recent_interactions": [],
        "flags": [],
        "repeat": None,
        "last_feedback": None,
    }
    if chosen is not None:
        response.update(card.card_from_rows(chosen, opened.rows, intent=intent))
        do_not_ask |= {fact["key"] for fact in response["customer"]["facts"]}
    elif match == "ambiguous":
        hints = {row.customer_id: row for row in rows}
        response["candidates"] = [
            {
                "id": str(cid),
                "display_name": names[cid],
                "matched_on": matched_on_by_id[cid],
                # What tells them apart, for the agent to ask (issue 12).
                "account_last4": hints[cid].account_last4,
                "email_domain": hints[cid].email_domain,
                "last_contact_at": card.iso(hints[cid].last_contact_at) if hints[cid].last_contact_at else None,
            }
            for cid in sorted(candidate_ids, key=lambda c: (names[c], str(c)))
        ]
    response["do_not_ask"] = sorted(do_not_ask)
    return response
