"""Issue 14: the lookup's lean lane answers exactly what DRF answers, for good and bad calls alike.

Each call is made twice: through the lane (as every token call is served) and with the
lane switched off (DRF alone, as before). Status, content type, body (the id of the
contact a lookup opens aside) and what was written must be the same; the lane must
have served the good calls and stepped aside for the others.
"""

import json
import uuid

import pytest
from django.utils import timezone

from context import api
from crm.models import CONTACT_SOURCE, AccessAudit, Interaction
from tests.conftest import client_for
from tests.factories import CustomerFactory, IdentityFactory, InteractionFactory, UserFactory

URL = "/api/v1/context/lookup"
JSON = "application/json"

# name: (body, content type, expected status, served by the lane)
CALLS = {
    "unique by phone": ({"phone": "(212) 555-0100", "call_id": "{run}-a"}, JSON, 200, True),
    "unique by account, verified, with intent": (
        {"account": "AC-1234-5678", "verified": ["account"], "ivr": {"intent": "billing", "digits": 4}},
        JSON,
        200,
        True,
    ),
    "household": ({"phone": "+12125550199", "channel": "chat"}, JSON, 200, True),
    "nobody": ({"phone": "+12125550999", "call_id": "{run}-b"}, JSON, 200, True),
    "ivr number beyond 64 bits": ({"phone": "+12125550100", "ivr": {"ref": 10**30}}, JSON, 200, False),
    "unknown customer id": ({"customer_id": str(uuid.UUID(int=7))}, JSON, 404, True),
    "a call already linked to another customer": ({"phone": "+12125550100", "call_id": "taken"}, JSON, 409, True),
    "no identifier": ({"channel": "phone"}, JSON, 400, False),
    "unknown field": ({"phone": "+12125550100", "shoe_size": 9}, JSON, 400, False),
    "bad phone": ({"phone": "not a phone"}, JSON, 400, True),
    "bad channel": ({"phone": "+12125550100", "channel": "pigeon"}, JSON, 400, False),
    "not an object": ([1, 2], JSON, 400, False),
    "malformed JSON": (b'{"phone": ', JSON, 400, False),
    "NaN": (b'{"phone": NaN}', JSON, 400, False),
    "lone surrogate": (b'{"phone": "\\ud800"}', JSON, 400, False),
    "a form": (b"phone=%2B12125550100", "application/x-www-form-urlencoded", 415, False),
    "JSON in latin-1": ('{"phone": "+12125550100"}'.encode("latin-1"), JSON + "; charset=latin-1", 200, False),
}


@pytest.fixture
def people(db, jim):
    """jim (phone, e-mail, account), a two-person household, and a call already linked to someone else."""
    for name in ("Ann", "Ben"):
        IdentityFactory(customer=CustomerFactory(display_name=name), kind="phone", value="+12125550199",
                        normalized="+12125550199")  # fmt: skip
    other = CustomerFactory(display_name="Someone Else")
    InteractionFactory(customer=other, call_id="taken", source=CONTACT_SOURCE, started_at=timezone.now())
    return jim


def call(client, body, content_type, run: str):
    data = body if isinstance(body, bytes) else json.dumps(body).replace("{run}", run).encode()
    return client.post(URL, data, content_type=content_type)


def outcome(response, written: tuple[int, int]) -> tuple:
    body = response.json()
    if isinstance(body, dict) and "interaction_id" in body:
        body["interaction_id"] = "<opened>"
    return response.status_code, response["Content-Type"], body, written


def counts() -> tuple[int, int]:
    return Interaction.objects.count(), AccessAudit.objects.count()


@pytest.mark.parametrize("name", CALLS)
def test_the_lane_answers_what_drf_answers(name, people, agent_api, monkeypatch):
    body, content_type, status, laned = CALLS[name]
    served = []
    lane = api.lookup_lean

    def spy(view, request):
        response = lane(view, request)
        served.append(response is not None)
        return response

    monkeypatch.setattr(api, "lookup_lean", spy)
    before = counts()
    through_lane = call(agent_api, body, content_type, "lane")
    lane_written = tuple(after - b for after, b in zip(counts(), before, strict=True))

    monkeypatch.setattr(api, "lookup_lean", lambda view, request: None)
    before = counts()
    through_drf = call(agent_api, body, content_type, "drf")
    drf_written = tuple(after - b for after, b in zip(counts(), before, strict=True))

    assert through_lane.status_code == status, through_lane.content
    assert outcome(through_lane, lane_written) == outcome(through_drf, drf_written)
    assert served == [laned]


@pytest.mark.parametrize(
    ("header", "user_role"),
    [(None, None), ("Token not-a-token", None), ("Bearer abc", None), ("Token", None), (True, "integration")],
)
def test_refused_credentials_get_drfs_answer(header, user_role, people, monkeypatch):
    """No token, a bad one, another scheme, or a token without the agent role: 401/403 as before, nothing written."""
    if user_role:
        client = client_for(UserFactory(username="cti-only", role=user_role))
    else:
        client = client_for(None)
        if header:
            client.credentials(HTTP_AUTHORIZATION=header)
    before = counts()

    through_lane = call(client, {"phone": "+12125550100"}, JSON, "lane")
    monkeypatch.setattr(api, "lookup_lean", lambda view, request: None)
    through_drf = call(client, {"phone": "+12125550100"}, JSON, "drf")

    assert through_lane.status_code in (401, 403)
    assert outcome(through_lane, ()) == outcome(through_drf, ())
    assert through_lane.get("WWW-Authenticate") == through_drf.get("WWW-Authenticate")
    assert counts() == before
