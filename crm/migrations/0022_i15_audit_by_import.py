"""Issue 15: a contact import audits each customer once: this finds whether it already has.

Only an import's audit rows are indexed (detail has "import"), so the lookups' audit rows,
most of the table, write nothing to it.
"""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0021_i15_write_lean_indexes"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddIndex(
            model_name="accessaudit",
            index=models.Index(
                condition=models.Q(("detail__has_key", "import")), fields=["customer"], name="audit_import_idx"
            ),
        ),
    ]
