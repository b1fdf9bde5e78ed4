"""The /agent/ page's second version (issue 12): what it carries, and who may read My recognitions."""

import re

import pytest
from django.test import Client

from crm.models import Recognition
from tests.factories import CustomerFactory, FeedbackFactory, UserFactory

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_page_has_the_banners_the_panels_and_its_shortcuts_with_no_inline_code(alice):
    html = logged_in(alice).get("/agent/").content.decode()

    for element in ('id="offline"', 'id="queued"', 'id="kudos"', 'id="shortcuts"', 'id="draft-note"'):
        assert element in html, element
    assert "Disconnected — calls will not pop." in html
    for shortcut in ("Find a customer", "Save the wrap-up", "Verified on this call", "Next contact"):
        assert shortcut in html
    # A strict CSP (script-src 'self'; style-src 'self') works: no inline script, style or handler.
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert "<style" not in html and " style=" not in html
    assert not re.search(r"\son[a-z]+=", html)


def test_my_recognitions_are_the_signed_in_agents_own(alice, ivy):
    customer = CustomerFactory()
    other = UserFactory(username="omar", role="agent")
    for staff, quote in ((alice, "Alice was kind"), (other, "Omar was quick")):
        Recognition.objects.create(feedback=FeedbackFactory(customer=customer, rating=5), staff=staff, quote=quote)

    mine = logged_in(alice).get("/agent/recognitions")

    assert mine.status_code == 200
    assert [r["quote"] for r in mine.json()["results"]] == ["Alice was kind"]
    assert logged_in(ivy).get("/agent/recognitions").status_code == 403  # the connector is no agent
    assert Client().get("/agent/recognitions").status_code == 302  # to the agent login
