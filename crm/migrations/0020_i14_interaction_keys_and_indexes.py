"""Issue 14: interactions get time-ordered keys (UUIDv7) and a BRIN on started_at instead of a B-tree;
the reason and case indexes leave out the NULLs that every new contact has.

crm_uuid7(): a UUIDv7 made in PostgreSQL (15 has no uuidv7()), for rows a statement inserts itself
(the bulk import's staging path); the time in milliseconds, then 74 random bits, version and variant set.
PostgreSQL only: elsewhere Python makes the keys (crm.models.time_ordered_uuid).
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import crm.models

CREATE_UUID7 = """
CREATE OR REPLACE FUNCTION crm_uuid7() RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE
AS $$ SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
    PLACING substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3) FROM 1 FOR 6),
    52, 1), 53, 1), 'hex')::uuid $$
"""


def uuid7_create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE_UUID7)


def uuid7_drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS crm_uuid7()")


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0019_card_iso_function"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(uuid7_create, uuid7_drop),
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
