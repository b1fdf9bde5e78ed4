"""Each telephony platform's sample events (tests/data/cti) pop Jim's card on Jane's open /agent/ page.

Headless Chromium against pytest-django's live server; the platform's requests are
posted over HTTP exactly as the vendor sends them (Twilio's form body signed by
Twilio's own library, Connect's and Genesys' JSON with an integration token).
"""

import json
import urllib.request
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
from django.db import connections
from django.test import Client
from playwright.sync_api import expect, sync_playwright
from twilio.request_validator import RequestValidator

from crm import tokens
from crm.models import Interaction, StaffProfile
from tests.factories import CustomerFactory, IdentityFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CTI = Path(__file__).resolve().parents[1] / "data" / "cti"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
POP_WAIT_MS = 3000
TWILIO_TOKEN = "fake_auth_token_0123456789abcdef"


@pytest.fixture
def chromium(transactional_db, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
            connections.close_all()


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.AGENT_EVENTS_KEEPALIVE = 1
    settings.CRM_TWILIO_AUTH_TOKEN = TWILIO_TOKEN
    settings.CRM_TWILIO_PUBLIC_URL = ""


@pytest.fixture
def jane(transactional_db):
    """Jane, set up with the identities the samples carry on each platform."""
    user = UserFactory(username="jane", first_name="Jane", last_name="Doyle", role="agent")
    StaffProfile.objects.create(
        user=user,
        twilio_contact_uri="client:agent_alice",
        twilio_worker_sid="WKaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        connect_agent="arn:aws:connect:us-east-1:111122223333:instance/aaaaaaaa-0000-4000-8000-000000000001"
        "/agent/dddddddd-0000-4000-8000-000000000001",
        genesys_user_id="77777777-0000-4000-8000-000000000001",
    )
    return user


@pytest.fixture
def jim(transactional_db):
    customer = CustomerFactory(display_name="James Okafor", preferred_name="Jim")
    IdentityFactory(customer=customer, kind="phone", value="+12125550100", normalized="+12125550100")
    return customer


@pytest.fixture
def cti_token(transactional_db):
    return tokens.issue(UserFactory(username="cti", role="integration"))[0]


@pytest.fixture
def agent_page(chromium, live_server, jane):
    client = Client()
    client.force_login(jane)
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}])
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{live_server.url}/agent/")
    expect(page.locator("#status")).to_have_text("Ready for a contact")
    expect(page.locator("#link")).to_have_text("live")
    yield page
    context.close()
    assert not errors, errors


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - live server
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the live test server
        return response.status, json.loads(response.read())


def twilio(live_server, name: str) -> tuple[int, dict]:
    url = f"{live_server.url}/api/v1/calls/twilio"
    body = (CTI / "twilio" / name).read_text()
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(url, dict(parse_qsl(body, keep_blank_values=True)))
    return post(
        url,
        body.encode(),
        {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature},
    )


def json_post(live_server, path: str, sample: Path, token: str) -> tuple[int, dict]:
    return post(
        f"{live_server.url}{path}",
        sample.read_bytes(),
        {"Content-Type": "application/json", "Authorization": f"Token {token}"},
    )


def test_twilio_status_callbacks_pop_the_card(agent_page, live_server, jim, jane):
    status, body = twilio(live_server, "voice_status_ringing.txt")
    assert (status, body["status"]) == (202, "applied"), body
    expect(agent_page.locator("#c-name")).to_have_text("James Okafor", timeout=POP_WAIT_MS)
    expect(agent_page.locator("#status")).to_contain_text("Ringing")
    twilio(live_server, "voice_status_in-progress.txt")
    expect(agent_page.locator("#status")).to_contain_text("On call")
    interaction = Interaction.objects.get(pk=body["interaction_id"])
    assert (interaction.call_id, interaction.agent, interaction.customer) == (
        "CA11111111111111111111111111111111",
        jane,
        jim,
    )


def test_amazon_connect_lookup_then_connected_to_agent_pops_the_card(agent_page, live_server, jim, jane, cti_token):
    path = "/api/v1/calls/amazon-connect"
    status, answer = json_post(live_server, path, CTI / "connect" / "contact_flow_lambda_event.json", cti_token)
    assert (status, answer["match"], answer["customer_name"]) == (200, "true", "Jim")
    status, body = json_post(live_server, path, CTI / "connect" / "contact_event_connected_to_agent.json", cti_token)
    assert (status, body["status"], body["interaction_id"]) == (202, "applied", answer["interaction_id"])
    expect(agent_page.locator("#c-name")).to_have_text("James Okafor", timeout=POP_WAIT_MS)
    expect(agent_page.locator("#status")).to_contain_text("On call")
    assert Interaction.objects.get(pk=answer["interaction_id"]).agent == jane


def test_genesys_user_start_pops_the_card(agent_page, live_server, jim, jane, cti_token):
    path = "/api/v1/calls/genesys"
    status, body = json_post(live_server, path, CTI / "genesys" / "eventbridge_user_start.json", cti_token)
    assert (status, body["status"]) == (202, "applied"), body
    expect(agent_page.locator("#c-name")).to_have_text("James Okafor", timeout=POP_WAIT_MS)
    expect(agent_page.locator("#status")).to_contain_text("On call")
    interaction = Interaction.objects.get(pk=body["interaction_id"])
    assert (interaction.call_id, interaction.agent) == ("99999999-0000-4000-8000-000000000001", jane)
