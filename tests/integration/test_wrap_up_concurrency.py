"""Twelve agents wrap up contacts of one customer at the same moment, all telling us the same key."""

import queue

import pytest

from crm import models
from tests.concurrency import run_together
from tests.conftest import client_for
from tests.factories import CustomerFactory, InteractionFactory, UserFactory

WRAP_UPS = 12


@pytest.mark.django_db(transaction=True)
def test_concurrent_wrap_ups_of_one_customer_all_save_and_keep_one_current_value():
    # given twelve contacts of one customer, each wrapped up by its own agent
    customer = CustomerFactory()
    agents = [UserFactory(username=f"agent{i}", role="agent") for i in range(WRAP_UPS)]
    contacts = [InteractionFactory(customer=customer, agent=agent) for agent in agents]
    work: queue.Queue = queue.Queue()
    for job in zip(agents, contacts, range(WRAP_UPS), strict=True):
        work.put(job)

    def wrap_up():
        agent, contact, i = work.get_nowait()
        return client_for(agent).patch(
            f"/api/v1/interactions/{contact.pk}",
            {
                "outcome": "resolved",
                "facts": [{"key": "moving_house", "value": f"value {i}"}],
                "preferences": {"contact_time": f"time {i}"},
            },
            format="json",
        )

    # when
    responses = run_together(wrap_up, WRAP_UPS)

    # then every wrap-up was saved
    assert [getattr(r, "status_code", r) for r in responses] == [200] * WRAP_UPS
    assert models.Interaction.objects.filter(customer=customer, outcome="resolved").count() == WRAP_UPS
    for model, key, prefix in ((models.Fact, "moving_house", "value"), (models.Preference, "contact_time", "time")):
        history = list(model.objects.filter(customer=customer, key=key).order_by("recorded_at", "pk"))
        # every value is kept, exactly one is current: the one written last
        assert sorted(row.value for row in history) == sorted(f"{prefix} {i}" for i in range(WRAP_UPS))
        assert [row.is_current for row in history] == [False] * (WRAP_UPS - 1) + [True]
        # commit order: rows were inserted under the customer's lock, so insert order (pk) is time order
        assert [row.pk for row in history] == sorted(row.pk for row in history)
