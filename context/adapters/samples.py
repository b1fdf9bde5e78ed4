"""The vendors' sample payloads (tests/data/cti) as fresh requests, for `manage.py simulate_call --platform`.

Each run gets new call ids (a replay of the same event would change nothing), and
Twilio's bodies are signed with CRM_TWILIO_AUTH_TOKEN by Twilio's own library.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, quote

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from twilio.request_validator import RequestValidator

from crm.models import StaffProfile

SAMPLES = Path(__file__).resolve().parents[2] / "tests" / "data" / "cti"
SAMPLE_PHONE = "+12125550100"
PLATFORM_SAMPLES = {
    "twilio": ["twilio/voice_status_ringing.txt", "twilio/voice_status_in-progress.txt"],
    "connect": ["connect/contact_flow_lambda_event.json", "connect/contact_event_connected_to_agent.json"],
    "genesys": ["genesys/eventbridge_customer_start.json", "genesys/eventbridge_user_start.json"],
}
# The identifiers a run replaces, so each run is a new call.
CALL_IDS = {
    "twilio": ["CA11111111111111111111111111111111", "CA22222222222222222222222222222222"],
    "connect": ["cccccccc-0000-4000-8000-000000000001", "00000000-0000-4000-8000-00000000e002"],
    "genesys": ["99999999-0000-4000-8000-000000000001"],
}
PATHS = {
    "twilio": "/api/v1/calls/twilio",
    "connect": "/api/v1/calls/amazon-connect",
    "genesys": "/api/v1/calls/genesys",
}
IDENTITIES = {
    "twilio_worker_sid": "WKaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "twilio_contact_uri": "client:agent_alice",
    "connect_agent": "dddddddd-0000-4000-8000-000000000001",
    "genesys_user_id": "77777777-0000-4000-8000-000000000001",
}


def requests_for(platform: str, base_url: str, token: str | None, phone: str | None) -> Iterator[tuple]:
    """(name, path, headers, body) for each sample of the platform, as the vendor would post it."""
    replacements: dict[str, str] = {}
    for name in PLATFORM_SAMPLES[platform]:
        text = (SAMPLES / name).read_text()
        for old in CALL_IDS[platform]:
            if old not in replacements:
                replacements[old] = "CA" + uuid.uuid4().hex if old.startswith("CA") else str(uuid.uuid4())
            text = text.replace(old, replacements[old])
        if phone:
            text = text.replace(SAMPLE_PHONE, phone).replace(quote(SAMPLE_PHONE, safe=""), quote(phone, safe=""))
        path = PATHS[platform]
        if platform == "twilio":
            params = dict(parse_qsl(text, keep_blank_values=True))
            signature = RequestValidator(settings.CRM_TWILIO_AUTH_TOKEN).compute_signature(base_url + path, params)
            headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature}
        else:
            headers = {"Content-Type": "application/json", "Authorization": f"Token {token}"}
        yield name, path, headers, text.encode()


@transaction.atomic
def agent_identities_assign(username: str) -> StaffProfile:
    """Give `username` the samples' agent identities (taking them from whoever had them)."""
    user = get_user_model().objects.get(username=username)
    for field, value in IDENTITIES.items():
        StaffProfile.objects.filter(**{field: value}).exclude(user=user).update(**{field: ""})
    profile, _ = StaffProfile.objects.update_or_create(user=user, defaults=IDENTITIES)
    return profile
