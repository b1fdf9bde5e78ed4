"""The screen-pop lookup writes an interaction and an audit row on every call: drop the
single-column foreign-key indexes that a composite index already serves.

- crm_interaction.customer_id: interaction_recent_idx (customer_id, started_at DESC)
- crm_interaction.case_id: interaction_case_idx (case_id, started_at)
- crm_accessaudit.actor_id: audit_by_actor_idx (actor_id, at DESC)
- crm_accessaudit.customer_id: audit_by_customer_idx (customer_id, at DESC)

Only the indexes go; the foreign-key constraints stay as they are (AlterField would
drop and re-validate them, a long lock on a large table).
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

INDEXES = [
    ("crm_accessaudit_actor_id_c3da2ecc", "crm_accessaudit", "actor_id"),
    ("crm_accessaudit_customer_id_34832d3b", "crm_accessaudit", "customer_id"),
    ("crm_interaction_case_id_128aa8c2", "crm_interaction", "case_id"),
    ("crm_interaction_customer_id_33430ec4", "crm_interaction", "customer_id"),
]


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0003_supervisor_permissions"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    sql=f'DROP INDEX IF EXISTS "{name}"',
                    reverse_sql=f'CREATE INDEX "{name}" ON "{table}" ("{column}")',
                )
                for name, table, column in INDEXES
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="accessaudit",
                    name="actor",
                    field=models.ForeignKey(
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                migrations.AlterField(
                    model_name="accessaudit",
                    name="customer",
                    field=models.ForeignKey(
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="audit",
                        to="crm.customer",
                    ),
                ),
                migrations.AlterField(
                    model_name="interaction",
                    name="case",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="interactions",
                        to="crm.case",
                    ),
                ),
                migrations.AlterField(
                    model_name="interaction",
                    name="customer",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="interactions",
                        to="crm.customer",
                    ),
                ),
            ],
        ),
    ]
