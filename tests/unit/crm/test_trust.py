"""Issue 10 (trust), part B: each red-team finding played as the attack, through the HTTP API.

Runs on SQLite (the ORM path of crm/card.py) and on PostgreSQL (the one-statement SQL
path), so both paths are held to the same rules.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from context import events
from crm.models import AccessAudit, Case, Fact, Feedback, Identity, Interaction, Preference, Recognition
from tests.conftest import client_for
from tests.factories import CustomerFactory, IdentityFactory, InteractionFactory, UserFactory
from tests.fixtures.crm import row_counts

pytestmark = pytest.mark.django_db

LOOKUP = "/api/v1/context/lookup"
CALLS = "/api/v1/calls"
FEEDBACK = "/api/v1/feedback"


@pytest.fixture
def omar(db):
    return UserFactory(username="omar", first_name="Omar", role="agent")


@pytest.fixture
def omar_api(omar):
    return client_for(omar)


@pytest.fixture
def olga(db):
    """A second customer, known by account ZZ99990000."""
    customer = CustomerFactory(display_name="Olga Novak")
    IdentityFactory(customer=customer, kind="account", value="ZZ-9999-0000", normalized="ZZ99990000")
    return customer


def _timeline_summaries(client, customer) -> list[str]:
    return [e.get("summary") for e in client.get(f"/api/v1/customers/{customer.pk}/timeline").json()["results"]]


# --- Finding 1: a repeated call_id never moves a linked contact ---------------------------------


def test_a_repeat_call_id_that_identifies_someone_else_is_refused_and_writes_nothing(
    agent_api, omar_api, supervisor_api, jim, olga
):
    first = agent_api.post(LOOKUP, {"phone": "+1 212 555 0100", "call_id": "call-X"}, format="json")
    contact_id = first.json()["interaction_id"]
    wrapped = agent_api.patch(f"/api/v1/interactions/{contact_id}", {"summary": "Jim's private note"}, format="json")
    assert wrapped.status_code == 200
    before = row_counts()

    attack = omar_api.post(LOOKUP, {"account": "ZZ-9999-0000", "call_id": "call-X"}, format="json")

    assert attack.status_code == 409, attack.content
    assert "call_id" in attack.json() and attack["Content-Type"] == "application/json"
    assert row_counts() == before  # no relink, no audit row of a view that did not happen
    assert str(Interaction.objects.get(pk=contact_id).customer_id) == str(jim.pk)
    assert "Jim's private note" in _timeline_summaries(supervisor_api, jim)
    assert "Jim's private note" not in _timeline_summaries(supervisor_api, olga)
    assert supervisor_api.get(f"/api/v1/customers/{olga.pk}/export").json()["interactions"] == []


def test_a_repeat_that_identifies_the_same_customer_or_nobody_still_works(agent_api, jim):
    first = agent_api.post(LOOKUP, {"phone": "+1 212 555 0100", "call_id": "call-Y"}, format="json").json()

    same = agent_api.post(LOOKUP, {"email": "jim@example.com", "call_id": "call-Y"}, format="json")
    nobody = agent_api.post(LOOKUP, {"phone": "+1 646 555 0199", "call_id": "call-Y"}, format="json")

    assert (same.status_code, nobody.status_code) == (200, 200)
    assert same.json()["interaction_id"] == nobody.json()["interaction_id"] == first["interaction_id"]
    assert same.json()["customer"]["id"] == str(jim.pk)
    assert Interaction.objects.get(pk=first["interaction_id"]).customer_id == jim.pk


def test_a_repeat_after_a_merge_resolves_to_the_survivor_and_still_works(agent_api, supervisor_api, jim, olga):
    first = agent_api.post(LOOKUP, {"account": "ZZ-9999-0000", "call_id": "call-M"}, format="json").json()
    supervisor_api.post(f"/api/v1/customers/{jim.pk}/merge", {"duplicate_id": str(olga.pk)}, format="json")

    by_account = agent_api.post(LOOKUP, {"account": "ZZ-9999-0000", "call_id": "call-M"}, format="json")
    by_old_id = agent_api.post(LOOKUP, {"customer_id": str(olga.pk), "call_id": "call-M"}, format="json")

    assert (by_account.status_code, by_old_id.status_code) == (200, 200)
    assert by_account.json()["interaction_id"] == by_old_id.json()["interaction_id"] == first["interaction_id"]
    assert by_old_id.json()["customer"]["id"] == str(jim.pk)


def test_a_call_event_that_identifies_someone_else_is_refused_and_moves_nothing(
    integration_api, alice, jim, olga, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        ringing = integration_api.post(
            CALLS, {"event": "ringing", "agent": "alice", "phone": "+12125550100", "call_id": "cti-1"}, format="json"
        )
    contact_id = ringing.json()["interaction_id"]
    before = row_counts()

    with django_capture_on_commit_callbacks(execute=True):
        attack = integration_api.post(
            CALLS, {"event": "connected", "agent": "alice", "account": "ZZ99990000", "call_id": "cti-1"}, format="json"
        )

    assert attack.status_code == 409, attack.content
    assert row_counts() == before
    assert Interaction.objects.get(pk=contact_id).customer_id == jim.pk
    assert events.current_get(alice.pk)["card"]["customer"]["id"] == str(jim.pk)


def test_the_contacts_agent_may_relink_it_explicitly_and_both_customers_audits_say_so(agent_api, alice, jim, olga):
    contact = InteractionFactory(customer=jim, agent=alice, summary="Was Olga after all")

    response = agent_api.patch(f"/api/v1/interactions/{contact.pk}", {"customer_id": str(olga.pk)}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["customer_id"] == str(olga.pk)
    assert AccessAudit.objects.filter(customer=jim, interaction_id=contact.pk, detail__relinked_to=str(olga.pk))
    assert AccessAudit.objects.filter(customer=olga, interaction_id=contact.pk, detail__relinked_from=str(jim.pk))


# --- Finding 7: wrap-up by the contact's own agent or a supervisor -------------------------------


def test_another_agent_cannot_rewrite_a_contact(omar_api, alice, jim, olga):
    contact = InteractionFactory(customer=jim, agent=alice, summary="Closed by Alice", outcome="resolved")
    before = row_counts()

    for body in ({"summary": "Rewritten"}, {"customer_id": str(olga.pk)}, {"facts": [{"key": "k", "value": "v"}]}):
        response = omar_api.patch(f"/api/v1/interactions/{contact.pk}", body, format="json")
        assert response.status_code == 403, response.content
        assert "detail" in response.json()

    contact.refresh_from_db()
    assert (contact.summary, contact.customer_id, row_counts()) == ("Closed by Alice", jim.pk, before)


def test_a_supervisor_may_wrap_up_any_contact(supervisor_api, alice, jim):
    contact = InteractionFactory(customer=jim, agent=alice)

    response = supervisor_api.patch(f"/api/v1/interactions/{contact.pk}", {"summary": "Checked"}, format="json")

    assert response.status_code == 200 and response.json()["summary"] == "Checked"


# --- Finding 4: the live-customer rule for everything reached through a contact ------------------


def test_after_erasure_nothing_reaches_the_customer_through_an_old_contact(
    agent_api, supervisor_api, anon_api, alice, jim
):
    looked_up = agent_api.post(LOOKUP, {"phone": "+1 212 555 0100", "call_id": "call-E"}, format="json").json()
    contact_id = looked_up["interaction_id"]
    posted = agent_api.post(
        "/api/v1/interactions", {"channel": "chat", "customer_id": str(jim.pk), "external_id": "chat-E"}, format="json"
    )
    assert posted.status_code == 201
    assert supervisor_api.delete(f"/api/v1/customers/{jim.pk}").status_code == 204
    before = row_counts()

    wrap_up = agent_api.patch(
        f"/api/v1/interactions/{contact_id}",
        {"summary": "New note", "facts": [{"key": "pet", "value": "cat"}], "preferences": {"channel": "sms"}},
        format="json",
    )
    read = agent_api.get(f"/api/v1/interactions/{contact_id}")
    repeat = agent_api.post(LOOKUP, {"phone": "+1 212 555 0100", "call_id": "call-E"}, format="json")
    replay = agent_api.post("/api/v1/interactions", {"channel": "chat", "external_id": "chat-E"}, format="json")
    feedback = anon_api.post(FEEDBACK, {"interaction_id": contact_id, "text": "About me"}, format="json")

    assert (wrap_up.status_code, read.status_code, repeat.status_code, replay.status_code) == (404, 404, 404, 404)
    assert feedback.status_code == 400 and "interaction_id" in feedback.json()
    assert row_counts() == before
    assert not Fact.objects.exists() and not Preference.objects.exists() and not Feedback.objects.exists()
    assert Interaction.objects.get(pk=contact_id).summary == ""


def test_after_erasure_a_follow_up_note_cannot_be_written_about_the_customer(
    anon_api, supervisor_api, alice, jim, eager_tasks, django_capture_on_commit_callbacks
):
    contact = InteractionFactory(customer=jim, agent=alice)
    with django_capture_on_commit_callbacks(execute=True):
        anon_api.post(FEEDBACK, {"interaction_id": str(contact.pk), "rating": 1, "text": "Awful"}, format="json")
    follow_up = supervisor_api.get("/api/v1/follow-ups").json()["results"][0]
    assert supervisor_api.delete(f"/api/v1/customers/{jim.pk}").status_code == 204

    response = supervisor_api.patch(
        f"/api/v1/follow-ups/{follow_up['id']}", {"note": "Called Jim at home, he said..."}, format="json"
    )

    assert response.status_code == 404
    assert supervisor_api.get("/api/v1/follow-ups").json()["results"][0]["note"] == ""


def test_a_contact_reached_after_a_merge_shows_the_survivor(agent_api, supervisor_api, alice, jim, olga):
    contact = InteractionFactory(customer=olga, agent=alice)
    merged = supervisor_api.post(f"/api/v1/customers/{jim.pk}/merge", {"duplicate_id": str(olga.pk)}, format="json")
    assert merged.status_code == 200

    read = agent_api.get(f"/api/v1/interactions/{contact.pk}")
    wrap_up = agent_api.patch(
        f"/api/v1/interactions/{contact.pk}", {"facts": [{"key": "pet", "value": "cat"}]}, format="json"
    )

    assert read.json()["customer_id"] == str(jim.pk)
    assert wrap_up.status_code == 200
    assert Fact.objects.get(key="pet").customer_id == jim.pk


# --- Finding 6: forged recognition and planted complaints ---------------------------------------


@pytest.mark.parametrize("who", ["ivy", "nobody", "sam"])
def test_a_contact_may_only_name_an_agent_or_supervisor_as_its_agent(agent_api, ivy, nobody, sam, jim, who):
    before = row_counts()

    response = agent_api.post(
        "/api/v1/interactions", {"channel": "chat", "customer_id": str(jim.pk), "agent": who}, format="json"
    )

    if who == "sam":  # a supervisor takes contacts too
        assert response.status_code == 201 and response.json()["agent"] == "sam"
    else:
        assert response.status_code == 400 and "agent" in response.json()
        assert row_counts() == before


def test_repeated_praise_for_one_contact_is_one_feedback_and_one_recognition(
    anon_api, alice, jim, eager_tasks, django_capture_on_commit_callbacks
):
    contact = InteractionFactory(customer=jim, agent=alice)
    answers = []
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            answers.append(
                anon_api.post(
                    FEEDBACK, {"interaction_id": str(contact.pk), "rating": 5, "text": "Alice was great"}, format="json"
                )
            )

    assert [a.status_code for a in answers] == [202, 202, 202]
    assert len({a.json()["id"] for a in answers}) == 1
    assert Feedback.objects.count() == 1 and Recognition.objects.count() == 1


def test_the_database_keeps_one_feedback_per_contact(jim):
    from django.db import IntegrityError, transaction

    contact = InteractionFactory(customer=jim)
    Feedback.objects.create(interaction=contact, received_at=timezone.now())
    with pytest.raises(IntegrityError), transaction.atomic():
        Feedback.objects.create(interaction=contact, received_at=timezone.now())


def test_the_public_answer_does_not_depend_on_whether_an_identifier_is_known(anon_api, jim):
    answers = []
    for email in ("jim@example.com", "stranger@example.com"):
        with CaptureQueriesContext(connection) as queries:
            response = anon_api.post(FEEDBACK, {"email": email, "rating": 1, "text": "Awful"}, format="json")
        answers.append((response.status_code, sorted(response.json()), response.json()["status"]))
        # No identity is read while answering: the linking happens in the task.
        assert not [q for q in queries.captured_queries if Identity._meta.db_table in q["sql"]]
    assert answers[0] == answers[1] == (202, ["id", "status"], "received")


def test_complaints_naming_a_customer_only_by_identifier_are_rate_limited_and_marked_unverified(
    anon_api, supervisor_api, jim, eager_tasks, django_capture_on_commit_callbacks, settings
):
    settings.CRM_UNVERIFIED_FEEDBACK_PER_DAY = 2
    ids = []
    for n in range(4):
        with django_capture_on_commit_callbacks(execute=True):
            complaint = {"email": "jim@example.com", "rating": 1, "text": f"Bad {n}"}
            response = anon_api.post(FEEDBACK, complaint, format="json")
        ids.append(response.json()["id"])

    assert Feedback.objects.filter(customer=jim).count() == 2  # the rest stay unlinked
    assert Case.objects.filter(customer=jim).count() == 2
    assert all(case.subject.startswith("Service recovery (unverified)") for case in Case.objects.all())
    detail = supervisor_api.get(f"{FEEDBACK}/{ids[0]}").json()
    assert detail["unverified"] is True and detail["follow_ups"]
    follow_up = supervisor_api.get("/api/v1/follow-ups").json()["results"][0]
    assert follow_up["note"].startswith("Unverified")


def test_feedback_about_a_contact_is_not_unverified(anon_api, alice, jim):
    contact = InteractionFactory(customer=jim, agent=alice)
    response = anon_api.post(FEEDBACK, {"interaction_id": str(contact.pk), "rating": 2}, format="json")
    assert Feedback.objects.get(pk=response.json()["id"]).unverified is False


# --- Finding 10 (part B): cursors, summary, no-store, CSP ---------------------------------------


@pytest.mark.parametrize(
    "cursor",
    [
        "2024-01-01T00:00:00+00:00~interaction~zzz",
        "2024-01-01T00:00:00+00:00~feedback~not-a-uuid",
        "2024-01-01T00:00:00+00:00~follow_up~abc",
    ],
)
def test_a_malformed_timeline_cursor_is_a_400_naming_it(agent_api, supervisor_client, jim, cursor):
    response = agent_api.get(f"/api/v1/customers/{jim.pk}/timeline", {"cursor": cursor})
    page = supervisor_client.get(f"/admin/crm/customer/{jim.pk}/360/", {"after": cursor})

    assert response.status_code == 400 and "cursor" in response.json()
    assert page.status_code == 200


def test_a_summary_over_ten_thousand_characters_is_refused(agent_api, alice, jim):
    contact = InteractionFactory(customer=jim, agent=alice)
    before = row_counts()

    posted = agent_api.post(
        "/api/v1/interactions", {"channel": "chat", "customer_id": str(jim.pk), "summary": "x" * 10_001}, format="json"
    )
    patched = agent_api.patch(f"/api/v1/interactions/{contact.pk}", {"summary": "x" * 250_000}, format="json")
    assert (posted.status_code, patched.status_code) == (400, 400)
    assert "summary" in posted.json() and "summary" in patched.json()
    assert row_counts() == before

    fits = agent_api.patch(f"/api/v1/interactions/{contact.pk}", {"summary": "x" * 10_000}, format="json")
    assert fits.status_code == 200


def test_responses_carrying_customer_data_are_not_stored(agent_api, supervisor_client, alice, jim):
    contact = InteractionFactory(customer=jim, agent=alice)
    page_client = client_for(None)
    page_client.force_login(alice)
    responses = [
        agent_api.post(LOOKUP, {"phone": "+1 212 555 0100"}, format="json"),
        agent_api.get(f"/api/v1/customers/{jim.pk}"),
        agent_api.get(f"/api/v1/customers/{jim.pk}/timeline"),
        agent_api.get("/api/v1/customers?search=James"),
        agent_api.get(f"/api/v1/interactions/{contact.pk}"),
        agent_api.get("/api/v1/customers/not-a-customer"),
        page_client.get("/agent/"),
        supervisor_client.get(f"/admin/crm/customer/{jim.pk}/360/"),
        supervisor_client.get("/admin/crm/customer/"),
    ]
    for response in responses:
        assert "no-store" in response["Cache-Control"], (response.request["PATH_INFO"], response.status_code)


def test_the_agent_page_has_a_strict_csp_and_no_inline_script(alice):
    client = client_for(None)
    client.force_login(alice)

    response = client.get("/agent/")

    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    html = response.content.decode()
    assert html.count("<script") == html.count("<script src=")


# --- Finding 8 (completed): the supervisors' queues are reads of the customers they show ------


def test_the_supervisors_queues_audit_each_customer_they_show(
    anon_api, supervisor_api, sam, alice, jim, eager_tasks, django_capture_on_commit_callbacks
):
    for rating, text in ((1, "Awful"), (5, "Alice was great")):
        contact = InteractionFactory(customer=jim, agent=alice)
        with django_capture_on_commit_callbacks(execute=True):
            anon_api.post(FEEDBACK, {"interaction_id": str(contact.pk), "rating": rating, "text": text}, format="json")
    AccessAudit.objects.all().delete()

    for path in ("/api/v1/follow-ups", "/api/v1/recognitions", "/api/v1/recurring-problems"):
        assert supervisor_api.get(path).status_code == 200

    pages = set(
        AccessAudit.objects.filter(actor=sam, customer=jim, action="view").values_list("detail__page", flat=True)
    )
    assert {"follow_ups", "recognitions"} <= pages
