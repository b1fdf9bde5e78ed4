"""Identity resolution behind the screen-pop lookup: who holds the identifiers given.

A lookup costs two round trips whatever the customer's history:

1. `identity_rows` (here) — which live customers hold the given identifiers (and
   where a given customer_id leads after merges);
2. `crm.card.contact_open_and_card` — opens the interaction (idempotent on call_id),
   appends the access-audit row and reads the whole card, in one statement.

On PostgreSQL both are single hand-written statements whose text never varies
(absent identifiers are bound as NULL), so psycopg's server-side binding
prepares them once per connection. Other databases (the SQLite demo) get the
same answers from a portable ORM path.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import NamedTuple

from django.db import connection
from django.db.models import Q

from crm.models import CONTACT_SOURCE, Customer, Identity, IdentityKind, Interaction, contact_counts

MERGE_CHAIN_LIMIT = 10


class IdentityMatch(NamedTuple):
    """One identifier that matched: its kind ('customer_id' for a given id) and the live holder.

    When several customers match (a household), each row also says what tells its holder
    apart (issue 12): the last 4 of their account (a verified one first), their e-mail's
    domain, when they last had a contact that counts. None when only one customer matched.
    """

    kind: str
    customer_id: uuid.UUID
    display_name: str
    account_last4: str | None = None
    email_domain: str | None = None
    last_contact_at: dt.datetime | None = None


def _postgres() -> bool:
    return connection.vendor == "postgresql"


# --- 1. identity resolution ------------------------------------------------------------

# Served by identity_lookup_idx (kind, normalized) and the customer primary key; the
# merge chain walks the primary key. Absent identifiers are NULL and match nothing.
_CUSTOMER, _IDENTITY, _INTERACTION = Customer._meta.db_table, Identity._meta.db_table, Interaction._meta.db_table
# The household hints are read only when the rows name more than one customer: PostgreSQL
# evaluates a CASE branch's subquery only when the branch is taken, so a unique caller costs
# nothing more. Served by identity_once_per_customer and interaction_recent_idx.
_IDENTITY_SQL = f"""
WITH RECURSIVE chain (id, merged_into_id, erased_at, display_name, depth) AS (
    SELECT id, merged_into_id, erased_at, display_name, 0 FROM {_CUSTOMER} WHERE id = %(customer_id)s
  UNION ALL
    SELECT c.id, c.merged_into_id, c.erased_at, c.display_name, chain.depth + 1
    FROM {_CUSTOMER} c JOIN chain ON c.id = chain.merged_into_id
    WHERE chain.depth < {MERGE_CHAIN_LIMIT}
), m AS (
SELECT 'customer_id' AS kind, id AS customer_id, display_name
FROM chain WHERE merged_into_id IS NULL AND erased_at IS NULL
UNION ALL
SELECT i.kind, c.id, c.display_name
FROM {_IDENTITY} i JOIN {_CUSTOMER} c ON c.id = i.customer_id
WHERE ((i.kind = '{IdentityKind.PHONE}' AND i.normalized = %(phone)s)
    OR (i.kind = '{IdentityKind.EMAIL}' AND i.normalized = %(email)s)
    OR (i.kind = '{IdentityKind.ACCOUNT}' AND i.normalized = %(account)s))
  AND c.erased_at IS NULL AND c.merged_into_id IS NULL
), n AS (SELECT count(DISTINCT customer_id) AS holders FROM m)
SELECT m.kind, m.customer_id, m.display_name,
  CASE WHEN n.holders > 1 THEN (SELECT right(a.normalized, 4) FROM {_IDENTITY} a
       WHERE a.customer_id = m.customer_id AND a.kind = '{IdentityKind.ACCOUNT}'
       ORDER BY a.verified_at IS NULL, a.created_at LIMIT 1) END,
  CASE WHEN n.holders > 1 THEN (SELECT split_part(e.normalized, '@', 2) FROM {_IDENTITY} e
       WHERE e.customer_id = m.customer_id AND e.kind = '{IdentityKind.EMAIL}' ORDER BY e.created_at LIMIT 1) END,
  CASE WHEN n.holders > 1 THEN (SELECT x.started_at FROM {_INTERACTION} x
       WHERE x.customer_id = m.customer_id AND (x.source <> '{CONTACT_SOURCE}' OR x.reason_id IS NOT NULL
             OR x.outcome <> '' OR x.summary <> '')
       ORDER BY x.started_at DESC LIMIT 1) END
FROM m, n
"""  # noqa: S608 - only module constants are formatted in; every value is a bound parameter


def identity_rows(identifiers: Mapping[str, str], customer_id: uuid.UUID | None) -> list[IdentityMatch]:
    """The live holder of each identifier that matched.

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
                IdentityMatch(kind, cid if isinstance(cid, uuid.UUID) else uuid.UUID(str(cid)), name, *hints)
                for kind, cid, name, *hints in cursor
            ]
    rows: list[IdentityMatch] = []
    if customer_id is not None:
        customer = Customer.objects.filter(pk=customer_id).first()
        for _ in range(MERGE_CHAIN_LIMIT):
            if customer is None or customer.merged_into_id is None:
                break
            customer = Customer.objects.filter(pk=customer.merged_into_id).first()
        if customer is not None and customer.is_live:
            rows.append(IdentityMatch("customer_id", customer.pk, customer.display_name))
    if identifiers:
        condition = Q()
        for kind, normalized in identifiers.items():
            condition |= Q(kind=kind, normalized=normalized)
        rows.extend(
            IdentityMatch(*row)
            for row in Identity.objects.filter(condition)
            .filter(customer__erased_at__isnull=True, customer__merged_into__isnull=True)
            .values_list("kind", "customer_id", "customer__display_name")
        )
    if len({row.customer_id for row in rows}) > 1:
        hints = {cid: _household_hints(cid) for cid in {row.customer_id for row in rows}}
        rows = [IdentityMatch(*row[:3], *hints[row.customer_id]) for row in rows]
    return rows


def _household_hints(customer_id: uuid.UUID) -> tuple[str | None, str | None, dt.datetime | None]:
    """The ORM path's account_last4, email_domain, last_contact_at (as the SQL above)."""
    identities = Identity.objects.filter(customer_id=customer_id)
    account = (
        identities.filter(kind=IdentityKind.ACCOUNT, verified_at__isnull=False).order_by("created_at").first()
        or identities.filter(kind=IdentityKind.ACCOUNT).order_by("created_at").first()
    )
    email = identities.filter(kind=IdentityKind.EMAIL).order_by("created_at").first()
    last = (
        Interaction.objects.filter(customer_id=customer_id)
        .filter(contact_counts())
        .order_by("-started_at")
        .values_list("started_at", flat=True)
        .first()
    )
    return (
        account.normalized[-4:] if account else None,
        email.normalized.partition("@")[2] if email else None,
        last,
    )
