"""Reads that tolerate lag go to the read replica when one is configured; nothing else does.

The "replica" alias mirrors the test database (tests/settings.py), so the test sees which
connection each query used: the replica's or the primary's.
"""

import pytest
from django.db import connections, transaction
from django.test.utils import CaptureQueriesContext

from crm.models import AccessAudit
from crm.selectors import customer_search
from tests.conftest import client_for
from tests.factories import CustomerFactory, UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, databases=["default", "replica"])]


@pytest.fixture
def replica_on(settings):
    settings.CRM_READ_REPLICA = True


def capture():
    return CaptureQueriesContext(connections["replica"]), CaptureQueriesContext(connections["default"])


def test_customer_search_reads_from_the_replica(replica_on):
    CustomerFactory(display_name="Zed Replica")
    replica, primary = capture()

    with replica, primary:
        found = customer_search("Zed Replica")

    assert [c.display_name for c in found] == ["Zed Replica"]
    assert any("crm_customer" in q["sql"] for q in replica.captured_queries)
    assert not primary.captured_queries


def test_a_read_inside_a_transaction_stays_on_the_primary(replica_on):
    CustomerFactory(display_name="Zed Replica")
    replica, primary = capture()

    with replica, primary, transaction.atomic():
        customer_search("Zed Replica")

    assert not replica.captured_queries
    assert any("crm_customer" in q["sql"] for q in primary.captured_queries)


def test_the_admin_360_reads_from_the_replica_and_writes_its_audit_row_on_the_primary(replica_on, client):
    customer = CustomerFactory(display_name="Zed Replica")
    supervisor = UserFactory(username="sam", role="supervisor", is_staff=True)
    client.force_login(supervisor)
    replica, primary = capture()

    with replica, primary:
        response = client.get(f"/admin/crm/customer/{customer.pk}/360/")

    assert response.status_code == 200
    assert any("crm_interaction" in q["sql"] for q in replica.captured_queries)
    assert any(q["sql"].startswith("INSERT") and "crm_accessaudit" in q["sql"] for q in primary.captured_queries)
    assert not any(q["sql"].startswith(("INSERT", "UPDATE", "DELETE")) for q in replica.captured_queries)
    assert AccessAudit.objects.filter(customer=customer, actor=supervisor).exists()


def test_without_a_replica_everything_stays_on_the_primary(settings):
    settings.CRM_READ_REPLICA = False
    CustomerFactory(display_name="Zed Replica")
    api = client_for(UserFactory(username="alice", role="agent"))
    replica, primary = capture()

    with replica, primary:
        assert api.get("/api/v1/customers", {"search": "Zed Replica"}).status_code == 200

    assert not replica.captured_queries
    assert primary.captured_queries
