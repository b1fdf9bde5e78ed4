"""Finding 2: password guessing is refused on every login path alike (django-axes).

Each test plays the attack through HTTP: many wrong passwords, then the right one,
which must still be refused during the cool-off — a 429 on the token endpoint, a
form error and no session on the agent and admin login pages.
"""

import datetime as dt

import pytest
from axes.models import AccessAttempt
from django.test import Client
from knox.models import AuthToken

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

TOKEN = "/api/v1/auth/token"
RIGHT = "pw-for-tests"


def token_login(api, username, password, **extra):
    return api.post(TOKEN, {"username": username, "password": password}, format="json", **extra)


def form_login(client, path, username, password, **extra):
    return client.post(path, {"username": username, "password": password}, **extra)


def test_forty_wrong_passwords_then_the_right_one_get_no_token(anon_api, alice, settings):
    codes = [token_login(anon_api, "alice", f"guess-{n}").status_code for n in range(40)]
    right = token_login(anon_api, "alice", RIGHT)

    limit = settings.AXES_FAILURE_LIMIT
    assert limit == 10  # CRM_LOGIN_FAILURE_LIMIT's default
    # The limit-th failure already answers 429: it is the one that locks.
    assert codes[: limit - 1] == [400] * (limit - 1)
    assert set(codes[limit - 1 :]) == {429}
    assert right.status_code == 429
    assert "token" not in right.json() and "Too many failed logins" in right.json()["detail"]
    assert right["Retry-After"] == str(15 * 60)  # CRM_LOGIN_COOLOFF_MINUTES' default
    assert not AuthToken.objects.filter(user=alice).exists()


@pytest.mark.parametrize(
    ("path", "who", "role"), [("/agent/login/", "alice", "agent"), ("/admin/login/", "sam", "supervisor")]
)
def test_forty_wrong_passwords_then_the_right_one_get_no_session_on_the_login_pages(path, who, role):
    UserFactory(username=who, role=role)
    client = Client()
    for n in range(40):
        assert form_login(client, path, who, f"guess-{n}").status_code == 200

    right = form_login(client, path, who, RIGHT)

    # A form error that says why (not a bare 403 page), and no session.
    assert right.status_code == 200
    assert "Too many failed logins" in right.content.decode()
    assert "_auth_user_id" not in client.session
    assert client.get("/agent/" if role == "agent" else "/admin/").status_code == 302


def test_one_limiter_per_username_across_paths_and_addresses(alice, anon_api):
    # Failures spread over the agent page and the admin, from many addresses...
    for n in range(10):
        path = "/agent/login/" if n % 2 else "/admin/login/"
        form_login(Client(), path, "alice", "wrong", REMOTE_ADDR=f"10.0.0.{n}")

    # ...lock alice's username everywhere, from any address.
    assert token_login(anon_api, "alice", RIGHT, REMOTE_ADDR="10.1.1.1").status_code == 429
    assert form_login(Client(), "/agent/login/", "alice", RIGHT, REMOTE_ADDR="10.1.1.2").status_code == 200
    # Another user is not locked out by alice's failures.
    UserFactory(username="bea", role="agent")
    assert token_login(anon_api, "bea", RIGHT, REMOTE_ADDR="10.1.1.1").status_code == 200


def test_one_limiter_per_client_address_across_usernames(alice, anon_api):
    # One address tries ten different usernames (credential stuffing)...
    for n in range(10):
        token_login(anon_api, f"user-{n}", "wrong", REMOTE_ADDR="203.0.113.7")

    # ...and that address is refused even alice's right password, on every path.
    assert token_login(anon_api, "alice", RIGHT, REMOTE_ADDR="203.0.113.7").status_code == 429
    page = form_login(Client(), "/agent/login/", "alice", RIGHT, REMOTE_ADDR="203.0.113.7")
    assert "Too many failed logins" in page.content.decode()
    # Alice at her own desk is not.
    assert token_login(anon_api, "alice", RIGHT, REMOTE_ADDR="198.51.100.2").status_code == 200


def test_behind_a_proxy_the_address_is_the_forwarded_one(alice, anon_api, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    proxy = {"REMOTE_ADDR": "10.0.0.1"}
    for n in range(10):
        token_login(anon_api, f"user-{n}", "wrong", HTTP_X_FORWARDED_FOR="203.0.113.7", **proxy)

    # The attacker's address is locked; everyone else behind the same proxy is not.
    assert token_login(anon_api, "alice", RIGHT, HTTP_X_FORWARDED_FOR="203.0.113.7", **proxy).status_code == 429
    assert token_login(anon_api, "alice", RIGHT, HTTP_X_FORWARDED_FOR="198.51.100.2", **proxy).status_code == 200


def test_the_cool_off_ends_and_the_right_password_works_again(alice, anon_api, settings):
    settings.AXES_FAILURE_LIMIT = 3  # CRM_LOGIN_FAILURE_LIMIT
    settings.AXES_COOLOFF_TIME = dt.timedelta(minutes=5)  # CRM_LOGIN_COOLOFF_MINUTES
    codes = [token_login(anon_api, "alice", "wrong").status_code for _ in range(3)]
    locked = token_login(anon_api, "alice", RIGHT)
    assert codes == [400, 400, 429] and locked.status_code == 429 and locked["Retry-After"] == "300"

    # Five minutes and a second after the last failure:
    for attempt in AccessAttempt.objects.all():
        attempt.attempt_time -= dt.timedelta(minutes=5, seconds=1)
        attempt.save(update_fields=["attempt_time"])

    again = token_login(anon_api, "alice", RIGHT)
    assert again.status_code == 200 and again.json()["token"]


def test_a_few_mistakes_do_not_lock_anyone_out(alice, anon_api):
    for _ in range(5):
        token_login(anon_api, "alice", "typo")
    assert token_login(anon_api, "alice", RIGHT).status_code == 200
    assert form_login(Client(), "/agent/login/", "alice", RIGHT).status_code == 302
