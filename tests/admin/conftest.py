"""A customer with one of every kind of related row, for merge, erasure and 360 tests."""

import datetime as dt
from dataclasses import dataclass, field

import pytest
from django.test import Client
from django.utils import timezone

from crm import models
from tests.factories import (
    CaseFactory,
    CustomerFactory,
    FeedbackFactory,
    IdentityFactory,
    InteractionFactory,
    UserFactory,
    reason,
)


@dataclass
class Person:
    customer: models.Customer
    phone: str
    email: str
    account: str
    secrets: list[str] = field(default_factory=list)  # every personal string stored about them


def make_person(name: str, n: int, *, agent=None, days_ago: int = 3) -> Person:
    """A customer with identities, preference, fact, contacts, case, feedback, recognition,
    follow-up, recurring problem and audit rows, each holding a recognisable personal string."""
    now = timezone.now()
    agent = agent or UserFactory(username=f"agent{n}", role="agent")
    customer = CustomerFactory(display_name=name, preferred_name=name.split()[0], timezone="Europe/Paris")
    phone, email, account = f"+1212555{n:04d}", f"person{n}@example.com", f"ACC{n:06d}"
    IdentityFactory(customer=customer, kind="phone", value=phone, normalized=phone)
    IdentityFactory(customer=customer, kind="email", value=email.upper(), normalized=email, verified_at=now)
    IdentityFactory(customer=customer, kind="account", value=account, normalized=account)
    secrets = [name, phone, email, account, f"secret-summary-{n}", f"secret-feedback-{n}", f"secret-quote-{n}"]
    secrets += [f"secret-fact-{n}", f"secret-pref-{n}", f"secret-case-{n}", f"secret-note-{n}", f"secret-ivr-{n}"]
    billing = reason("billing")
    first = InteractionFactory(
        customer=customer,
        agent=agent,
        reason=billing,
        outcome="unresolved",
        started_at=now - dt.timedelta(days=days_ago + 2),
        summary=f"secret-summary-{n}",
        identifiers={"phone": phone},
        ivr={"postcode": f"secret-ivr-{n}"},
    )
    second = InteractionFactory(
        customer=customer, agent=agent, reason=billing, outcome="resolved", started_at=now - dt.timedelta(days=days_ago)
    )
    models.Fact.objects.create(
        customer=customer, key="router", value=f"secret-fact-{n}", recorded_at=now - dt.timedelta(days=days_ago),
        channel="phone", interaction=first,
    )  # fmt: skip
    models.Preference.objects.create(
        customer=customer, key="callback_window", value=f"secret-pref-{n}", recorded_at=now - dt.timedelta(days=n)
    )
    case = CaseFactory(customer=customer, subject=f"secret-case-{n}", kind="service_recovery", owner=agent)
    feedback = FeedbackFactory(
        customer=customer, interaction=second, rating=5, nps=10, text=f"secret-feedback-{n}",
        identifiers={"email": email}, sentiment="positive", received_at=now - dt.timedelta(days=days_ago),
    )  # fmt: skip
    models.Recognition.objects.create(feedback=feedback, staff=agent, interaction=second, quote=f"secret-quote-{n}")
    models.FollowUp.objects.create(
        kind="callback", customer=customer, case=case, owner=agent, note=f"secret-note-{n}", due_at=now
    )
    problem = models.RecurringProblem.objects.create(
        customer=customer, reason=billing, contact_count=2, first_contact_at=first.started_at,
        last_contact_at=second.started_at,
    )  # fmt: skip
    problem.interactions.add(first, second)
    models.AccessAudit.objects.create(actor=agent, action="view", customer=customer)
    return Person(customer=customer, phone=phone, email=email, account=account, secrets=secrets)


@pytest.fixture
def supervisor_client(sam):
    client = Client()
    client.force_login(sam)
    return client


@pytest.fixture
def staff_agent(db):
    """An agent who was made is_staff by mistake: still no supervisors' tools."""
    return UserFactory(username="stafford", role="agent", is_staff=True)
