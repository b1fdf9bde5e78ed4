"""Operations: health and readiness, the OpenAPI schema and docs, `check --deploy`, demo data."""

import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from crm.models import Case, Customer, Fact, Identity, Interaction, Preference

pytestmark = pytest.mark.django_db

BASE_DIR = Path(__file__).resolve().parents[3]
CLOSED_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def test_healthz_answers_while_the_process_serves(anon_api):
    response = anon_api.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_readyz_reports_each_dependency_when_all_are_up(anon_api):
    response = anon_api.get("/readyz")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ready"
    assert (body["database"], body["cache"]) == ("ok", "ok")
    # With REDIS_URL (CI, make test) the broker is Redis; without it tasks run in-process.
    assert body["broker"] == ("ok" if settings.REDIS_URL else "in-process")


def test_readyz_is_503_quickly_when_redis_is_unreachable(anon_api, settings):
    settings.REDIS_URL = CLOSED_REDIS
    settings.CELERY_BROKER_URL = CLOSED_REDIS
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CLOSED_REDIS,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    started = time.monotonic()
    response = anon_api.get("/readyz")
    elapsed = time.monotonic() - started

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["database"] == "ok"
    assert body["cache"].startswith("down") and body["broker"].startswith("down")
    assert elapsed < 5, f"readiness took {elapsed:.1f}s with Redis down; it must not hang"


def test_the_schema_is_openapi_3_with_every_contract_path(agent_api):
    response = agent_api.get("/api/v1/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert {
        "/api/v1/auth/token",
        "/api/v1/customers",
        "/api/v1/customers/{customer_id}",
        "/api/v1/customers/{customer_id}/identities",
        "/api/v1/customers/{customer_id}/timeline",
        "/api/v1/customers/{customer_id}/merge",
        "/api/v1/customers/{customer_id}/export",
        "/api/v1/interactions",
        "/api/v1/interactions/{interaction_id}",
        "/api/v1/reasons",
        "/api/v1/context/lookup",
    } <= set(schema["paths"])
    assert {"get", "patch", "delete"} <= set(schema["paths"]["/api/v1/customers/{customer_id}"])
    assert "tokenAuth" in schema["components"]["securitySchemes"]


def test_the_docs_page_renders_from_local_assets(agent_api):
    response = agent_api.get("/api/v1/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "SwaggerUIBundle" in page or "swagger-ui" in page
    assets = re.findall(r'(?:src|href)="(/static/drf_spectacular_sidecar/[^"]+)"', page)
    assert assets, "the docs page should load Swagger UI from this service, not a CDN"
    assert "cdn" not in page.lower()
    for asset in assets:
        served = agent_api.get(asset)
        assert served.status_code == 200, asset
        b"".join(served.streaming_content if served.streaming else [served.content])


def _check_deploy(env_overrides: dict) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CRM_", "PYTEST"))}
    env.update({"DJANGO_SETTINGS_MODULE": "crm.settings", **env_overrides})
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_reports_nothing_with_production_settings():
    result = _check_deploy(
        {"DEBUG": "false", "SECRET_KEY": secrets.token_urlsafe(60), "ALLOWED_HOSTS": "crm.example.com"}
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_flags_the_development_secret_key():
    """The check above means something: without a real SECRET_KEY it does fail."""
    result = _check_deploy({"DEBUG": "false", "SECRET_KEY": "", "ALLOWED_HOSTS": "crm.example.com"})
    assert result.returncode != 0
    assert "security.W009" in result.stderr + result.stdout


def _world() -> dict[str, int]:
    return {m.__name__: m.objects.count() for m in (Customer, Identity, Interaction, Case, Fact, Preference)}


def test_seed_demo_twice_duplicates_nothing(capsys):
    from django.contrib.auth import get_user_model

    call_command("seed_demo", customers=12)
    first_world, first_staff = _world(), get_user_model().objects.count()
    out = capsys.readouterr().out
    assert first_world["Customer"] >= 12 and first_world["Interaction"] > 0
    assert "goldfish-demo" in out, "the demo logins are printed"

    call_command("seed_demo", customers=12)
    assert (_world(), get_user_model().objects.count()) == (first_world, first_staff)


def test_the_schema_validates_against_openapi_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert "openapi: 3" in (tmp_path / "schema.yaml").read_text()


def test_the_error_pages_are_json_under_the_api_and_html_elsewhere(rf):
    from crm.exceptions import not_found, server_error

    api_500 = server_error(rf.get("/api/v1/customers"))
    assert (api_500.status_code, api_500["Content-Type"]) == (500, "application/json")
    api_404 = not_found(rf.get("/api/v1/nothing-here"))
    assert (api_404.status_code, api_404["Content-Type"]) == (404, "application/json")
    assert server_error(rf.get("/admin/"))["Content-Type"].startswith("text/html")


@pytest.mark.django_db(transaction=True)
def test_roles_and_reasons_survive_a_flush():
    """Tests with real transactions flush the database after themselves; later tests still need the roles."""
    from django.contrib.auth.models import Group
    from django.core.management import call_command

    from crm.models import ContactReason

    call_command("flush", "--noinput", verbosity=0)
    assert set(Group.objects.values_list("name", flat=True)) >= {"agent", "supervisor", "integration"}
    assert ContactReason.objects.filter(code="billing").exists()
