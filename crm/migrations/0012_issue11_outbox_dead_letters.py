# issue 11: the e-mail outbox (lease, Message-ID) and dead-lettered workflows; supervisors see the outbox.

import uuid

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


def grant_outbox_view(apps, schema_editor):
    """Supervisors see the e-mail outbox in the admin (and retry dead e-mails there), as 0003 grants the rest."""
    grant = __import__("crm.migrations.0003_supervisor_permissions", fromlist=["grant"]).grant
    grant(apps, schema_editor)  # creates the new model's permissions on a database past 0003
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name="supervisor")
    group.permissions.add(*Permission.objects.filter(content_type__app_label="crm", codename="view_outboundemail"))


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0011_issue10_trust_integrity"),
    ]

    operations = [
        migrations.CreateModel(
            name="OutboundEmail",
            fields=[
                ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ("key", models.CharField(max_length=120, unique=True)),
                ("to", models.EmailField(max_length=254)),
                ("subject", models.CharField(max_length=200)),
                ("body", models.TextField(blank=True)),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("pending", "Pending"),
                            ("sent", "Sent"),
                            ("failed", "Failed"),
                            ("cancelled", "Cancelled"),
                        ],
                        default="pending",
                        max_length=16,
                    ),
                ),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("sent_at", models.DateTimeField(blank=True, null=True)),
                ("claimed_until", models.DateTimeField(blank=True, null=True)),
                ("claimed_by", models.CharField(blank=True, max_length=64)),
                ("attempts", models.PositiveSmallIntegerField(default=0)),
                ("last_error", models.CharField(blank=True, max_length=200)),
            ],
        ),
        migrations.AddField(
            model_name="feedback",
            name="attempts",
            field=models.PositiveSmallIntegerField(db_default=0, default=0),
        ),
        migrations.AddField(
            model_name="feedback",
            name="failed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="feedback",
            name="last_error",
            field=models.CharField(blank=True, db_default="", default="", max_length=200),
        ),
        migrations.AddIndex(
            model_name="feedback",
            index=models.Index(
                condition=models.Q(("failed_at__isnull", False)), fields=["-failed_at"], name="feedback_dead_idx"
            ),
        ),
        migrations.AddField(
            model_name="outboundemail",
            name="follow_up",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="emails",
                to="crm.followup",
            ),
        ),
        migrations.AddField(
            model_name="outboundemail",
            name="notification",
            field=models.OneToOneField(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="email",
                to="crm.notification",
            ),
        ),
        migrations.AddIndex(
            model_name="outboundemail",
            index=models.Index(
                condition=models.Q(("status", "pending")), fields=["created_at"], name="outbound_email_pending_idx"
            ),
        ),
        migrations.AddIndex(
            model_name="outboundemail",
            index=models.Index(fields=["status", "-created_at"], name="outbound_email_status_idx"),
        ),
        migrations.AddConstraint(
            model_name="outboundemail",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("status", "sent"), _negated=True), ("sent_at__isnull", False), _connector="OR"
                ),
                name="outbound_email_sent_has_time",
            ),
        ),
        migrations.RunPython(grant_outbox_view, migrations.RunPython.noop),
    ]
