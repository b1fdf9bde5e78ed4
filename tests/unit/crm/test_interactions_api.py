import pytest

from crm.models import Fact, Interaction, Preference
from tests.factories import InteractionFactory

pytestmark = pytest.mark.django_db


def test_reasons_list_the_installed_taxonomy(agent_api):
    codes = {r["code"] for r in agent_api.get("/api/v1/reasons").json()}
    assert {"billing", "technical_fault", "complaint"} <= codes


def test_posting_a_contact_links_it_by_identifier(agent_api, jim):
    response = agent_api.post(
        "/api/v1/interactions",
        {"channel": "email", "email": "JIM@example.com", "reason": "billing", "summary": "Asked about bill"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["customer_id"] == str(jim.pk)


def test_the_same_external_id_is_the_same_contact(agent_api, jim):
    body = {"channel": "chat", "customer_id": str(jim.pk), "external_id": "chat-77", "reason": "billing"}
    first = agent_api.post("/api/v1/interactions", body, format="json")
    second = agent_api.post("/api/v1/interactions", body, format="json")
    assert first.status_code == 201 and second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    assert Interaction.objects.filter(external_id="chat-77").count() == 1


def test_wrap_up_lands_facts_and_preferences_with_provenance(agent_api, alice, jim):
    interaction = InteractionFactory(customer=jim, agent=alice)
    response = agent_api.patch(
        f"/api/v1/interactions/{interaction.pk}",
        {
            "reason": "technical_fault",
            "summary": "Router reboots nightly",
            "outcome": "follow_up",
            "facts": [{"key": "router_model", "value": "Hub 6"}],
            "preferences": {"preferred_channel": "sms"},
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    fact = Fact.objects.get(customer=jim, key="router_model", is_current=True)
    assert (fact.value, fact.interaction_id, fact.recorded_by, fact.channel) == (
        "Hub 6",
        interaction.pk,
        alice,
        "phone",
    )
    pref = Preference.objects.get(customer=jim, key="preferred_channel", is_current=True)
    assert (pref.value, pref.interaction_id) == ("sms", interaction.pk)
    timeline = agent_api.get(f"/api/v1/customers/{jim.pk}/timeline").json()["results"]
    assert timeline[0]["id"] == str(interaction.pk) and timeline[0]["summary"] == "Router reboots nightly"


def test_a_changed_fact_keeps_the_earlier_value_as_history(agent_api, alice, jim):
    for value in ("Hub 5", "Hub 6"):
        interaction = InteractionFactory(customer=jim, agent=alice)
        agent_api.patch(
            f"/api/v1/interactions/{interaction.pk}",
            {"facts": [{"key": "router_model", "value": value}]},
            format="json",
        )
    assert list(
        Fact.objects.filter(customer=jim, key="router_model").order_by("recorded_at").values_list("value", "is_current")
    ) == [
        ("Hub 5", False),
        ("Hub 6", True),
    ]


def test_linking_an_unknown_caller_attaches_the_number(agent_api, alice, jim):
    interaction = InteractionFactory(customer=None, agent=alice, identifiers={"phone": "+12125550777"})
    response = agent_api.patch(f"/api/v1/interactions/{interaction.pk}", {"customer_id": str(jim.pk)}, format="json")
    assert response.status_code == 200
    assert jim.identities.filter(kind="phone", normalized="+12125550777", verified_at__isnull=True).exists()


def test_a_repeat_posted_with_another_channel_is_still_the_same_contact(agent_api, jim):
    first = agent_api.post(
        "/api/v1/interactions", {"channel": "chat", "customer_id": str(jim.pk), "external_id": "x-1"}, format="json"
    )
    second = agent_api.post(
        "/api/v1/interactions", {"channel": "email", "customer_id": str(jim.pk), "external_id": "x-1"}, format="json"
    )
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["id"] == first.json()["id"]
    assert Interaction.objects.filter(external_id="x-1").count() == 1
