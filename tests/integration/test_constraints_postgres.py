"""Invariants the database itself enforces, and races it settles (PostgreSQL).

These run on PostgreSQL (CI, `make test`); on another database they fail with a
message saying so rather than skipping.
"""

import threading

import pytest
from django.db import IntegrityError, transaction

from crm import services
from crm.exceptions import Conflict
from crm.models import Identity, Interaction
from tests.concurrency import run_together
from tests.factories import CustomerFactory, IdentityFactory, UserFactory
from tests.fixtures.crm import row_counts

pytestmark = pytest.mark.postgres


@pytest.mark.django_db
def test_the_database_refuses_one_account_on_two_live_customers(jim):
    other = CustomerFactory()
    with pytest.raises(IntegrityError) as error, transaction.atomic():
        IdentityFactory(customer=other, kind="account", value="AC12345678", normalized="AC12345678")
    assert "account_belongs_to_one_customer" in str(error.value)
    assert not Identity.objects.filter(customer=other).exists()


@pytest.mark.django_db
def test_a_duplicate_account_through_the_api_is_a_clear_409_and_writes_nothing(agent_api, jim):
    other = CustomerFactory(display_name="Olga Novak")
    before = row_counts()
    response = agent_api.post(
        f"/api/v1/customers/{other.pk}/identities", {"kind": "account", "value": "ac-1234-5678"}, format="json"
    )
    assert response.status_code == 409
    body = response.json()
    assert "AC12345678" in body["value"][0] and body["detail"]
    assert row_counts() == before


@pytest.mark.django_db
def test_phones_and_emails_may_be_shared_by_a_household(agent_api, jim):
    partner = CustomerFactory(display_name="Ada Okafor")
    response = agent_api.post(
        f"/api/v1/customers/{partner.pk}/identities", {"kind": "phone", "value": "(212) 555-0100"}, format="json"
    )
    assert response.status_code == 201
    assert Identity.objects.filter(kind="phone", normalized="+12125550100").count() == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_contacts_with_one_external_id_make_one_interaction():
    customer = CustomerFactory()
    agent = UserFactory(username="alice", role="agent")

    def record():
        interaction, created = services.interaction_record(
            actor=agent, channel="chat", customer_id=customer.pk, external_id="chat-race-1", summary="Hello"
        )
        return interaction.pk, created

    results = run_together(record, 8)

    assert not [r for r in results if isinstance(r, Exception)], results
    assert len({pk for pk, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert Interaction.objects.filter(external_id="chat-race-1").count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_of_one_account_leave_it_with_one_customer():
    claimants = [CustomerFactory() for _ in range(6)]
    agent = UserFactory(username="alice", role="agent")
    turn = iter(claimants)
    lock = threading.Lock()

    def claim():
        with lock:
            customer = next(turn)
        return services.identity_add(actor=agent, customer=customer, kind="account", value="GF-7777-0001")

    results = run_together(claim, len(claimants))

    won = [r for r in results if isinstance(r, Identity)]
    refused = [r for r in results if isinstance(r, Conflict)]
    assert (len(won), len(refused)) == (1, len(claimants) - 1), results
    assert Identity.objects.filter(kind="account", normalized="GF77770001").count() == 1
