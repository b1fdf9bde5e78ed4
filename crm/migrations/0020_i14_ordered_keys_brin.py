"""Issue 14: interactions get time-ordered keys (UUIDv7) and a BRIN index on started_at instead of a B-tree."""

from django.conf import settings
from django.db import migrations, models

import crm.models


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0019_card_iso_function"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="interaction",
            name="interaction_started_idx",
        ),
        migrations.AlterField(
            model_name="interaction",
            name="id",
            field=models.UUIDField(
                default=crm.models.time_ordered_uuid, editable=False, primary_key=True, serialize=False
            ),
        ),
        migrations.AddIndex(
            model_name="interaction",
            index=crm.models.BrinOnPostgres(fields=["started_at"], name="interaction_started_brin"),
        ),
    ]
