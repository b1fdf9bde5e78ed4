"""/agent/: who may open it, its event stream, and the demo's simulate_call."""

import json
import re
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from context import events
from crm import privacy
from crm.models import Interaction
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

STATIC = Path(__file__).resolve().parents[3] / "context" / "static" / "agent"
TEMPLATES = Path(__file__).resolve().parents[3] / "context" / "templates" / "agent"


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def read_events(response, want: str, limit: int = 10) -> dict:
    """Read the stream until an event of type `want` arrives (bounded by `limit` chunks)."""
    chunks = iter(response.streaming_content)
    for _ in range(limit):
        chunk = next(chunks).decode()
        match = re.search(rf"event: {want}\ndata: (.*)\n\n", chunk)
        if match:
            return json.loads(match.group(1))
    raise AssertionError(f"no '{want}' event in {limit} chunks")


def test_the_page_sends_anonymous_visitors_to_the_agent_login(client):
    response = client.get("/agent/")
    assert response.status_code == 302
    assert response["Location"].startswith("/agent/login/")


@pytest.mark.parametrize(("role", "expected"), [(None, 403), ("integration", 403), ("agent", 200), ("supervisor", 200)])
def test_only_agents_and_supervisors_open_the_page(role, expected):
    user = UserFactory(username=f"user-{role}", role=role)
    response = logged_in(user).get("/agent/")
    assert response.status_code == expected
    if expected == 200:
        assert "Ready for a contact" in response.content.decode()


def test_an_agent_who_is_not_staff_logs_in_on_the_agent_login(client, alice):
    response = client.post("/agent/login/", {"username": "alice", "password": "pw-for-tests"})
    assert response.status_code == 302 and response["Location"] == "/agent/"
    assert client.get("/agent/").status_code == 200


def test_a_wrong_password_does_not_log_in(client, alice):
    response = client.post("/agent/login/", {"username": "alice", "password": "nope"})
    assert response.status_code == 200 and "Wrong username or password" in response.content.decode()
    assert client.get("/agent/").status_code == 302


def test_the_event_stream_refuses_anonymous_and_non_agents(client, ivy):
    assert client.get("/agent/events").status_code == 401
    assert logged_in(ivy).get("/agent/events").status_code == 403


def test_the_event_stream_delivers_an_event_published_for_the_agent(alice, settings):
    settings.AGENT_EVENTS_KEEPALIVE = 0.2
    response = logged_in(alice).get("/agent/events")
    assert response["Content-Type"] == "text/event-stream"
    chunks = iter(response.streaming_content)
    assert next(chunks).decode().startswith("retry: ")  # subscribes before this first chunk
    events.publish(alice.pk, {"type": "call", "interaction_id": "i-1", "card": {"match": "none"}})
    body = ""
    for _ in range(10):
        body += next(chunks).decode()
        if "event: call" in body:
            break
    assert '"interaction_id": "i-1"' in body


def test_a_reconnecting_page_is_sent_the_current_card_again(alice):
    events.publish(alice.pk, {"type": "call", "interaction_id": "i-2", "card": {"match": "none"}})
    payload = read_events(logged_in(alice).get("/agent/events"), "call")
    assert payload["interaction_id"] == "i-2" and payload["replay"] is True


def test_a_kept_card_is_not_replayed_after_its_customer_is_erased(alice, sam, jim, settings):
    # given: Jim's card is Alice's current call
    settings.AGENT_EVENTS_KEEPALIVE = 0.05
    settings.AGENT_EVENTS_MAX_SECONDS = 0.2
    card = {"match": "unique", "customer": {"id": str(jim.pk), "display_name": "James Okafor"}}
    events.publish(alice.pk, {"type": "call", "interaction_id": "i-9", "card": card})

    # when: Jim is erased and Alice's page reconnects
    privacy.customer_erase(actor=sam, customer=jim)
    body = b"".join(logged_in(alice).get("/agent/events").streaming_content).decode()

    # then: his name is not sent again
    assert "event: call" not in body and "Okafor" not in body


def test_the_event_stream_ends_so_the_page_reconnects_and_is_checked_again(alice, settings):
    settings.AGENT_EVENTS_KEEPALIVE = 0.05
    settings.AGENT_EVENTS_MAX_SECONDS = 0.2
    chunks = list(logged_in(alice).get("/agent/events").streaming_content)
    assert chunks[0].decode().startswith("retry: ") and len(chunks) < 20


def test_dismissing_the_card_stops_it_coming_back(alice):
    events.publish(alice.pk, {"type": "call", "interaction_id": "i-3", "card": {}})
    client = logged_in(alice)
    other = client.post("/agent/dismiss", {"interaction_id": "another"}, content_type="application/json")
    assert other.json() == {"cleared": False} and events.current_get(alice.pk) is not None
    response = client.post("/agent/dismiss", {"interaction_id": "i-3"}, content_type="application/json")
    assert response.json() == {"cleared": True}
    assert events.current_get(alice.pk) is None


def test_events_for_one_agent_do_not_reach_another(alice, sam):
    with events.subscribe(sam.pk) as subscription:
        events.publish(alice.pk, {"type": "call", "interaction_id": "i-4"})
        assert subscription.get(timeout=0.3) is None


def test_the_in_process_broadcaster_serves_the_embedded_default(alice, settings):
    settings.REDIS_URL = ""
    assert events.broadcaster() is events._local
    with events.subscribe(alice.pk) as subscription:
        events.publish(alice.pk, {"type": "call", "interaction_id": "i-5"})
        assert subscription.get(timeout=1)["interaction_id"] == "i-5"


def test_simulate_call_pops_the_agents_page_through_the_service(alice, jim, django_capture_on_commit_callbacks):
    UserFactory(username="cti", role="integration")
    with events.subscribe(alice.pk) as subscription:
        with django_capture_on_commit_callbacks(execute=True):
            call_command("simulate_call", agent="alice", phone="+1 212 555 0100", direct=True, call_id="sim-1")
        pushed = [subscription.get(timeout=1), subscription.get(timeout=1)]
    interaction = Interaction.objects.get(call_id="sim-1")
    assert (interaction.customer, interaction.agent) == (jim, alice)
    assert [p["event"] for p in pushed] == ["ringing", "connected"]
    assert pushed[1]["card"]["customer"]["id"] == str(jim.pk)


def test_simulate_call_needs_an_integration_user(alice):
    with pytest.raises(CommandError, match="not an integration user"):
        call_command("simulate_call", agent="alice", phone="+1 212 555 0100", direct=True)


def test_the_page_serves_its_own_script_and_styles(alice):
    page = logged_in(alice).get("/agent/").content.decode()
    assert 'name="csrf-token"' in page
    for asset in ("/static/agent/agent.js", "/static/agent/agent.css"):
        assert asset in page
        response = Client().get(asset)
        assert response.status_code == 200, asset


def test_the_page_loads_nothing_from_other_origins():
    sources = [*STATIC.glob("*"), *TEMPLATES.glob("*.html")]
    assert sources
    for path in sources:
        text = path.read_text()
        assert not re.search(r"(src|href)=\"(https?:)?//", text), path
        assert "@import" not in text and "url(http" not in text, path
