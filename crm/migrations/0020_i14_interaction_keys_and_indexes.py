"""Issue 14: interactions get time-ordered keys (UUIDv7) and a BRIN on started_at instead of a B-tree;
the reason and case indexes leave out the NULLs that every new contact has."""

import django.db.models.deletion
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
            name="interaction_reason_idx",
        ),
        migrations.RemoveIndex(
            model_name="interaction",
            name="interaction_case_idx",
        ),
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
        migrations.AlterField(
            model_name="interaction",
            name="reason",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                to="crm.contactreason",
            ),
        ),
        migrations.AddIndex(
            model_name="interaction",
            index=models.Index(
                condition=models.Q(("reason__isnull", False)),
                fields=["customer", "reason", "started_at"],
                name="interaction_reason_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="interaction",
            index=models.Index(
                condition=models.Q(("reason__isnull", False)), fields=["reason"], name="interaction_coded_idx"
            ),
        ),
        migrations.AddIndex(
            model_name="interaction",
            index=models.Index(
                condition=models.Q(("case__isnull", False)), fields=["case", "started_at"], name="interaction_case_idx"
            ),
        ),
        migrations.AddIndex(
            model_name="interaction",
            index=crm.models.BrinOnPostgres(fields=["started_at"], name="interaction_started_brin"),
        ),
    ]
