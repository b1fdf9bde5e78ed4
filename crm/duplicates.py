"""Finding customers entered twice.

Candidates are live customers who share a normalized phone or e-mail (the
database groups them). Each pair is then scored by how alike the names are
(rapidfuzz): near-identical names with a shared identifier are almost surely
one person; different names on one phone are more often a household, so they
are listed below, for a supervisor to judge, and never merged automatically.
"""

from __future__ import annotations

import itertools
import unicodedata

from django.db.models import Count
from rapidfuzz import fuzz

from crm.merges import dismissed_pairs
from crm.models import Customer, Identity, IdentityKind, customer_live_q

# Names at least this alike (0-100, token order ignored) with a shared identifier: "likely the same person".
LIKELY_SCORE = 85
# A number shared by more customers than this is a switchboard or a placeholder, not a duplicate.
MAX_GROUP = 8
MAX_GROUPS = 300


def _plain(name: str) -> str:
    """Lower case without accents or punctuation, so 'José  O'Neil' and 'jose oneil' compare equal."""
    text = unicodedata.normalize("NFKD", name or "").encode("ascii", "ignore").decode().lower()
    return " ".join("".join(ch if ch.isalnum() or ch.isspace() else "" for ch in text).split())


def name_similarity(a: Customer, b: Customer) -> int:
    """0-100. 'A. Garcia' against 'Aiko Garcia' compares initials, since one side gave only an initial."""
    left, right = _plain(a.display_name).split(), _plain(b.display_name).split()
    if not left or not right:
        return 0
    score = fuzz.token_sort_ratio(" ".join(left), " ".join(right))
    if len(left) > 1 and len(right) > 1 and (len(left[0]) == 1 or len(right[0]) == 1):
        initials = fuzz.token_sort_ratio(" ".join([left[0][0], *left[1:]]), " ".join([right[0][0], *right[1:]]))
        score = max(score, initials * 0.9)
    return round(score)


def duplicate_pairs(*, likely_only: bool = False, limit: int = 100) -> list[dict]:
    """Pairs of live customers sharing a phone or e-mail, most likely duplicates first.

    Two queries whatever the table size: the grouped identifiers, then their
    identities with customers; then one more for contact counts.
    """
    groups = list(
        Identity.objects.filter(
            customer_live_q("customer__"),
            kind__in=[IdentityKind.PHONE, IdentityKind.EMAIL],
        )
        .values("kind", "normalized")
        .annotate(customers=Count("customer_id", distinct=True))
        .filter(customers__gt=1, customers__lte=MAX_GROUP)
        .order_by("kind", "normalized")[:MAX_GROUPS]
    )
    if not groups:
        return []
    wanted = {(g["kind"], g["normalized"]) for g in groups}
    members: dict[tuple[str, str], list[Customer]] = {}
    rows = (
        Identity.objects.filter(
            normalized__in={n for _, n in wanted}, kind__in=[IdentityKind.PHONE, IdentityKind.EMAIL]
        )
        .filter(customer_live_q("customer__"))
        .select_related("customer")
    )
    for identity in rows:
        key = (identity.kind, identity.normalized)
        if key in wanted:
            members.setdefault(key, []).append(identity.customer)

    pairs: dict[tuple, dict] = {}
    for (kind, normalized), customers in members.items():
        for a, b in itertools.combinations(sorted(customers, key=lambda c: (c.created_at, str(c.pk))), 2):
            pair = pairs.setdefault(
                (a.pk, b.pk), {"survivor": a, "duplicate": b, "shared": [], "score": name_similarity(a, b)}
            )
            pair["shared"].append({"kind": kind, "value": normalized})
    # issue 13: pairs a supervisor judged to be different people are not offered again.
    dismissed = dismissed_pairs()
    found = [p for (a, b), p in pairs.items() if (min(a, b), max(a, b)) not in dismissed]
    for pair in found:
        pair["likely"] = pair["score"] >= LIKELY_SCORE
    if likely_only:
        found = [p for p in found if p["likely"]]
    found.sort(key=lambda p: (not p["likely"], -p["score"], -len(p["shared"]), p["survivor"].display_name))
    found = found[:limit]

    ids = {c.pk for p in found for c in (p["survivor"], p["duplicate"])}
    contacts = dict(Customer.objects.filter(pk__in=ids).annotate(n=Count("interactions")).values_list("pk", "n"))
    for pair in found:
        pair["survivor_contacts"] = contacts.get(pair["survivor"].pk, 0)
        pair["duplicate_contacts"] = contacts.get(pair["duplicate"].pk, 0)
    return found
