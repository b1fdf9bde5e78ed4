"""Issue 15: indexes that only cost writes go (the imports and every screen pop write them).

Dropped: fact_current_idx and preference_current_idx (the same as the unique constraints
one_current_fact_per_key / one_current_preference_per_key), and the index on
crm_identity.customer_id (identity_once_per_customer starts with that column).
Without NULLs: the foreign keys NULL on most rows (an interaction's agent, a customer's
merged_into, an identity's verified_by, a fact's or preference's interaction and recorded_by,
an audit row's interaction); every read of them names a key, which implies NOT NULL.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def _sql(statement: str):
    """A statement, CONCURRENTLY on PostgreSQL (outside a transaction: this migration is not atomic)."""

    def run(apps, schema_editor):
        concurrently = "CONCURRENTLY " if schema_editor.connection.vendor == "postgresql" else ""
        schema_editor.execute(statement.format(concurrently=concurrently))

    return run


def fk_index_dropped(alter: migrations.AlterField, index: str, table: str, column: str):
    """db_index=False on a foreign key, as the model says, but in the database only its index goes.

    Left to itself, Django drops the foreign-key constraint and adds it back, which checks every
    row again under lock (1.3 s of this migration's 2.2 s at 3M contacts, and it grows with the
    tables); the constraint itself does not change.
    """
    drop = f'DROP INDEX {{concurrently}}IF EXISTS "{index}"'
    create = f'CREATE INDEX {{concurrently}}IF NOT EXISTS "{index}" ON "{table}" ("{column}")'
    return migrations.SeparateDatabaseAndState(
        state_operations=[alter], database_operations=[migrations.RunPython(_sql(drop), _sql(create))]
    )


# The indexes 0020 had that this migration removes (to build them again when it is reversed).
REMOVED = {
    "fact_current_idx": (
        "fact",
        models.Index(fields=["customer", "key"], condition=models.Q(is_current=True), name="fact_current_idx"),
    ),
    "preference_current_idx": (
        "preference",
        models.Index(fields=["customer", "key"], condition=models.Q(is_current=True), name="preference_current_idx"),
    ),
}


def concurrently(operation):
    """An index added or removed CONCURRENTLY on PostgreSQL: screen pops and imports go on while it
    is built (a plain CREATE INDEX blocks the table's writes, and DROP INDEX all its reads, until
    the migration commits). SQLite, the embedded default, does it the plain way."""
    if isinstance(operation, migrations.AddIndex):
        model_name, index = operation.model_name, operation.index
        adding = True
    elif isinstance(operation, migrations.RemoveIndex):
        model_name, index = REMOVED[operation.name]
        adding = False
    else:
        return operation

    def change(add: bool):
        def run(apps, schema_editor):
            model = apps.get_model("crm", model_name)
            options = {"concurrently": True} if schema_editor.connection.vendor == "postgresql" else {}
            if add and options:  # a build interrupted before leaves the index behind, invalid: start afresh
                schema_editor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{index.name}"')
            (schema_editor.add_index if add else schema_editor.remove_index)(model, index, **options)

        return run

    return migrations.SeparateDatabaseAndState(
        state_operations=[operation],
        database_operations=[migrations.RunPython(change(adding), change(not adding))],
    )


class Migration(migrations.Migration):
    atomic = False  # CREATE / DROP INDEX CONCURRENTLY

    dependencies = [
        ("crm", "0020_i14_interaction_keys_and_indexes"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="fact",
            name="fact_current_idx",
        ),
        migrations.RemoveIndex(
            model_name="preference",
            name="preference_current_idx",
        ),
        fk_index_dropped(
            migrations.AlterField(
                model_name="accessaudit",
                name="interaction",
                field=models.ForeignKey(
                    db_index=False,
                    null=True,
                    on_delete=django.db.models.deletion.SET_NULL,
                    related_name="+",
                    to="crm.interaction",
                ),
            ),
            "crm_accessaudit_interaction_id_d4bbe277",
            "crm_accessaudit",
            "interaction_id",
        ),
        fk_index_dropped(
            migrations.AlterField(
                model_name="customer",
                name="merged_into",
                field=models.ForeignKey(
                    blank=True,
                    db_index=False,
                    null=True,
                    on_delete=django.db.models.deletion.PROTECT,
                    related_name="merged",
                    to="crm.customer",
                ),
            ),
            "crm_customer_merged_into_id_8adc8877",
            "crm_customer",
            "merged_into_id",
        ),
        fk_index_dropped(
            migrations.AlterField(
                model_name="fact",
                name="interaction",
                field=models.ForeignKey(
                    blank=True,
                    db_index=False,
                    null=True,
                    on_delete=django.db.models.deletion.SET_NULL,
                    related_name="facts",
                    to="crm.interaction",
                ),
            ),
            "crm_fact_interaction_id_3d045f2f",
            "crm_fact",
            "interaction_id",
        ),
        fk_index_dropped(
            migrations.AlterField(
                model_name="fact",
                name="recorded_by",
                field=models.ForeignKey(
                    blank=True,
                    db_index=False,
                    null=True,
                    on_delete=django.db.models.deletion.SET_NULL,
                    to=settings.AUTH_USER_MODEL,
                ),
            ),
            "crm_fact_recorded_by_id_6bba8239",
            "crm_fact",
            "recorded_by_id",
        ),
        fk_index_dropped(
            migrations.AlterField(
                model_name="identity",
                name="customer",
                field=models.ForeignKey(
                    db_index=False,
                    on_delete=django.db.models.deletion.CASCADE,
                    related_name="identities",
                    to="crm.customer",
                ),
            ),
            "crm_identity_customer_id_c5fad98d",
            "crm_identity",
            "customer_id",
        ),
        fk_index_dropped(
            migrations.AlterField(
                model_name="identity",
                name="verified_by",
                field=models.ForeignKey(
                    blank=True,
                    db_index=False,
                    null=True,
                    on_delete=django.db.models.deletion.SET_NULL,
                    related_name="+",
                    to=settings.AUTH_USER_MODEL,
                ),
            ),
            "crm_identity_verified_by_id_061da8c6",
            "crm_identity",
            "verified_by_id",
        ),
        fk_index_dropped(
            migrations.AlterField(
                model_name="interaction",
                name="agent",
                field=models.ForeignKey(
                    blank=True,
                    db_index=False,
                    null=True,
                    on_delete=django.db.models.deletion.SET_NULL,
                    related_name="interactions",
                    to=settings.AUTH_USER_MODEL,
                ),
            ),
            "crm_interaction_agent_id_aed2ad30",
            "crm_interaction",
            "agent_id",
        ),
        fk_index_dropped(
            migrations.AlterField(
                model_name="preference",
                name="interaction",
                field=models.ForeignKey(
                    blank=True,
                    db_index=False,
                    null=True,
                    on_delete=django.db.models.deletion.SET_NULL,
                    related_name="preferences",
                    to="crm.interaction",
                ),
            ),
            "crm_preference_interaction_id_9f776a21",
            "crm_preference",
            "interaction_id",
        ),
        fk_index_dropped(
            migrations.AlterField(
                model_name="preference",
                name="recorded_by",
                field=models.ForeignKey(
                    blank=True,
                    db_index=False,
                    null=True,
                    on_delete=django.db.models.deletion.SET_NULL,
                    to=settings.AUTH_USER_MODEL,
                ),
            ),
            "crm_preference_recorded_by_id_38ffed19",
            "crm_preference",
            "recorded_by_id",
        ),
        migrations.AddIndex(
            model_name="accessaudit",
            index=models.Index(
                condition=models.Q(("interaction__isnull", False)), fields=["interaction"], name="audit_interaction_idx"
            ),
        ),
        migrations.AddIndex(
            model_name="customer",
            index=models.Index(
                condition=models.Q(("merged_into__isnull", False)),
                fields=["merged_into"],
                name="customer_merged_into_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="fact",
            index=models.Index(
                condition=models.Q(("interaction__isnull", False)), fields=["interaction"], name="fact_interaction_idx"
            ),
        ),
        migrations.AddIndex(
            model_name="fact",
            index=models.Index(
                condition=models.Q(("recorded_by__isnull", False)), fields=["recorded_by"], name="fact_recorded_by_idx"
            ),
        ),
        migrations.AddIndex(
            model_name="identity",
            index=models.Index(
                condition=models.Q(("verified_by__isnull", False)),
                fields=["verified_by"],
                name="identity_verified_by_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="interaction",
            index=models.Index(
                condition=models.Q(("agent__isnull", False)), fields=["agent"], name="interaction_agent_idx"
            ),
        ),
        migrations.AddIndex(
            model_name="preference",
            index=models.Index(
                condition=models.Q(("interaction__isnull", False)),
                fields=["interaction"],
                name="preference_interaction_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="preference",
            index=models.Index(
                condition=models.Q(("recorded_by__isnull", False)),
                fields=["recorded_by"],
                name="preference_recorded_by_idx",
            ),
        ),
    ]
    operations = [concurrently(operation) for operation in operations]
