"""Name search is served by the indexes of migration 0007 (PostgreSQL)."""

import pytest
from django.db import connection, transaction
from django.db.models import Q
from django.db.models.functions import Upper

from crm.models import Customer
from crm.selectors import customer_search, live_customers

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

FIFTY_THOUSAND_CUSTOMERS = """
INSERT INTO crm_customer (id, display_name, preferred_name, language, timezone, tier, created_at, updated_at)
SELECT gen_random_uuid(), 'Person' || i || ' Family' || (i * 7919 % 10007), '', 'en', '', 'standard', now(), now()
FROM generate_series(1, 50000) AS i
"""


@pytest.fixture
def many_customers():
    """Enough varied names, analysed, for the planner to choose as it would in production."""
    with connection.cursor() as cursor:
        cursor.execute(FIFTY_THOUSAND_CUSTOMERS)
        Customer.objects.create(display_name="Chiamaka Okafor", preferred_name="Chi")
        cursor.execute("ANALYZE crm_customer")


def test_a_name_search_can_be_served_by_the_trigram_indexes(many_customers):
    # The risk an index like this carries is an expression that does not match the
    # query's, which makes it useless. On a test-sized table the planner's choice
    # among the other indexes is a coin toss, so leave it only the trigram ones: the
    # DDL is undone with the test's transaction.
    term = "okafor"
    queryset = (
        live_customers()
        .filter(Q(display_name__icontains=term) | Q(preferred_name__icontains=term))
        .order_by(Upper("display_name"), "pk")[:50]
    )
    trigram = {"customer_name_trgm_idx", "customer_preferred_name_trgm_idx"}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'crm_customer'")
        for (name,) in cursor.fetchall():
            if name not in trigram and not name.endswith("_pkey"):
                cursor.execute(f'DROP INDEX "{name}"')
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = queryset.explain()
        transaction.set_rollback(True)
    assert all(name in plan for name in trigram), plan


def test_the_empty_search_walks_the_name_order_index(many_customers):
    plan = live_customers().order_by("display_name")[:50].explain()
    assert "customer_name_order_idx" in plan, plan


def test_search_finds_a_part_of_a_name_in_any_case(many_customers):
    assert [c.display_name for c in customer_search("OKAF")] == ["Chiamaka Okafor"]
