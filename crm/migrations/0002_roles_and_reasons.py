"""The role groups and a starting taxonomy of contact reasons (supervisors edit it in the admin)."""

from django.db import migrations

ROLES = ("agent", "supervisor", "integration")

REASONS = [
    ("billing", "Billing question"),
    ("payment", "Payment or refund"),
    ("technical_fault", "Technical fault"),
    ("outage", "Service outage"),
    ("order_status", "Order or delivery status"),
    ("account_change", "Account change"),
    ("cancellation", "Cancellation"),
    ("complaint", "Complaint"),
    ("new_service", "New service or upgrade"),
    ("appointment", "Appointment or engineer visit"),
    ("general", "General enquiry"),
]


def install(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    ContactReason = apps.get_model("crm", "ContactReason")
    for name in ROLES:
        Group.objects.get_or_create(name=name)
    for code, label in REASONS:
        ContactReason.objects.get_or_create(code=code, defaults={"label": label})


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(install, migrations.RunPython.noop)]
