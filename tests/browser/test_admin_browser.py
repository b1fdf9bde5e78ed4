"""The supervisors' admin in headless Chromium: 360, merge from the duplicates view, reports; agents refused.

Screenshots land in artifacts/ for a human to look at.
"""

import datetime as dt
from pathlib import Path

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import Group
from django.db import connections
from django.db.models import F
from django.utils import timezone
from playwright.sync_api import expect, sync_playwright

from crm import models
from tests.factories import IdentityFactory, UserFactory
from tests.fixtures.admin import make_person

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PASSWORD = "pw-for-tests"


@pytest.fixture
def browser(monkeypatch):
    # Playwright's sync API keeps an event loop in this thread; the ORM calls between
    # browser steps are ordinary synchronous test code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: install Debian's chromium (make browser)"
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()
        # ORM calls made while Playwright's loop was active opened their own connection
        # (Django's connections are context-local); close it, or the test database
        # cannot be dropped at the end of the session.
        connections.close_all()


@pytest.fixture
def roles(db):
    """Groups and their permissions, whatever an earlier transactional test flushed."""
    migration = __import__("crm.migrations.0003_supervisor_permissions", fromlist=["grant"])
    for name in ("agent", "supervisor", "integration"):
        Group.objects.get_or_create(name=name)
    migration.grant(django_apps, None)
    reasons = [("billing", "Billing question"), ("payment", "Payment or refund")]
    for code, label in reasons:
        models.ContactReason.objects.get_or_create(code=code, defaults={"label": label})


def login(page, base: str, username: str) -> None:
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_a_supervisor_opens_a_360_merges_duplicates_and_reads_the_reports(browser, live_server, roles):
    UserFactory(username="sofia", first_name="Sofia", role="supervisor", is_staff=True)
    agent = UserFactory(username="jane", first_name="Jane", last_name="Doyle", role="agent")
    maria = make_person("Maria Garcia", 1, agent=agent, days_ago=3)
    twin = make_person("Maria GARCIA", 2, agent=agent, days_ago=10)
    IdentityFactory(customer=twin.customer, kind="email", value=maria.email, normalized=maria.email)
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    base = live_server.url

    login(page, base, "sofia")
    expect(page.locator("#supervisor-tools")).to_be_visible()
    shot(page, "admin-index")

    # find her by phone, written as she says it, and open the 360
    page.goto(f"{base}/admin/crm/customer/?q=(212) 555-0001")
    page.get_by_role("link", name="Maria Garcia", exact=True).click()
    expect(page.locator("#identities")).to_contain_text(maria.phone)
    expect(page.locator("#timeline .gf-entry").first).to_be_visible()
    shot(page, "customer-360")

    # merge the twin from the duplicates view, after the preview
    page.goto(f"{base}/admin/crm/customer/duplicates/")
    pair = page.locator(f'.gf-pair[data-duplicate="{twin.customer.pk}"]')
    expect(pair).to_contain_text("likely the same person")
    shot(page, "duplicates")
    pair.locator("a.merge-link").click()
    expect(page.locator("#will-move")).to_contain_text("contacts")
    shot(page, "merge-preview")
    page.click("#confirm-merge")
    expect(page.locator(".messagelist")).to_contain_text("Merged")
    expect(page.locator("#identities")).to_contain_text(twin.phone)
    shot(page, "after-merge")
    twin.customer.refresh_from_db()
    assert twin.customer.merged_into_id == maria.customer.pk
    assert models.Interaction.objects.filter(customer=maria.customer).count() == 4

    # the reports draw their charts (issue 13: over complete weeks, so the history is moved two weeks back)
    models.Interaction.objects.update(started_at=F("started_at") - dt.timedelta(days=14))
    models.Recognition.objects.update(created_at=timezone.now() - dt.timedelta(days=8))
    page.goto(f"{base}/admin/crm/interaction/reports/?weeks=8")
    line = page.locator("#chart-quality path.gf-series").first
    expect(line).to_be_visible()
    assert page.locator("#chart-quality").bounding_box()["width"] > 300
    assert page.locator("#chart-recognitions rect.gf-bar").count() == 1
    shot(page, "reports")

    # the queues
    page.goto(f"{base}/admin/crm/followup/")
    page.locator("button.gf-done").first.click()
    expect(page.locator(".messagelist")).to_contain_text("marked done")
    assert models.FollowUp.objects.filter(status="done").count() == 1
    shot(page, "follow-ups")
    page.goto(f"{base}/admin/crm/recognition/")
    expect(page.locator("#recognition-board")).to_contain_text("Jane Doyle")
    shot(page, "recognitions")


def test_an_agent_is_refused(browser, live_server, roles):
    UserFactory(username="jane", role="agent")
    page = browser.new_page(viewport={"width": 1100, "height": 700})

    login(page, live_server.url, "jane")
    expect(page.locator(".errornote")).to_contain_text("staff account")
    page.goto(f"{live_server.url}/admin/crm/customer/duplicates/")
    assert "/admin/login/" in page.url
    shot(page, "agent-refused")
