import importlib

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def restore_roles_and_reasons(sender, using="default", apps=None, **kwargs):
    """Put back the role groups and starting reasons when their tables are empty.

    Migration 0002 installs them once; a `flush` (which test cases with real
    transactions run after each test) empties them and emits post_migrate, so
    they come back here. A taxonomy supervisors have edited is never touched:
    this only acts on missing groups or an empty reason table.
    """
    from django.apps import apps as global_apps

    apps = apps or global_apps
    try:
        group_model = apps.get_model("auth", "Group")
        reason_model = apps.get_model("crm", "ContactReason")
    except LookupError:  # migrating backwards: the models are not there
        return
    roles = importlib.import_module("crm.migrations.0002_roles_and_reasons")
    have_roles = group_model.objects.using(using).filter(name__in=roles.ROLES).count() == len(roles.ROLES)
    if have_roles and reason_model.objects.using(using).exists():
        return
    roles.install(apps, None)


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = "Customer memory"

    def ready(self):
        post_migrate.connect(restore_roles_and_reasons, sender=self, dispatch_uid="crm-restore-roles-and-reasons")
        # Issue 17: Celery's signals feed the task metrics and carry request ids (web and worker).
        importlib.import_module("crm.metrics")
        # Issue 15: `field__any=values` (one JSON parameter on PostgreSQL) for the import's key sets.
        importlib.import_module("crm.lookups")

        # Issue 10: a password change or deactivation revokes API tokens (crm.tokens needs the models).
        importlib.import_module("crm.tokens").connect_signals()
