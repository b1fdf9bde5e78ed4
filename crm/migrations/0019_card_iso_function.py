"""crm_iso(timestamptz): the API's timestamp text ("2024-03-12T09:30:00.000000Z"), for the card statement.

A one-expression SQL function declared STABLE (as to_char is) is inlined by the planner, so it costs
nothing at run time; it exists to keep the card statement short (crm/card.py).
PostgreSQL only: the portable (SQLite) path formats timestamps in Python.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION crm_iso(t timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') $$
"""
DROP = "DROP FUNCTION IF EXISTS crm_iso(timestamptz)"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("crm", "0018_i15_import")]

    operations = [migrations.RunPython(create, drop)]
