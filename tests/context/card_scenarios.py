"""Fixed-id, fixed-clock customers for the card tests (golden output, SQL/ORM parity).

Every id and timestamp is fixed so a lookup's response is the same bytes on every
run: the golden file records it from the code before the card moved to crm/.
"""

import datetime as dt
import uuid

from crm import privacy
from crm.models import Fact, Preference
from tests.factories import CaseFactory, CustomerFactory, FeedbackFactory, IdentityFactory, InteractionFactory, reason

NOW = dt.datetime(2026, 6, 15, 12, 0, 0, 123456, tzinfo=dt.UTC)


def uid(n: int) -> uuid.UUID:
    return uuid.UUID(int=n)


def ago(**delta) -> dt.datetime:
    return NOW - dt.timedelta(**delta)


def unique(agent):
    """Jim: identities, preferences, facts, a case, recent contacts, feedback (a complaint)."""
    jim = CustomerFactory(id=uid(1), display_name="James Okafor", preferred_name="Jim", tier="vip", language="en")
    IdentityFactory(customer=jim, kind="phone", value="+12125550100", normalized="+12125550100")
    IdentityFactory(customer=jim, kind="email", value="Jim@Example.com", normalized="jim@example.com", verified_at=NOW)
    IdentityFactory(customer=jim, kind="account", value="AC-1234-5678", normalized="AC12345678")
    case = CaseFactory(id=uid(2), customer=jim, subject="Router drops", opened_at=ago(days=3))
    first = InteractionFactory(
        id=uid(3), customer=jim, started_at=ago(days=2), agent=agent, reason=reason("billing"), case=case,
        summary="Billed twice", outcome="resolved",
    )  # fmt: skip
    InteractionFactory(id=uid(4), customer=jim, started_at=ago(days=1), reason=reason("billing"), case=case)
    InteractionFactory(id=uid(5), customer=jim, channel="email", started_at=ago(days=90), summary="Old")
    Preference.objects.create(customer=jim, key="do_not_call", value="yes", recorded_at=ago(days=5))
    Preference.objects.create(customer=jim, key="channel", value="email", recorded_at=ago(days=5), is_current=False)
    Fact.objects.create(
        customer=jim, key="pet", value="Rex", channel="phone", interaction=first, recorded_at=ago(days=2)
    )
    Fact.objects.create(customer=jim, key="car", value="Volvo", recorded_at=ago(days=4))
    FeedbackFactory(customer=jim, rating=2, sentiment="negative", received_at=ago(days=1))
    return jim


def household():
    """Ann and Ben share a landline; Ben also has his own e-mail."""
    ann = CustomerFactory(id=uid(11), display_name="Ann Lee")
    ben = CustomerFactory(id=uid(12), display_name="Ben Lee")
    for person in (ann, ben):
        IdentityFactory(customer=person, kind="phone", value="+12125550199", normalized="+12125550199")
    IdentityFactory(customer=ben, kind="email", value="ben@example.com", normalized="ben@example.com")
    InteractionFactory(id=uid(13), customer=ben, started_at=ago(hours=5), summary="Asked about fibre")
    FeedbackFactory(customer=ben, rating=5, sentiment="", received_at=ago(days=40))
    return ann, ben


def merged(actor):
    """Old Meg was merged into Meg: the survivor's card carries both histories."""
    meg = CustomerFactory(id=uid(21), display_name="Meg Ryan", language="fr")
    old = CustomerFactory(id=uid(22), display_name="Meg Ryan (old)")
    IdentityFactory(customer=meg, kind="phone", value="+12125550300", normalized="+12125550300")
    IdentityFactory(customer=old, kind="account", value="AC-0000-0022", normalized="AC00000022")
    InteractionFactory(id=uid(23), customer=old, started_at=ago(days=6), reason=reason("billing"))
    InteractionFactory(id=uid(24), customer=meg, started_at=ago(days=7), reason=reason("billing"))
    privacy.customer_merge(actor=actor, survivor=meg, duplicate_id=old.pk)
    meg.refresh_from_db()
    return meg, old


def erased(actor):
    """Eve asked to be forgotten: her phone no longer finds anyone."""
    eve = CustomerFactory(id=uid(31), display_name="Eve Adams")
    IdentityFactory(customer=eve, kind="phone", value="+12125550400", normalized="+12125550400")
    InteractionFactory(id=uid(32), customer=eve, started_at=ago(days=2))
    privacy.customer_erase(actor=actor, customer=eve)
    return eve


def heavy(agent):
    """Hal: more open cases and contacts than the card shows, several reasons in the window."""
    hal = CustomerFactory(id=uid(41), display_name="Hal Jordan", preferred_name="Hal")
    IdentityFactory(customer=hal, kind="phone", value="+12125550500", normalized="+12125550500")
    codes = ["billing", "technical_fault", "billing", "outage", "technical_fault"]
    for n in range(25):
        status = "in_progress" if n % 3 else "open"
        CaseFactory(id=uid(1000 + n), customer=hal, subject=f"Case {n}", status=status, opened_at=ago(hours=n + 1))
    CaseFactory(id=uid(1100), customer=hal, subject="Closed", status="resolved", opened_at=ago(minutes=1))
    for n in range(12):
        InteractionFactory(
            id=uid(2000 + n), customer=hal, started_at=ago(days=n * 4, minutes=n), agent=agent if n % 2 else None,
            reason=reason(codes[n % len(codes)]) if n < 10 else None, case_id=uid(1000 + n % 3),
            summary=f"Contact {n}", outcome="resolved" if n % 2 else "",
        )  # fmt: skip
    for n in range(3):
        FeedbackFactory(customer=hal, rating=3 + n, sentiment="neutral", received_at=ago(days=n + 1))
    return hal
