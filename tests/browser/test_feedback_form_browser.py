"""The public feedback form in a real browser: fields found by their labels, sent, thanked.

Database assertions come after the browser is closed: Playwright's sync API runs an
event loop in the test thread, and ORM calls made inside it would open a second,
context-local connection that outlives the test.
"""

from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from crm.models import Feedback

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("reinstall_migration_data")]

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@contextmanager
def browser_page():
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield browser.new_page()
        finally:
            browser.close()


@pytest.mark.django_db(transaction=True)
def test_a_customer_fills_in_the_form_by_its_labels_and_is_thanked(live_server):
    with browser_page() as page:
        page.goto(f"{live_server.url}/feedback/?staff=jane")
        page.get_by_label("5 — excellent").check()
        page.get_by_label("Tell us what happened").fill("Jane sorted it in minutes.")
        page.get_by_label("E-mail address (optional)").fill("ann@example.com")
        page.get_by_label("You may e-mail me about this feedback").check()
        page.screenshot(path=str(ARTIFACTS / "feedback-form.png"), full_page=True)
        page.get_by_role("button", name="Send feedback").click()

        page.wait_for_url("**/feedback/thanks/")
        thanked = page.get_by_role("heading", name="Thank you").is_visible()
        page.screenshot(path=str(ARTIFACTS / "feedback-thanks.png"), full_page=True)

    assert thanked
    feedback = Feedback.objects.get()
    assert (feedback.rating, feedback.staff_named, feedback.contact_consent) == (5, ["jane"], True)
    assert feedback.identifiers == {"email": "ann@example.com"}


@pytest.mark.django_db(transaction=True)
def test_a_mistake_is_announced_beside_its_field(live_server):
    with browser_page() as page:
        page.goto(f"{live_server.url}/feedback/")
        page.get_by_label("Phone number (optional)").fill("12")
        # issue 13: NPS is a 0-10 scale of radios too, so the rating is picked within its own group
        page.get_by_role("group", name="How was your experience?").get_by_label("4", exact=True).check()
        page.get_by_role("button", name="Send feedback").click()

        invalid = page.get_by_label("Phone number (optional)").get_attribute("aria-invalid")
        message = page.locator("#id_phone_error").inner_text()
        page.screenshot(path=str(ARTIFACTS / "feedback-form-error.png"), full_page=True)

    assert invalid == "true"
    assert "phone number" in message
    assert not Feedback.objects.exists()
