"""Lookups for one call that arrive at the same moment (desktop and CTI connector) open one contact."""

import threading

import pytest
from django.db import close_old_connections, connection

from context.services import context_lookup
from crm.models import AccessAudit, Interaction
from tests.factories import CustomerFactory, IdentityFactory, UserFactory


def run_together(worker, n: int) -> list:
    """worker() in n threads released at once, each on its own database connection."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def run(i):
        try:
            barrier.wait(timeout=10)
            results[i] = worker()
        except Exception as exc:  # noqa: BLE001 - the test inspects what each thread got
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    close_old_connections()
    return results


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
