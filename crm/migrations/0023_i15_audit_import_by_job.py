"""Issue 15: a contact import's audit check finds customer and job in the index itself.

0022's index held every import's audit rows by customer alone: each probe found the customer's
older import rows and fetched each from the table to read its job. Now the job is in the key,
and only contact imports' rows ({"import": job}) are in it: a customer import's ({"import": job,
"line": n}, one per line) are never read back, so its COPY writes nothing to it.
"""

from django.conf import settings
from django.db import migrations, models
from django.db.models.fields.json import KeyTextTransform

OLD = models.Index(condition=models.Q(("detail__has_key", "import")), fields=["customer"], name="audit_import_idx")
NEW = models.Index(
    models.F("customer"),
    KeyTextTransform("import", "detail"),
    condition=models.Q(("detail__has_key", "import"), models.Q(("detail__has_key", "line"), _negated=True)),
    name="audit_import_idx",
)


def _replace(apps, schema_editor, old, new):
    """Build the new index under a spare name, drop the old one, rename it (PostgreSQL 12+: a
    SHARE UPDATE EXCLUSIVE lock): an import running meanwhile always has an index to probe.
    CONCURRENTLY on PostgreSQL: lookups keep writing their audit rows while it is built."""
    model = apps.get_model("crm", "accessaudit")
    options = {"concurrently": True} if schema_editor.connection.vendor == "postgresql" else {}
    building = new.clone()
    building.name = "audit_import_new_idx"
    if options:  # a build interrupted before leaves it, maybe invalid: start afresh
        schema_editor.execute("DROP INDEX CONCURRENTLY IF EXISTS audit_import_new_idx")
    schema_editor.add_index(model, building, **options)
    schema_editor.remove_index(model, old, **options)
    schema_editor.rename_index(model, building, new)  # SQLite cannot rename: drops and builds it again


def _forward(apps, schema_editor):
    _replace(apps, schema_editor, OLD, NEW)


def _backward(apps, schema_editor):
    _replace(apps, schema_editor, NEW, OLD)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY
    dependencies = [
        ("crm", "0022_i15_audit_by_import"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveIndex(model_name="accessaudit", name="audit_import_idx"),
                migrations.AddIndex(model_name="accessaudit", index=NEW),
            ],
            database_operations=[migrations.RunPython(_forward, _backward)],
        ),
    ]
