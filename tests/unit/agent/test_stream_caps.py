"""Issue 10, finding 9: one user cannot hold every server thread with /agent/events streams."""

import pytest
from django.core.signals import request_finished
from django.db import close_old_connections

from context import agent
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

LOOKUP = "/api/v1/context/lookup"


def _page(user):
    client = client_for(None)
    client.force_login(user)
    return client


def _close(response) -> None:
    """What the server does when a page goes away (as Django's test client closes a response:
    without closing the test's own database connection)."""
    request_finished.disconnect(close_old_connections)
    try:
        response.close()
    finally:
        request_finished.connect(close_old_connections)


def test_a_user_may_hold_three_streams_then_gets_429_while_the_api_still_answers(alice, agent_api, jim, settings):
    settings.AGENT_EVENTS_KEEPALIVE = 0.05
    page = _page(alice)
    streams = [page.get("/agent/events") for _ in range(3)]
    try:
        assert [s.status_code for s in streams] == [200, 200, 200]

        fourth = page.get("/agent/events")
        assert fourth.status_code == 429 and "At most 3" in fourth.json()["detail"]
        assert int(fourth["Retry-After"]) > 0
        assert client_for(None).get("/healthz").status_code == 200
        assert agent_api.post(LOOKUP, {"phone": "+1 212 555 0100"}, format="json").status_code == 200
    finally:
        for stream in streams:
            _close(stream)

    again = page.get("/agent/events")  # a closed page gives its slot back
    assert again.status_code == 200
    _close(again)


def test_the_cap_is_per_user(alice, sam, settings):
    settings.CRM_MAX_STREAMS_PER_USER = 1
    mine, theirs = _page(alice).get("/agent/events"), _page(sam).get("/agent/events")
    try:
        assert (mine.status_code, theirs.status_code) == (200, 200)
        assert _page(alice).get("/agent/events").status_code == 429
    finally:
        _close(mine)
        _close(theirs)


def test_a_process_keeps_threads_for_the_api_whoever_holds_the_streams(alice, sam, settings):
    settings.CRM_MAX_STREAMS_PER_PROCESS = 2
    held = [_page(alice).get("/agent/events"), _page(sam).get("/agent/events")]
    try:
        refused = _page(alice).get("/agent/events")
        assert refused.status_code == 503 and refused["Retry-After"]
    finally:
        for stream in held:
            _close(stream)
    assert agent._process_streams == 0
