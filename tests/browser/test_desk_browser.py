"""The supervisor desk in headless Chromium (issue 13): merge safeguards, unmerge round trip,
urgency order and highlighting, the home tiles' counts, the feedback form's inputs.

Screenshots land in artifacts/; with GOLDFISH_SCREENS=docs/screens (scripts/screenshots_admin.py)
the ones the README shows are written there as admin-*.png.
"""

import datetime as dt
import os
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from crm import models
from tests.browser.test_admin_browser import ARTIFACTS, login, roles  # noqa: F401 - fixtures
from tests.browser.test_admin_browser import browser as browser
from tests.factories import CustomerFactory, FeedbackFactory, IdentityFactory, InteractionFactory, UserFactory, reason
from tests.fixtures.admin import make_person

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENS = os.environ.get("GOLDFISH_SCREENS")


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    if SCREENS:
        Path(SCREENS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENS) / f"{name}.png"), full_page=True)


def owned(customer) -> dict[str, int]:
    kinds = {
        "identities": models.Identity,
        "interactions": models.Interaction,
        "cases": models.Case,
        "feedback": models.Feedback,
        "follow_ups": models.FollowUp,
        "preferences": models.Preference,
        "facts": models.Fact,
        "recurring_problems": models.RecurringProblem,
    }
    return {name: model.objects.filter(customer=customer).count() for name, model in kinds.items()}


@pytest.fixture
def sofia(roles):  # noqa: F811
    return UserFactory(username="sofia", first_name="Sofia", role="supervisor", is_staff=True)


def test_a_merge_of_two_verified_accounts_needs_a_reason_and_undo_restores_every_count(browser, live_server, sofia):
    now = timezone.now()
    jane = UserFactory(username="jane", first_name="Jane", role="agent")
    rosa = make_person("Rosa Walsh", 1, agent=jane).customer
    nils = make_person("Nils Walsh", 2, agent=jane).customer
    models.Customer.objects.filter(pk=rosa.pk).update(tier="vip")
    models.Identity.objects.filter(kind="account").update(verified_at=now)
    IdentityFactory(customer=nils, kind="phone", value="+12125550001", normalized="+12125550001")
    before_rosa, before_nils = owned(rosa), owned(nils)
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    page.on("dialog", lambda dialog: dialog.accept())
    base = live_server.url
    login(page, base, "sofia")

    # the duplicates page offers the pair; the preview lists the conflicts and blocks the merge
    page.goto(f"{base}/admin/crm/customer/duplicates/")
    page.locator(".merge-link").first.click()
    conflicts = page.locator("tr.gf-conflict")
    expect(conflicts.filter(has_text="account")).to_have_count(1)
    expect(conflicts.filter(has_text="tier")).to_have_count(1)
    expect(page.locator("#merge-blocked")).to_contain_text("different verified account")
    shot(page, "admin-merge-preview")
    page.click("#confirm-merge")  # without the tick and the reason the browser does not send the form
    assert not models.MergeRecord.objects.exists()

    page.check("#confirm-different")
    page.fill("#merge-reason", "Customer confirmed both accounts are hers")
    page.click("#confirm-merge")
    expect(page.locator("#customer-360")).to_be_visible()
    record = models.MergeRecord.objects.get()
    assert record.reason == "Customer confirmed both accounts are hers"
    survivor, duplicate = record.survivor, record.duplicate
    assert owned(duplicate)["interactions"] == 0

    # undo from the survivor's 360
    page.goto(f"{base}/admin/crm/customer/{survivor.pk}/360/")
    page.click(".unmerge-btn")
    expect(page.locator(".messagelist")).to_contain_text("undone")
    page.screenshot(path=str(ARTIFACTS / "admin-360-after-unmerge.png"), full_page=True)
    assert {survivor.pk: owned(survivor), duplicate.pk: owned(duplicate)} == {
        rosa.pk: before_rosa,
        nils.pk: before_nils,
    }

    # "not a duplicate" takes the pair off the list, and undo brings it back
    page.goto(f"{base}/admin/crm/customer/duplicates/")
    page.locator(".dismiss-btn").first.click()
    expect(page.locator(".gf-pair")).to_have_count(0)
    expect(page.locator("#dismissed")).to_contain_text("Rosa Walsh")
    page.click(".undo-dismiss-btn")
    expect(page.locator(".gf-pair")).to_have_count(1)


def test_queues_put_overdue_first_highlighted_and_home_tiles_count_them(browser, live_server, sofia):
    now = timezone.now()
    customer = CustomerFactory(display_name="Ola Berg")
    for hours, status in ((30, "open"), (-50, "open"), (2, "open"), (-3, "open"), (-400, "done")):
        models.FollowUp.objects.create(
            kind="callback", status=status, customer=customer, owner=sofia, due_at=now + dt.timedelta(hours=hours)
        )
    for hours in (-20, 5):
        models.Case.objects.create(
            customer=customer, subject="Service recovery", kind="service_recovery", opened_at=now,
            due_at=now + dt.timedelta(hours=hours),
        )  # fmt: skip
    FeedbackFactory(customer=customer, rating=3, text="Still no engineer", sentiment="negative", status="processed")
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    login(page, live_server.url, "sofia")

    tiles = {
        key: page.locator(f'[data-tile="{key}"] .gf-tile-count').inner_text()
        for key in ("recovery", "overdue", "review", "recurring")
    }
    shot(page, "admin-home")
    assert tiles == {"recovery": "2", "overdue": "2", "review": "1", "recurring": "0"}

    page.click('[data-tile="overdue"]')
    expect(page.locator("#result_list tbody tr")).to_have_count(2)
    page.goto(f"{live_server.url}/admin/crm/followup/")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(5)
    dues = [rows.nth(i).locator(".field-due").inner_text() for i in range(5)]
    assert "2 d 2 h late" in dues[0] and "late" in dues[1] and "late" not in dues[2]
    red = rows.nth(0).locator("td").first.evaluate("e => getComputedStyle(e).backgroundColor")
    plain = rows.nth(2).locator("td").first.evaluate("e => getComputedStyle(e).backgroundColor")
    assert red != plain
    shot(page, "admin-queue")
    seed_weeks(sofia)
    page.goto(f"{live_server.url}/admin/crm/interaction/reports/?weeks=8")
    expect(page.locator("#chart-quality")).to_be_visible()
    expect(page.locator("#chart-reasons")).to_contain_text("Broadband fault that keeps coming back")
    shot(page, "admin-reports")
    page.click("#board-same-period")
    expect(page.locator("#board-period")).to_contain_text("8 complete weeks")


def seed_weeks(agent) -> None:
    """Eight weeks of contacts, feedback and praise, so the report has something to show."""
    now = timezone.now()
    long_reason, _ = models.ContactReason.objects.update_or_create(
        code="broadband_fault", defaults={"label": "Broadband fault that keeps coming back"}
    )
    billing = reason("billing")
    for week in range(1, 9):
        for i in range(3 + week % 3):
            customer = CustomerFactory(display_name=f"Caller {week}-{i}")
            when = now - dt.timedelta(days=7 * week + i % 5, hours=i)
            code = long_reason if i % 2 else billing
            InteractionFactory(customer=customer, agent=agent, reason=code, outcome="resolved", started_at=when)
            if i % 3 == 0:
                InteractionFactory(customer=customer, agent=agent, reason=code, started_at=when + dt.timedelta(days=2))
            feedback = FeedbackFactory(
                customer=customer, rating=1 + (week + i) % 5, nps=(week * 3 + i) % 11, received_at=when
            )
            if feedback.rating >= 4:
                models.Recognition.objects.create(feedback=feedback, staff=agent)
    models.Recognition.objects.update(created_at=now - dt.timedelta(days=10))


def test_the_feedback_form_has_typed_inputs_an_nps_scale_and_a_complaint_is_told_what_happens(browser, live_server):
    page = browser.new_page(viewport={"width": 420, "height": 900})
    page.goto(f"{live_server.url}/feedback/")

    assert page.locator("input[name=email]").get_attribute("type") == "email"
    assert page.locator("input[name=phone]").get_attribute("type") == "tel"
    expect(page.locator("input[name=nps][type=radio]")).to_have_count(11)
    expect(page.locator("select")).to_have_count(0)
    page.get_by_label("1 — poor").check()
    page.get_by_label("3 out of 10").check()
    page.get_by_label("Tell us what happened").fill("Waited 40 minutes and nothing was fixed.")
    page.get_by_role("button", name="Send feedback").click()

    expect(page.locator("#sorry")).to_contain_text("team leader")
    assert models.Feedback.objects.get().nps == 3
