"""Issue 15: the digest of the last import row applied to each customer (nullable: no rewrite)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0023_i15_audit_import_by_job"),
    ]

    operations = [
        migrations.AddField(
            model_name="customer",
            name="import_digest",
            field=models.BinaryField(editable=False, max_length=16, null=True),
        ),
    ]
