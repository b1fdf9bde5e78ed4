"""The lookup's response bytes did not change when the card moved to crm/ (issue 9).

lookup_golden.json was recorded from the code before the move (context/selectors.py's
positional arrays); each scenario's response must stay byte-for-byte the same, except
the ids of the contacts the lookups open, which are random (numbered in order).
Re-recorded for issue 12 (on PostgreSQL, then checked on SQLite): new optional fields
(identities' verified_at/verified_via, verified_on_call, repeat, last_feedback.text)
and contacts that count (a lookup nobody wrapped up is no longer a recent contact).
Re-recorded again for issue 13: `last_feedback` gained `nps` (and `text` is cut to 280 characters).
Re-recorded for issue 14: orjson writes compact JSON (no space after `:` and `,`); every
scenario's parsed response was checked equal to the previous recording on both paths first.
Re-recorded for issue 15: a fact's source names the import that recorded it (`imported_from`, null here).
"""

import datetime as dt
import json
import os
import pathlib

import pytest
from django.utils import timezone

from tests.factories import UserFactory
from tests.fixtures import card_scenarios as s

URL = "/api/v1/context/lookup"
GOLDEN = pathlib.Path(__file__).with_name("lookup_golden.json")

REQUESTS = {
    "unique_by_phone": {"phone": "(212) 555-0100", "call_id": "g-1"},
    "unique_with_intent": {"account": "AC-1234-5678", "verified": ["account"], "ivr": {"intent": "billing"}},
    "unique_unknown_intent": {"email": "jim@example.com", "ivr": {"intent": "no_such_reason"}},
    "household_ambiguous": {"phone": "+12125550199"},
    "household_narrowed_by_email": {"phone": "+12125550199", "email": "ben@example.com"},
    "merged_account_finds_survivor": {"account": "AC-0000-0022"},
    "merged_id_finds_survivor": {"customer_id": str(s.uid(22))},
    "erased_phone_finds_nobody": {"phone": "+12125550400"},
    "heavy_history": {"phone": "+12125550500", "ivr": {"intent": "technical_fault"}},
    "nobody": {"phone": "+12125550999"},
}


def responses(agent_api, alice, monkeypatch) -> dict[str, str]:
    monkeypatch.setattr(timezone, "now", lambda: s.NOW)
    admin = UserFactory(username="golden-admin", is_staff=True, is_superuser=True)
    s.unique(alice)
    s.household()
    s.merged(admin)
    s.erased(admin)
    s.heavy(alice)
    out, opened = {}, []
    for n, (name, body) in enumerate(REQUESTS.items(), start=1):
        # A millisecond apart: contacts opened by earlier lookups sort the same every run.
        monkeypatch.setattr(timezone, "now", lambda n=n: s.NOW + dt.timedelta(milliseconds=n))
        response = agent_api.post(URL, body, format="json")
        assert response.status_code == 200, response.content
        opened.append(response.json()["interaction_id"])
        text = response.content.decode()
        for n, interaction_id in enumerate(opened):
            text = text.replace(interaction_id, f"<opened-{n}>")
        out[name] = text
    return out


def test_lookup_responses_are_byte_for_byte_those_recorded_before_the_move(agent_api, alice, monkeypatch):
    """PostgreSQL runs the SQL path, SQLite the ORM path: both must give the recorded bytes."""
    got = responses(agent_api, alice, monkeypatch)

    if os.environ.get("GOLDEN_RECORD"):
        GOLDEN.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
        pytest.fail("recorded lookup_golden.json; run again without GOLDEN_RECORD")
    assert got == json.loads(GOLDEN.read_text())
