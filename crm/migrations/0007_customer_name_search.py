"""Customer search by name at scale (crm.selectors.customer_search).

`display_name__icontains` / `preferred_name__icontains` become
`UPPER(col::text) LIKE UPPER('%term%')`, which no B-tree can serve: at a million
customers each search scanned the table (about 200 ms). Trigram GIN indexes on
exactly those expressions, over live customers only, serve the LIKE; a B-tree on
display_name serves the empty search's ORDER BY display_name LIMIT 50.

PostgreSQL only (pg_trgm is a trusted extension: the database owner may create it);
on SQLite, the embedded default, nothing is created. The indexes are not in the
model state because Django's index classes cannot say "only on PostgreSQL"; the
names are here and in crm/models.py's comment on Customer.
"""

from django.db import migrations

LIVE = "erased_at IS NULL AND merged_into_id IS NULL"
STATEMENTS = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS customer_name_trgm_idx ON crm_customer "
    f"USING gin (UPPER(display_name::text) gin_trgm_ops) WHERE {LIVE}",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS customer_preferred_name_trgm_idx ON crm_customer "
    f"USING gin (UPPER(preferred_name::text) gin_trgm_ops) WHERE {LIVE}",
    f"CREATE INDEX CONCURRENTLY IF NOT EXISTS customer_name_order_idx ON crm_customer (display_name) WHERE {LIVE}",
]
REVERSE = [
    "DROP INDEX CONCURRENTLY IF EXISTS customer_name_order_idx",
    "DROP INDEX CONCURRENTLY IF EXISTS customer_preferred_name_trgm_idx",
    "DROP INDEX CONCURRENTLY IF EXISTS customer_name_trgm_idx",
]


def run(statements):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for statement in statements:
            schema_editor.execute(statement)

    return apply


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY: no long write lock on a large customer table.
    atomic = False

    dependencies = [("crm", "0006_notification_unsent_idx")]

    operations = [migrations.RunPython(run(STATEMENTS), run(REVERSE))]
