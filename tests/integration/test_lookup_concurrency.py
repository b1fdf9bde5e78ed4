"""Lookups for one call that arrive at the same moment (desktop and CTI connector) open one contact."""

import pytest
from django.db import connection

from context.services import context_lookup
from crm.models import AccessAudit, Interaction
from tests.concurrency import run_together
from tests.factories import CustomerFactory, IdentityFactory, UserFactory


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_simultaneous_lookups_with_one_call_id_share_one_interaction():
    assert connection.vendor == "postgresql", "Needs PostgreSQL (row locks, ON CONFLICT); set DATABASE_URL."
    customer = CustomerFactory(display_name="Rae Race")
    IdentityFactory(customer=customer, kind="phone", value="+12125550160", normalized="+12125550160")
    agent = UserFactory(username="racer", role="agent")

    results = run_together(lambda: context_lookup(actor=agent, phone="+12125550160", call_id="race-1"), 8)

    assert not [r for r in results if isinstance(r, Exception)], results
    assert len({r["interaction_id"] for r in results}) == 1
    assert Interaction.objects.filter(call_id="race-1").count() == 1
    assert AccessAudit.objects.filter(action="lookup", interaction_id=results[0]["interaction_id"]).count() == 8
