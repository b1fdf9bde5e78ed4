"""Finding 10 (sessions), the admin login's landing page, and integration tokens in the admin."""

import datetime as dt
import os
import re
import subprocess
import sys

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from crm import tokens
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

RIGHT = "pw-for-tests"


def test_a_session_lasts_a_working_day_not_two_weeks(alice):
    client = Client()
    login = client.post("/agent/login/", {"username": "alice", "password": RIGHT})

    assert login.status_code == 302
    assert login.cookies["sessionid"]["max-age"] == 10 * 3600  # CRM_SESSION_HOURS' default
    session = Session.objects.get()
    assert session.expire_date <= timezone.now() + dt.timedelta(hours=10)
    assert client.get("/agent/").status_code == 200

    # The next morning the shared desktop's session is over.
    Session.objects.update(expire_date=timezone.now() - dt.timedelta(seconds=1))
    later = client.get("/agent/")
    assert later.status_code == 302 and later["Location"].startswith("/agent/login/")


@pytest.mark.parametrize("change", ["password", "deactivation"])
def test_a_password_change_or_deactivation_ends_the_session(alice, change):
    client = Client()
    client.post("/agent/login/", {"username": "alice", "password": RIGHT})
    assert client.get("/agent/").status_code == 200

    if change == "password":
        alice.set_password("a-new-long-password")
    else:
        alice.is_active = False
    alice.save()

    later = client.get("/agent/")
    assert later.status_code == 302 and later["Location"].startswith("/agent/login/")


def test_the_auth_lifetimes_and_limits_are_read_from_the_environment():
    env = {
        **os.environ,
        "CRM_SESSION_HOURS": "8",
        "CRM_TOKEN_TTL_HOURS": "4",
        "CRM_LOGIN_FAILURE_LIMIT": "5",
        "CRM_LOGIN_COOLOFF_MINUTES": "30",
    }
    code = (
        "import crm.settings as s; "
        "print(s.SESSION_COOKIE_AGE, s.REST_KNOX['TOKEN_TTL'].total_seconds(), s.AXES_FAILURE_LIMIT, "
        "s.AXES_COOLOFF_TIME.total_seconds())"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["28800", "14400.0", "5", "1800.0"]


@pytest.mark.parametrize("name", ["CRM_LOGIN_FAILURE_LIMIT", "CRM_SESSION_HOURS", "CRM_TOKEN_TTL_HOURS"])
def test_a_zero_limit_or_lifetime_refuses_to_start(name):
    env = {**os.environ, name: "0"}
    out = subprocess.run([sys.executable, "-c", "import crm.settings"], env=env, capture_output=True, text=True)
    assert out.returncode != 0 and f"{name} must be a positive integer" in out.stderr


def test_an_admin_login_without_next_lands_on_the_admin_index(sam):
    client = Client()
    login = client.post("/admin/login/", {"username": "sam", "password": RIGHT})

    assert login.status_code == 302 and login["Location"] == "/admin/"
    assert client.get(login["Location"]).status_code == 200


@pytest.fixture
def root_admin(db):
    client = Client()
    client.force_login(UserFactory(username="root", is_superuser=True, is_staff=True))
    return client


def shown_token(response) -> str:
    messages = [str(m) for m in response.context["messages"]]
    found = [re.search(r"not shown again: ([0-9a-f]{64})$", m) for m in messages]
    return next(m.group(1) for m in found if m)


def can_post_calls(token) -> bool:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client.post("/api/v1/calls", {}, format="json").status_code == 400  # authenticated, empty body refused


def test_an_admin_issues_an_integration_token_that_is_shown_once_and_never_expires(root_admin, ivy):
    response = root_admin.post("/admin/knox/authtoken/add/", {"user": ivy.pk}, follow=True)

    token = shown_token(response)
    assert can_post_calls(token)
    assert AuthToken.objects.get(user=ivy).expiry is None
    listing = root_admin.get("/admin/knox/authtoken/").content.decode()
    assert "ivy" in listing and token not in listing


def test_an_admin_rotates_an_integration_token(root_admin, ivy):
    old, _ = tokens.issue(ivy)
    stored = AuthToken.objects.get(user=ivy)

    response = root_admin.post(
        "/admin/knox/authtoken/",
        {"action": "rotate_tokens", "_selected_action": [stored.pk]},
        follow=True,
    )

    new = shown_token(response)
    assert new != old and can_post_calls(new) and not can_post_calls(old)


def test_an_admin_revokes_a_token(root_admin, ivy):
    token, _ = tokens.issue(ivy)
    stored = AuthToken.objects.get(user=ivy)

    response = root_admin.post(f"/admin/knox/authtoken/{stored.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not can_post_calls(token)


def test_supervisors_do_not_manage_tokens(ivy):
    tokens.issue(ivy)
    client = Client()
    client.force_login(UserFactory(username="gina", role="supervisor", is_staff=True))

    assert client.get("/admin/knox/authtoken/").status_code == 403
    assert client.post("/admin/knox/authtoken/add/", {"user": ivy.pk}).status_code == 403
    assert AuthToken.objects.filter(user=ivy).count() == 1
