"""Give the supervisor group the model permissions its admin pages need.

The admin checks Django model permissions on top of the supervisor role
(crm/admin.py), so the group needs them; agents get none and stay out of /admin/.
Permissions are created here if post_migrate has not run yet (a fresh database).
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

SUPERVISOR_PERMISSIONS = {
    "customer": ("view", "change"),
    "identity": ("view", "change", "delete"),
    "preference": ("view",),
    "fact": ("view",),
    "interaction": ("view",),
    "case": ("view", "change"),
    "feedback": ("view", "change"),
    "recognition": ("view",),
    "followup": ("view", "change"),
    "notification": ("view",),
    "recurringproblem": ("view", "change"),
    "accessaudit": ("view",),
    "mergerecord": ("view",),
    "contactreason": ("view", "add", "change"),
    "team": ("view", "add", "change"),
    "staffprofile": ("view", "add", "change"),
}


def grant(apps, schema_editor):
    for app_config in apps.get_app_configs():
        # create_permissions skips apps without models_module (None in migration state);
        # put back what was there, or the project's registry stops sending post_migrate.
        previous, app_config.models_module = getattr(app_config, "models_module", None), True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = previous
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name="supervisor")
    codenames = [f"{action}_{model}" for model, actions in SUPERVISOR_PERMISSIONS.items() for action in actions]
    group.permissions.add(*Permission.objects.filter(content_type__app_label="crm", codename__in=codenames))


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group = Group.objects.filter(name="supervisor").first()
    if group is not None:
        group.permissions.remove(*Permission.objects.filter(content_type__app_label="crm"))


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0002_roles_and_reasons"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
