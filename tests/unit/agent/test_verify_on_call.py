"""Issue 12 on the API side: "Verified on this call", contacts that count, My recognitions."""

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from context import events
from crm.models import AccessAudit, Identity, Interaction, Recognition
from tests.factories import (
    CustomerFactory,
    FeedbackFactory,
    IdentityFactory,
    InteractionFactory,
    UserFactory,
    reason,
)
from tests.fixtures.crm import row_counts

pytestmark = pytest.mark.django_db


def pop(client, call_id="call-9", **extra):
    body = {"phone": "+12125550100", "call_id": call_id, **extra}
    response = client.post("/api/v1/context/lookup", body, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def verify(client, interaction_id, **body):
    return client.post(f"/api/v1/interactions/{interaction_id}/verify", body, format="json")


def test_verified_on_this_call_holds_across_a_transfer_and_is_audited(agent_api, supervisor_api, alice, jim):
    first = pop(agent_api)
    assert first["verified"] is False and "account" not in first["do_not_ask"]

    response = verify(agent_api, first["interaction_id"], kind="account", value="AC-1234-5678")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["verified_on_call"] == ["account"]
    assert body["identity"]["verified_via"] == "agent" and body["identity"]["verified_at"]
    account = Identity.objects.get(customer=jim, kind="account")
    assert (account.verified_via, account.verified_by) == ("agent", alice)
    audit = AccessAudit.objects.filter(interaction_id=first["interaction_id"], action="update").get()
    assert audit.detail == {"verified": "account", "via": "agent"} and audit.actor == alice
    # The call is transferred: the next agent's lookup for the same call_id says verified.
    second = pop(supervisor_api)
    assert second["interaction_id"] == first["interaction_id"]
    assert second["verified"] is True and second["verified_on_call"] == ["account"]
    assert "account" in second["do_not_ask"]
    shown = next(i for i in second["customer"]["identities"] if i["kind"] == "account")
    assert shown["verified"] is True and shown["verified_via"] == "agent"
    # A transfer whose IVR adds another verification keeps the first one.
    third = pop(supervisor_api, verified=["phone"])
    assert third["verified_on_call"] == ["account", "phone"]


def test_verifying_again_on_the_same_call_changes_nothing(agent_api, jim):
    opened = pop(agent_api)
    verify(agent_api, opened["interaction_id"], kind="phone")
    stamped = Identity.objects.get(customer=jim, kind="phone").verified_at

    again = verify(agent_api, opened["interaction_id"], kind="phone")

    assert again.status_code == 200
    assert Identity.objects.get(customer=jim, kind="phone").verified_at == stamped
    assert AccessAudit.objects.filter(interaction_id=opened["interaction_id"], action="update").count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "kind"),
        ({"kind": "passport"}, "kind"),
        ({"kind": "account", "value": "ZZ-9999"}, "kind"),
        ({"kind": "phone", "value": "12"}, "value"),
        ({"kind": "phone", "extra": 1}, "extra"),
    ],
)
def test_a_bad_verification_is_refused_and_changes_nothing(agent_api, jim, body, field):
    opened = pop(agent_api)
    before = row_counts()

    response = verify(agent_api, opened["interaction_id"], **body)

    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    assert row_counts() == before
    assert not Identity.objects.filter(verified_at__isnull=False).exists()
    assert Interaction.objects.get(pk=opened["interaction_id"]).verified == []


def test_an_unknown_caller_must_be_linked_before_being_verified(agent_api, jim):
    opened = agent_api.post("/api/v1/context/lookup", {"phone": "+16465550199"}, format="json").json()
    response = verify(agent_api, opened["interaction_id"], kind="phone")
    assert response.status_code == 409 and "interaction_id" in response.json()
    assert verify(agent_api, "00000000-0000-0000-0000-000000000000", kind="phone").status_code == 404


def test_only_staff_on_the_desk_may_verify(norole_api, integration_api, agent_api, jim):
    opened = pop(agent_api)
    assert verify(norole_api, opened["interaction_id"], kind="phone").status_code == 403
    assert verify(integration_api, opened["interaction_id"], kind="phone").status_code == 403


def test_pops_nobody_wrapped_up_are_not_contacts_on_the_card_or_the_timeline(agent_api, supervisor_api, jim):
    popped = pop(agent_api, call_id="never-wrapped")
    pop(agent_api, call_id="wrapped")
    wrapped = pop(agent_api, call_id="wrapped")["interaction_id"]
    agent_api.patch(f"/api/v1/interactions/{wrapped}", {"reason": "billing", "outcome": "resolved"}, format="json")
    InteractionFactory(customer=jim, source="api")  # another channel's contact always counts

    card = pop(agent_api, call_id="next")

    shown = {i["id"] for i in card["recent_interactions"]}
    assert wrapped in shown and popped["interaction_id"] not in shown and len(shown) == 2
    timeline = supervisor_api.get(f"/api/v1/customers/{jim.pk}/timeline").json()["results"]
    contacts = {e["id"] for e in timeline if e["type"] == "interaction"}
    assert wrapped in contacts and popped["interaction_id"] not in contacts


def test_a_repeat_contact_says_about_what_and_how_often(agent_api, jim):
    for days in (3, 5):
        InteractionFactory(
            customer=jim, reason=reason("billing"), started_at=timezone.now() - timezone.timedelta(days=days)
        )
    FeedbackFactory(customer=jim, rating=2, sentiment="negative", text="Billed twice, again.")

    card = pop(agent_api, ivr={"intent": "billing"})

    assert "repeat_contact" in card["flags"]
    assert card["repeat"] == {"reason": "billing", "count": 2}
    assert card["last_feedback"]["text"] == "Billed twice, again."


def test_my_recognitions_lists_the_agents_praise_and_pushes_new_ones(
    client, alice, jim, django_capture_on_commit_callbacks
):
    other = UserFactory(username="omar", role="agent")
    Recognition.objects.create(feedback=FeedbackFactory(customer=jim, rating=5), staff=other, quote="Omar was great")
    client.force_login(alice)
    with events.subscribe(alice.pk) as subscription:
        with django_capture_on_commit_callbacks(execute=True):
            Recognition.objects.create(
                feedback=FeedbackFactory(customer=jim, rating=5), staff=alice, quote="Alice sorted it in minutes"
            )
        pushed = subscription.get(timeout=2)

    assert pushed["type"] == "recognition" and pushed["quote"] == "Alice sorted it in minutes"
    listed = client.get(reverse("agent-recognitions")).json()["results"]
    assert [r["quote"] for r in listed] == ["Alice sorted it in minutes"]
    assert listed[0]["rating"] == 5 and listed[0]["created_at"]


def test_household_candidates_say_what_tells_them_apart(agent_api):
    landline = "+12125550199"
    ann, ben = CustomerFactory(display_name="Ann Lee"), CustomerFactory(display_name="Ben Lee")
    for person in (ann, ben):
        IdentityFactory(customer=person, kind="phone", value=landline, normalized=landline)
    IdentityFactory(customer=ann, kind="account", value="AC-0000-1234", normalized="AC00001234")
    IdentityFactory(
        customer=ann, kind="account", value="AC-0000-9876", normalized="AC00009876", verified_at=timezone.now()
    )
    IdentityFactory(customer=ben, kind="email", value="ben@work.example", normalized="ben@work.example")
    wrapped = InteractionFactory(customer=ann, reason=reason("billing"), started_at=timezone.now())
    InteractionFactory(customer=ben, source="contact", call_id="pop-only")  # not a contact: no wrap-up

    body = agent_api.post("/api/v1/context/lookup", {"phone": landline}, format="json").json()

    assert body["match"] == "ambiguous"
    by_name = {c["display_name"]: c for c in body["candidates"]}
    assert by_name["Ann Lee"]["account_last4"] == "9876"  # the verified account
    assert by_name["Ann Lee"]["email_domain"] is None
    assert by_name["Ann Lee"]["last_contact_at"][:19] == wrapped.started_at.strftime("%Y-%m-%dT%H:%M:%S")
    assert by_name["Ben Lee"] | {"id": None} == {
        "id": None, "display_name": "Ben Lee", "matched_on": ["phone"],
        "account_last4": None, "email_domain": "work.example", "last_contact_at": None,
    }  # fmt: skip


def test_the_360_neither_lists_nor_counts_pops_nobody_wrapped_up(agent_api, sam, jim):
    pop(agent_api, call_id="popped")
    wrapped = pop(agent_api, call_id="wrapped")["interaction_id"]
    agent_api.patch(f"/api/v1/interactions/{wrapped}", {"reason": "billing", "outcome": "resolved"}, format="json")
    client = Client()
    client.force_login(sam)

    response = client.get(f"/admin/crm/customer/{jim.pk}/360/")

    assert response.status_code == 200
    assert response.context["counts"]["contacts"] == 1
    assert [e["id"] for e in response.context["timeline"] if e["type"] == "interaction"] == [wrapped]
