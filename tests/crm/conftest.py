"""Fixtures of the crm tests: row counts for "nothing was written", PostgreSQL guard."""

import pytest
from django.db import connection
from rest_framework.authtoken.models import Token

from crm.models import AccessAudit, Customer, Fact, Identity, Interaction, Preference

COUNTED = (Customer, Identity, Interaction, Fact, Preference, AccessAudit, Token)


def row_counts() -> dict[str, int]:
    """Rows per model that a rejected request must leave alone."""
    return {model.__name__: model.objects.count() for model in COUNTED}


@pytest.fixture(autouse=True)
def _postgres_for_postgres_tests(request):
    """Tests marked postgres fail (never skip) when the database is not PostgreSQL."""
    if request.node.get_closest_marker("postgres") is None:
        return
    if connection.vendor != "postgresql":
        pytest.fail(
            f"This test needs PostgreSQL, but the database is {connection.vendor}: "
            "set DATABASE_URL=postgres://... (make test does)."
        )
