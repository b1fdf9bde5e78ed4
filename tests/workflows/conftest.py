"""Workflow fixtures: a small contact centre (teams, supervisors, agents) and in-process tasks.

Jane and Omar are agents in team North, supervised by Sofia; Marcus supervises
South and has no agents here. Ada is the administrator (next level above Sofia).
"""

import smtplib

import pytest
from django.core.mail.backends import locmem

from crm.celery import app
from crm.models import StaffProfile, Team
from tests.factories import UserFactory


@pytest.fixture
def ada(db):
    return UserFactory(username="ada", first_name="Ada", is_superuser=True, is_staff=True)


@pytest.fixture
def sofia(db):
    return UserFactory(username="sofia", first_name="Sofia", last_name="Reyes", role="supervisor", is_staff=True)


@pytest.fixture
def north(sofia):
    return Team.objects.create(name="North", supervisor=sofia)


@pytest.fixture
def jane(north):
    user = UserFactory(username="jane", first_name="Jane", last_name="Doyle", role="agent")
    StaffProfile.objects.create(user=user, team=north, supervisor=north.supervisor)
    return user


@pytest.fixture
def omar(north):
    user = UserFactory(username="omar", first_name="Omar", last_name="Farouk", role="agent")
    StaffProfile.objects.create(user=user, team=north, supervisor=north.supervisor)
    return user


@pytest.fixture
def eager_tasks():
    """Tasks sent in this test run in-process, as on the embedded defaults (no broker)."""
    previous = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = previous


@pytest.fixture(scope="module")
def reinstall_migration_data(django_db_blocker):
    """Transactional tests flush the groups and reasons migration 0002 installs; put them back after the module."""
    yield
    from django.apps import apps as django_apps

    with django_db_blocker.unblock():
        __import__("crm.migrations.0002_roles_and_reasons", fromlist=["install"]).install(django_apps, None)


class MailServer:
    """What the test mail server does: deliver to mail.outbox, be down for some recipients, refuse others."""

    def __init__(self):
        self.down_for: set[str] = set()  # addresses or "@domain"; "*" for everyone
        self.refusing: set[str] = set()

    def down(self, *targets: str) -> None:
        self.down_for = set(targets) or {"*"}

    def up(self) -> None:
        self.down_for = set()

    def refuse(self, address: str) -> None:
        self.refusing.add(address)

    def check(self, address: str) -> None:
        if {"*", address, "@" + address.rpartition("@")[2]} & self.down_for:
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        if address in self.refusing:
            raise smtplib.SMTPRecipientsRefused({address: (550, b"5.1.1 No such user")})


MAIL_SERVER = MailServer()


class FlakyEmailBackend(locmem.EmailBackend):
    """The locmem backend behind MAIL_SERVER: failures are real smtplib exceptions, raised at send time."""

    def send_messages(self, messages):
        for message in messages:
            for address in message.recipients():
                MAIL_SERVER.check(address)
        return super().send_messages(messages)


@pytest.fixture
def mail_server(settings):
    """A mail server the test can take down (for everyone or some recipients) and bring back."""
    settings.EMAIL_BACKEND = "tests.workflows.conftest.FlakyEmailBackend"
    MAIL_SERVER.up()
    MAIL_SERVER.refusing.clear()
    yield MAIL_SERVER
    MAIL_SERVER.up()
    MAIL_SERVER.refusing.clear()
