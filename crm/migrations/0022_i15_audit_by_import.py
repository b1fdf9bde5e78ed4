"""Issue 15: a contact import audits each customer once: this finds whether it already has.

Only an import's audit rows are indexed (detail has "import"), so the lookups' audit rows,
most of the table, write nothing to it.
"""

from django.conf import settings
from django.db import migrations, models


def _add_index(apps, schema_editor, *, add=True):
    """CONCURRENTLY on PostgreSQL: lookups keep writing their audit rows while it is built."""
    model = apps.get_model("crm", "accessaudit")
    options = {"concurrently": True} if schema_editor.connection.vendor == "postgresql" else {}
    if add and options:  # a build interrupted before leaves the index behind, invalid: start afresh
        schema_editor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{INDEX.name}"')
    (schema_editor.add_index if add else schema_editor.remove_index)(model, INDEX, **options)


def _remove_index(apps, schema_editor):
    _add_index(apps, schema_editor, add=False)


INDEX = models.Index(condition=models.Q(("detail__has_key", "import")), fields=["customer"], name="audit_import_idx")


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY
    dependencies = [
        ("crm", "0021_i15_write_lean_indexes"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AddIndex(model_name="accessaudit", index=INDEX)],
            database_operations=[migrations.RunPython(_add_index, _remove_index)],
        ),
    ]
