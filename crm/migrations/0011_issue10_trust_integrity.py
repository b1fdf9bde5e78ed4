"""Issue 10 (trust): one feedback per contact, unverified feedback, a bounded wrap-up summary.

Rows written before these rules are brought in line first: a contact's later feedback
is detached from the contact (it stays, with its customer), an over-long summary is cut.
"""

import django.db.models.functions.text
import django.db.models.lookups
from django.conf import settings
from django.db import migrations, models


def _existing_rows_comply(apps, schema_editor):
    Feedback = apps.get_model("crm", "Feedback")
    Interaction = apps.get_model("crm", "Interaction")
    repeated = (
        Feedback.objects.filter(interaction__isnull=False)
        .values("interaction")
        .annotate(n=models.Count("pk"))
        .filter(n__gt=1)
        .values_list("interaction", flat=True)
    )
    for interaction_id in repeated:
        later = Feedback.objects.filter(interaction_id=interaction_id).order_by("received_at", "pk")[1:]
        Feedback.objects.filter(pk__in=[f.pk for f in later]).update(interaction=None)
    too_long = Interaction.objects.annotate(n=django.db.models.functions.text.Length("summary")).filter(n__gt=10000)
    for interaction in too_long:
        Interaction.objects.filter(pk=interaction.pk).update(summary=interaction.summary[:10000])


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0010_issue10_hashed_tokens"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(_existing_rows_comply, migrations.RunPython.noop),
        migrations.AddField(
            model_name="feedback",
            name="unverified",
            field=models.BooleanField(db_default=False, default=False),
        ),
        migrations.AddConstraint(
            model_name="feedback",
            constraint=models.UniqueConstraint(
                condition=models.Q(("interaction__isnull", False)),
                fields=("interaction",),
                name="feedback_once_per_interaction",
            ),
        ),
        migrations.AddConstraint(
            model_name="interaction",
            constraint=models.CheckConstraint(
                condition=django.db.models.lookups.LessThanOrEqual(
                    django.db.models.functions.text.Length("summary"), 10000
                ),
                name="interaction_summary_bounded",
            ),
        ),
    ]
