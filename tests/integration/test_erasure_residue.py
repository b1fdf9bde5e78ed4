"""Issue 10, finding 5: an erasure leaves no residue, in PostgreSQL or in Redis.

A customer is seeded with one marker string in every free-text field the API, the CTI
connector and the admin can reach; after DELETE /api/v1/customers/{id}, every row of
every table (each row cast to text: a dump of the database) and every key and value
in the Redis database (the cache, the agent page's current card, the broker's queues)
is searched for the marker.
"""

from __future__ import annotations

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.test import Client

from crm.models import Customer, FollowUp

MARKER = "qx7residue"


def _database_hits() -> list[str]:
    """Every table, every row as text, that mentions the marker (case-insensitive)."""
    hits = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            quoted = connection.ops.quote_name(table)
            cursor.execute(f"SELECT t::text FROM {quoted} t WHERE t::text ILIKE %s", [f"%{MARKER}%"])  # noqa: S608
            hits += [f"{table}: {row[0][:300]}" for row in cursor.fetchall()]
    return hits


def _redis_hits() -> list[str]:
    """Every key of the Redis database (names and values of any type) that mentions the marker."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    needle = MARKER.encode()
    hits = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key).decode()
        if kind == "string":
            values = [client.get(key) or b""]
        elif kind == "list":
            values = client.lrange(key, 0, -1)
        elif kind == "hash":
            values = [k + b"=" + v for k, v in client.hgetall(key).items()]
        elif kind == "set":
            values = list(client.smembers(key))
        elif kind == "zset":
            values = client.zrange(key, 0, -1)
        else:
            values = []
        if needle in key.lower() or any(needle in value.lower() for value in values):
            hits.append(key.decode(errors="replace"))
    return hits


@pytest.mark.django_db
def test_erasure_leaves_no_marker_in_any_table_or_redis_key(
    agent_api, supervisor_api, integration_api, anon_api, alice, sam, eager_tasks, django_capture_on_commit_callbacks
):
    if not settings.REDIS_URL:
        pytest.fail("This test needs Redis: set REDIS_URL=redis://... (make test does).")

    def run(request):
        with django_capture_on_commit_callbacks(execute=True):
            response = request()
        assert response.status_code < 300, (response.status_code, response.content[:500])
        return response.json() if response.content else None

    # The API: the customer with the marker in every free-text field and identifier.
    customer = run(
        lambda: supervisor_api.post(
            "/api/v1/customers",
            {
                "display_name": f"{MARKER.title()} Person",
                "preferred_name": MARKER,
                "language": MARKER,
                "identities": [
                    {"kind": "email", "value": f"{MARKER}@example.com"},
                    {"kind": "account", "value": f"{MARKER.upper()}1"},
                    {"kind": "phone", "value": "+1 212 555 0177"},
                ],
            },
            format="json",
        )
    )
    customer_id = customer["id"]
    run(lambda: agent_api.get("/api/v1/customers", {"search": MARKER}))
    looked_up = run(
        lambda: agent_api.post(
            "/api/v1/context/lookup",
            {"email": f"{MARKER}@example.com", "call_id": f"{MARKER}-call-1", "ivr": {"note": f"{MARKER} ivr"}},
            format="json",
        )
    )
    contact = looked_up["interaction_id"]
    run(
        lambda: agent_api.patch(
            f"/api/v1/interactions/{contact}",
            {
                "summary": f"{MARKER} summary",
                "reason_text": f"{MARKER} reason",
                "facts": [{"key": f"{MARKER}_fact", "value": f"{MARKER} value"}],
                "preferences": {f"{MARKER}_pref": MARKER},
            },
            format="json",
        )
    )
    run(
        lambda: agent_api.post(
            "/api/v1/interactions",
            {
                "channel": "chat",
                "customer_id": customer_id,
                "summary": f"{MARKER} chat",
                "reason_text": f"{MARKER} reason",
                "queue": f"{MARKER}-q",
                "external_id": f"{MARKER}-ext",
            },
            format="json",
        )
    )
    # An unknown number, linked in the wrap-up (the number joins the customer).
    unknown = run(
        lambda: agent_api.post(
            "/api/v1/context/lookup", {"phone": "+1 646 555 0177", "call_id": f"{MARKER}-call-3"}, format="json"
        )
    )
    run(
        lambda: agent_api.patch(
            f"/api/v1/interactions/{unknown['interaction_id']}", {"customer_id": customer_id}, format="json"
        )
    )

    # The CTI connector: a call pops on Alice's page, so her current card (in Redis) shows the customer.
    run(
        lambda: integration_api.post(
            "/api/v1/calls",
            {
                "event": "ringing",
                "agent": "alice",
                "email": f"{MARKER}@example.com",
                "call_id": f"{MARKER}-call-2",
                "ivr": {"note": f"{MARKER} cti"},
            },
            format="json",
        )
    )

    # The public form: a complaint about the contact, praise naming the customer by e-mail only.
    run(
        lambda: anon_api.post(
            "/api/v1/feedback",
            {"interaction_id": contact, "rating": 1, "text": f"{MARKER} complaint", "staff": [f"{MARKER}-staff"]},
            format="json",
        )
    )
    run(
        lambda: anon_api.post(
            "/api/v1/feedback",
            {"email": f"{MARKER}@example.com", "rating": 5, "text": f"Alice was lovely, {MARKER}"},
            format="json",
        )
    )
    follow_up = FollowUp.objects.filter(customer_id=customer_id).first()
    run(lambda: supervisor_api.patch(f"/api/v1/follow-ups/{follow_up.pk}", {"note": f"{MARKER} note"}, format="json"))

    # The admin: a supervisor renames the customer (the change log keeps the object's name).
    admin = Client()
    admin.force_login(sam)
    row = Customer.objects.get(pk=customer_id)
    identities = list(row.identities.order_by("pk"))
    form = {
        "display_name": f"{MARKER.title()} Renamed",
        "preferred_name": MARKER,
        "language": MARKER,
        "timezone": "",
        "tier": "standard",
        "identities-TOTAL_FORMS": str(len(identities)),
        "identities-INITIAL_FORMS": str(len(identities)),
        "identities-MIN_NUM_FORMS": "0",
        "identities-MAX_NUM_FORMS": "1000",
    }
    for n, identity in enumerate(identities):
        form[f"identities-{n}-id"] = str(identity.pk)
        form[f"identities-{n}-customer"] = str(row.pk)
    changed = admin.post(f"/admin/crm/customer/{row.pk}/change/", form)
    assert changed.status_code == 302, changed.content[:2000]

    assert _database_hits(), "the seeding did not reach the database"
    assert _redis_hits(), "the agent's current card should be in Redis before the erasure"

    run(lambda: supervisor_api.delete(f"/api/v1/customers/{customer_id}"))

    assert _database_hits() == []
    assert _redis_hits() == []
    # The hashed keys still dedupe: the call and the chat, repeated, are refused rather than reopened.
    repeat = agent_api.post(
        "/api/v1/context/lookup", {"phone": "+1 212 555 0177", "call_id": f"{MARKER}-call-1"}, format="json"
    )
    replay = agent_api.post("/api/v1/interactions", {"channel": "chat", "external_id": f"{MARKER}-ext"}, format="json")
    assert (repeat.status_code, replay.status_code) == (404, 404)
