"""Data migrations whose functions the tests also call on the project's app registry."""

import importlib

import pytest
from django.apps import apps
from django.contrib.auth.models import Group

pytestmark = pytest.mark.django_db

PERMISSIONS = importlib.import_module("crm.migrations.0003_supervisor_permissions")


def test_granting_supervisor_permissions_on_the_project_registry_leaves_the_app_configs_as_they_were():
    """create_permissions needs models_module set; left None, post_migrate (and the roles after a flush) stop."""
    before = {config.label: config.models_module for config in apps.get_app_configs()}
    PERMISSIONS.grant(apps, None)
    assert {config.label: config.models_module for config in apps.get_app_configs()} == before
    assert Group.objects.get(name="supervisor").permissions.filter(codename="view_customer").exists()
