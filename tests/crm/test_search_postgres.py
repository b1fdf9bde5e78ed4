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
    assert connection.vendor == "postgresql", "Needs PostgreSQL (trigram indexes); set DATABASE_URL."
    with connection.cursor() as cursor:
        cursor.execute(FIFTY_THOUSAND_CUSTOMERS)
        Customer.objects.create(display_name="Chiamaka Okafor", preferred_name="Chi")
        cursor.execute("ANALYZE crm_customer")


def test_a_name_search_uses_the_trigram_indexes(many_customers):
    term = "okafor"
    queryset = (
        live_customers()
        .filter(Q(display_name__icontains=term) | Q(preferred_name__icontains=term))
        .order_by(Upper("display_name"), "pk")[:50]
    )
    with transaction.atomic(), connection.cursor() as cursor:
        # Freshly inserted rows sit in the GIN indexes' pending list, which PostgreSQL prices
        # as a scan until a VACUUM (impossible inside the test's transaction): price seqscan out.
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = queryset.explain()
    assert "customer_name_trgm_idx" in plan and "customer_preferred_name_trgm_idx" in plan, plan


def test_the_empty_search_walks_the_name_order_index(many_customers):
    plan = live_customers().order_by("display_name")[:50].explain()
    assert "customer_name_order_idx" in plan, plan


def test_search_finds_a_part_of_a_name_in_any_case(many_customers):
    assert [c.display_name for c in customer_search("OKAF")] == ["Chiamaka Okafor"]
