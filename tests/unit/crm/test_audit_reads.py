"""Every read of a customer's data leaves an access-audit row naming who read it (crm/audit.py)."""

import pytest
from django.test import Client

from crm.models import AccessAudit, Interaction
from tests.factories import CustomerFactory, FeedbackFactory, InteractionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def supervisor_client(sam):
    client = Client()
    client.force_login(sam)
    return client


def views(**where) -> list[AccessAudit]:
    return list(AccessAudit.objects.filter(action="view", **where).order_by("id"))


def test_searching_the_admin_customer_list_audits_each_customer_found(supervisor_client, sam, jim):
    other = CustomerFactory(display_name="Someone Else")

    response = supervisor_client.get("/admin/crm/customer/", {"q": "+1 212 555 0100"})

    assert response.status_code == 200 and "James Okafor" in response.content.decode()
    [row] = views(actor=sam)
    assert row.customer_id == jim.pk
    assert row.detail == {"search": True, "page": "admin_changelist"}
    assert not views(customer=other)


def test_the_admin_customer_list_without_a_search_is_not_a_read_of_anyone(supervisor_client, sam, jim):
    assert supervisor_client.get("/admin/crm/customer/").status_code == 200
    assert not views(actor=sam)


def test_the_merge_preview_audits_both_customers(supervisor_client, sam, jim):
    duplicate = CustomerFactory(display_name="Jim Okafor")

    response = supervisor_client.get(f"/admin/crm/customer/{jim.pk}/merge/{duplicate.pk}/")

    assert response.status_code == 200
    rows = {row.customer_id: row.detail for row in views(actor=sam)}
    assert rows == {
        jim.pk: {"other": str(duplicate.pk), "page": "merge_preview"},
        duplicate.pk: {"other": str(jim.pk), "page": "merge_preview"},
    }


def test_the_admin_interaction_change_view_audits_the_contact(supervisor_client, sam, jim):
    interaction = InteractionFactory(customer=jim, summary="router keeps dropping")

    response = supervisor_client.get(f"/admin/crm/interaction/{interaction.pk}/change/")

    assert response.status_code == 200 and "router keeps dropping" in response.content.decode()
    [row] = views(actor=sam)
    assert (row.customer_id, row.interaction_id, row.detail) == (jim.pk, interaction.pk, {"page": "admin_change"})


def test_the_admin_feedback_change_view_audits_the_customer_who_gave_it(supervisor_client, sam, jim):
    feedback = FeedbackFactory(customer=jim, text="lovely service from Ana")

    response = supervisor_client.get(f"/admin/crm/feedback/{feedback.pk}/change/")

    assert response.status_code == 200 and "lovely service from Ana" in response.content.decode()
    [row] = views(actor=sam)
    assert row.customer_id == jim.pk
    assert row.detail == {"feedback": str(feedback.pk), "page": "admin_change"}


def test_the_erase_confirmation_page_audits_the_customer_it_shows(supervisor_client, sam, jim):
    response = supervisor_client.get(f"/admin/crm/customer/{jim.pk}/erase/")

    assert response.status_code == 200 and "James Okafor" in response.content.decode()
    [row] = views(actor=sam)
    assert (row.customer_id, row.detail) == (jim.pk, {"page": "erase_confirm"})
    assert not AccessAudit.objects.filter(action="erase").exists()


def test_replaying_an_external_id_audits_the_existing_contact_it_returns(agent_api, supervisor_api, alice, sam, jim):
    body = {"channel": "chat", "customer_id": str(jim.pk), "external_id": "chat-77", "reason": "billing"}
    first = agent_api.post("/api/v1/interactions", body, format="json")
    assert first.status_code == 201
    assert not views(actor=alice)

    replay = supervisor_api.post("/api/v1/interactions", body, format="json")

    assert replay.status_code == 200 and replay.json()["id"] == first.json()["id"]
    [row] = views(actor=sam)
    interaction = Interaction.objects.get(external_id="chat-77")
    assert (row.customer_id, row.interaction_id) == (jim.pk, interaction.pk)
    assert row.detail == {"page": "external_id_replay"}
