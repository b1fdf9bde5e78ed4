"""Finding 3: API tokens are hashed at rest, one per login, expire for people, and can be revoked.

Every test plays it through HTTP: log in on POST /api/v1/auth/token, use the token,
then log out, change the password, deactivate, or let it expire, and use it again.
"""

import datetime as dt
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.db import connection
from django.test import Client
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from crm.tokens import legacy_digest
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

TOKEN = "/api/v1/auth/token"
LOOKUP = "/api/v1/context/lookup"
FACTORY_PASSWORD = "pw-for-tests"


def login(username, password=FACTORY_PASSWORD):
    response = APIClient().post(TOKEN, {"username": username, "password": password}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def bearer(token) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def agent_can_work(token) -> bool:
    """Both authentication paths: crm's (reasons) and the lookup's one-query path."""
    client = bearer(token)
    reasons = client.get("/api/v1/reasons").status_code
    lookup = client.post(LOOKUP, {"phone": "+12125550100"}, format="json").status_code
    assert {reasons, lookup} <= {200, 401}, (reasons, lookup)
    assert (reasons == 200) == (lookup == 200), (reasons, lookup)
    return reasons == 200


def integration_can_post(token) -> bool:
    code = bearer(token).post("/api/v1/calls", {}, format="json").status_code
    assert code in (400, 401), code  # 400: authenticated, then the empty body refused
    return code == 400


def test_each_login_gives_a_new_token_and_both_work(alice):
    first, second = login("alice"), login("alice")

    assert first["token"] != second["token"]
    assert agent_can_work(first["token"]) and agent_can_work(second["token"])


def test_a_persons_token_expires_after_the_ttl(alice):
    before = timezone.now()
    body = login("alice")

    expires_at = dt.datetime.fromisoformat(body["expires_at"])
    assert before + dt.timedelta(hours=12) <= expires_at <= timezone.now() + dt.timedelta(hours=12)
    # Twelve hours and a second later (CRM_TOKEN_TTL_HOURS' default):
    AuthToken.objects.filter(user=alice).update(expiry=timezone.now() - dt.timedelta(seconds=1))
    assert not agent_can_work(body["token"])


def test_an_integration_token_does_not_expire(ivy):
    body = login("ivy")

    assert body["expires_at"] is None
    assert integration_can_post(body["token"])


def test_tokens_are_stored_hashed(alice):
    token = login("alice")["token"]

    stored = AuthToken.objects.get(user=alice)
    assert len(token) == 64 and token not in (stored.digest, stored.token_key)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {AuthToken._meta.db_table}")  # noqa: S608 - a model's table name
        assert not any(token in str(value) for row in cursor.fetchall() for value in row)


def test_logging_out_revokes_the_presented_token_only(alice):
    desk, phone = login("alice")["token"], login("alice")["token"]

    assert bearer(desk).delete(TOKEN).status_code == 204

    assert not agent_can_work(desk)
    assert agent_can_work(phone)
    assert bearer(desk).delete(TOKEN).status_code == 401  # a revoked token cannot log out again


def test_logging_out_everywhere_revokes_every_token_of_the_user(alice, sam):
    desk, phone = login("alice")["token"], login("alice")["token"]
    others = login("sam")["token"]

    assert bearer(desk).delete(f"{TOKEN}?all=true").status_code == 204

    assert not agent_can_work(desk) and not agent_can_work(phone)
    assert agent_can_work(others)


def test_a_bad_logout_changes_nothing(alice):
    token = login("alice")["token"]

    assert bearer(token).delete(f"{TOKEN}?all=maybe").status_code == 400
    assert APIClient().delete(TOKEN).status_code == 401
    assert agent_can_work(token)


def test_a_password_change_revokes_every_token(alice):
    tokens = [login("alice")["token"] for _ in range(2)]

    alice.set_password("a-new-long-password")
    alice.save()

    assert not any(agent_can_work(token) for token in tokens)
    assert agent_can_work(login("alice", "a-new-long-password")["token"])


def test_a_password_changed_in_the_admin_revokes_every_token(alice):
    token = login("alice")["token"]
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    admin = Client()
    admin.force_login(root)

    response = admin.post(
        f"/admin/auth/user/{alice.pk}/password/",
        {"password1": "another-long-password", "password2": "another-long-password", "usable_password": "true"},
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    assert not agent_can_work(token)


def test_deactivation_revokes_every_token_for_good(alice):
    token = login("alice")["token"]

    alice.is_active = False
    alice.save()
    alice.is_active = True  # reactivated later: the old token stays dead
    alice.save()

    assert not agent_can_work(token)
    assert not AuthToken.objects.filter(user=alice).exists()


def test_a_token_issued_before_hashing_keeps_working_after_migrate(ivy):
    """Migration 0010 carries plain DRF tokens over as digests, then drops their table."""
    legacy = "0123456789abcdef0123456789abcdef01234567"  # DRF authtoken's form: 40 hex characters
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, user_id integer, created timestamp)")
        cursor.execute("INSERT INTO authtoken_token VALUES (%s, %s, %s)", [legacy, ivy.pk, timezone.now()])
    migration = __import__("crm.migrations.0010_issue10_hashed_tokens", fromlist=["carry_over_plain_tokens"])
    editor = SimpleNamespace(connection=connection, execute=lambda sql: connection.cursor().execute(sql))

    migration.carry_over_plain_tokens(apps, editor)

    assert "authtoken_token" not in connection.introspection.table_names()
    stored = AuthToken.objects.get(user=ivy)
    assert (stored.digest, stored.token_key) == legacy_digest(legacy) and stored.expiry is None
    assert integration_can_post(legacy)


@pytest.mark.parametrize(
    "key", ["abc\x00def", "z" * 64, "A" * 64, "0" * 63, "0" * 41, "0123456789abcde" + "0" * 49, "é" * 64]
)
def test_a_malformed_or_unknown_token_is_401(alice, key):
    login("alice")
    assert not agent_can_work(key)
