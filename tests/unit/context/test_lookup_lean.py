"""Issue 14: what the screen pop no longer pays for, and what it still gets.

A call carrying its token skips the browser-only middleware (sessions, CSRF, messages,
auth from a cookie), answers JSON whatever Accept says, and opens contacts whose keys
are time-ordered. The browser's own calls keep sessions and CSRF.
"""

import uuid

from django.contrib.auth import SESSION_KEY
from django.test import Client
from rest_framework.test import APIClient

from crm.models import Interaction

URL = "/api/v1/context/lookup"


def test_a_token_call_gets_no_cookie_but_every_protective_header(agent_api, jim):
    response = agent_api.post(URL, {"phone": "+12125550100"}, format="json")

    assert response.status_code == 200
    assert response.json()["match"] == "unique"
    assert not response.cookies, "an API call with a token must not start a session or set a CSRF cookie"
    assert response["Cache-Control"] == "no-store"
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Request-ID"]


def test_a_token_call_is_never_authenticated_by_a_session_cookie_beside_it(alice, jim):
    """A bad token next to a logged-in session is a 401: the header decides, the cookie is not consulted."""
    client = APIClient()
    client.force_login(alice)
    assert client.post(URL, {"phone": "+12125550100"}, format="json").status_code == 200  # the session works alone

    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = client.post(URL, {"phone": "+12125550100"}, format="json")

    assert response.status_code == 401
    assert Interaction.objects.filter(customer=jim).count() == 1  # only the session's lookup opened a contact


def test_the_agent_page_calls_still_need_their_csrf_token(alice, jim):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)

    refused = client.post(URL, {"phone": "+12125550100"}, content_type="application/json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]

    page = client.get("/agent/")
    token = page.cookies["csrftoken"].value
    response = client.post(URL, {"phone": "+12125550100"}, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200
    assert client.session[SESSION_KEY] == str(alice.pk)


def test_a_browser_behind_a_proxys_basic_authentication_keeps_its_session(alice, jim):
    """Only a token skips the browser middleware: `Authorization: Basic` (a proxy's login) is a browser's."""
    client = Client(HTTP_AUTHORIZATION="Basic c3RhZmY6c2VjcmV0")
    client.force_login(alice)

    assert client.get("/agent/").status_code == 200
    response = client.post(URL, {"phone": "+12125550100"}, content_type="application/json")
    assert response.status_code == 200
    assert response.json()["match"] == "unique"


def test_the_screen_pop_answers_json_whatever_accept_says(agent_api, jim):
    for accept in ("text/html", "application/xml", "*/*", "application/json; q=0.1"):
        response = agent_api.post(URL, {"phone": "+12125550100"}, format="json", HTTP_ACCEPT=accept)
        assert response.status_code == 200, accept
        assert response["Content-Type"] == "application/json"
        assert response.json()["match"] == "unique"


def test_a_body_that_is_not_json_is_still_refused_as_before(agent_api, jim):
    form = agent_api.post(URL, "phone=%2B12125550100", content_type="application/x-www-form-urlencoded")
    assert form.status_code == 415
    for body in (b'{"phone": "+12125550100"', b'{"phone": NaN}', b'{"phone": "\\ud800"}'):
        response = agent_api.post(URL, body, content_type="application/json")
        assert response.status_code == 400, body
    assert not Interaction.objects.exists()


def test_contacts_get_time_ordered_keys(agent_api, jim):
    """UUIDv7: each new contact's key sorts after the previous one's, so inserts append to the index."""
    ids = []
    for n in range(5):
        response = agent_api.post(URL, {"phone": "+12125550100", "call_id": f"ordered-{n}"}, format="json")
        ids.append(uuid.UUID(response.json()["interaction_id"]))

    assert {i.version for i in ids} == {7}
    assert ids == sorted(ids)
    assert Interaction.objects.create(channel="chat", started_at=jim.created_at).pk.version == 7


def test_an_ivr_number_beyond_64_bits_is_kept_exactly(agent_api, jim):
    """orjson would round such an integer (and refuses to write one): those bodies take the json module's path."""
    body = b'{"phone": "+12125550100", "ivr": {"reference": 123456789012345678901234567890}}'

    response = agent_api.post(URL, body, content_type="application/json")

    assert response.status_code == 200
    assert b'"reference":123456789012345678901234567890' in response.content.replace(b" ", b"")
    stored = Interaction.objects.get(pk=response.json()["interaction_id"])
    assert stored.ivr["reference"] == 123456789012345678901234567890
