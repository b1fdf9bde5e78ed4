"""The screen-pop lookup end to end, as a client that knows only CONTRACT.md sees it.

Jim (fixture) has a phone, an e-mail and an account. Households share a phone.
"""

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from context.services import CONTACT_SOURCE, context_lookup
from crm import privacy
from crm.models import AccessAudit, Fact, Interaction, Preference
from tests.factories import (
    CaseFactory,
    CustomerFactory,
    FeedbackFactory,
    IdentityFactory,
    InteractionFactory,
    UserFactory,
    reason,
)

URL = "/api/v1/context/lookup"


def lookup(api, **body):
    response = api.post(URL, body, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def household(phone="+12125550199"):
    """Two customers sharing one landline."""
    ann = CustomerFactory(display_name="Ann Lee")
    ben = CustomerFactory(display_name="Ben Lee")
    for person in (ann, ben):
        IdentityFactory(customer=person, kind="phone", value=phone, normalized=phone)
    return ann, ben


# --- identity resolution -----------------------------------------------------------------


def test_a_known_phone_in_national_form_is_a_unique_match_with_the_card(agent_api, jim):
    body = lookup(agent_api, phone="(212) 555-0100")

    assert body["match"] == "unique"
    assert body["matched_on"] == ["phone"]
    assert body["candidates"] == []
    customer = body["customer"]
    assert customer["id"] == str(jim.pk)
    assert customer["display_name"] == "James Okafor"
    assert customer["preferred_name"] == "Jim"
    assert {(i["kind"], i["value"], i["verified"]) for i in customer["identities"]} == {
        ("phone", "+12125550100", False),
        ("email", "jim@example.com", False),
        ("account", "AC12345678", False),
    }
    assert set(body) >= {
        "match", "matched_on", "interaction_id", "customer", "candidates", "verified", "do_not_ask", "ivr",
        "open_cases", "recent_interactions", "flags", "last_feedback",
    }  # fmt: skip


def test_email_in_any_case_and_account_with_spaces_and_dashes_match(agent_api, jim):
    assert lookup(agent_api, email="JIM@example.COM", channel="email")["customer"]["id"] == str(jim.pk)
    assert lookup(agent_api, account="ac 1234-5678")["customer"]["id"] == str(jim.pk)


def test_identifiers_that_agree_are_unique_and_all_named(agent_api, jim):
    body = lookup(agent_api, phone="+12125550100", email="jim@example.com", account="AC12345678")
    assert body["match"] == "unique"
    assert body["matched_on"] == ["account", "email", "phone"]


def test_a_household_phone_is_ambiguous_with_every_candidate(agent_api):
    ann, ben = household()

    body = lookup(agent_api, phone="+1 212 555 0199")

    assert body["match"] == "ambiguous"
    assert body["customer"] is None
    nothing_tells_apart = {"account_last4": None, "email_domain": None, "last_contact_at": None}  # issue 12's hints
    assert body["candidates"] == [
        {"id": str(ann.pk), "display_name": "Ann Lee", "matched_on": ["phone"], **nothing_tells_apart},
        {"id": str(ben.pk), "display_name": "Ben Lee", "matched_on": ["phone"], **nothing_tells_apart},
    ]
    assert body["matched_on"] == ["phone"]
    assert body["open_cases"] == [] and body["recent_interactions"] == [] and body["flags"] == []


def test_an_email_picks_one_member_of_a_household(agent_api):
    ann, _ben = household()
    IdentityFactory(customer=ann, kind="email", value="ann@example.com", normalized="ann@example.com")

    body = lookup(agent_api, phone="+12125550199", email="ann@example.com")

    assert body["match"] == "unique"
    assert body["customer"]["id"] == str(ann.pk)
    assert body["matched_on"] == ["email", "phone"]


def test_a_strong_identifier_outranks_a_phone_that_points_elsewhere(agent_api, jim):
    other = CustomerFactory(display_name="Other Person")
    IdentityFactory(customer=other, kind="phone", value="+12125550111", normalized="+12125550111")

    body = lookup(agent_api, phone="+12125550111", account="AC12345678")

    assert body["match"] == "unique"
    assert body["customer"]["id"] == str(jim.pk)
    assert body["matched_on"] == ["account"]


def test_a_verified_phone_outranks_an_unverified_email(agent_api, jim):
    other = CustomerFactory(display_name="Other Person")
    IdentityFactory(customer=other, kind="email", value="o@example.com", normalized="o@example.com")

    body = lookup(agent_api, phone="+12125550100", email="o@example.com", verified=["phone"])

    assert body["match"] == "unique"
    assert body["customer"]["id"] == str(jim.pk)
    assert body["verified"] is True


def test_strong_identifiers_that_disagree_are_ambiguous(agent_api, jim):
    other = CustomerFactory(display_name="Other Person")

    body = lookup(agent_api, customer_id=str(other.pk), account="AC12345678")

    assert body["match"] == "ambiguous"
    assert {c["id"]: c["matched_on"] for c in body["candidates"]} == {
        str(jim.pk): ["account"],
        str(other.pk): ["customer_id"],
    }


def test_weak_identifiers_that_disagree_are_ambiguous(agent_api, jim):
    other = CustomerFactory(display_name="Other Person")
    IdentityFactory(customer=other, kind="email", value="o@example.com", normalized="o@example.com")

    body = lookup(agent_api, phone="+12125550100", email="o@example.com")

    assert body["match"] == "ambiguous"
    assert len(body["candidates"]) == 2


def test_a_customer_id_from_a_logged_in_chat_is_unique(agent_api, jim):
    body = lookup(agent_api, customer_id=str(jim.pk), channel="chat")
    assert body["match"] == "unique"
    assert body["matched_on"] == ["customer_id"]
    assert Interaction.objects.get(pk=body["interaction_id"]).channel == "chat"


def test_an_unknown_number_matches_none_but_opens_the_contact(agent_api, alice):
    body = lookup(agent_api, phone="+12125550999", call_id="call-none-1")

    assert body["match"] == "none"
    assert body["customer"] is None and body["candidates"] == [] and body["matched_on"] == []
    interaction = Interaction.objects.get(pk=body["interaction_id"])
    assert interaction.customer_id is None
    assert interaction.agent == alice
    assert interaction.identifiers == {"phone": "+12125550999"}
    assert interaction.source == CONTACT_SOURCE and interaction.call_id == "call-none-1"


def test_none_then_linked_at_wrap_up_finds_the_caller_next_time(agent_api, jim):
    first = lookup(agent_api, phone="+12125550777")
    assert first["match"] == "none"

    response = agent_api.patch(
        f"/api/v1/interactions/{first['interaction_id']}",
        {"customer_id": str(jim.pk), "reason": "billing", "outcome": "resolved"},  # a wrap-up: a contact that counts
        format="json",
    )
    assert response.status_code == 200

    second = lookup(agent_api, phone="212-555-0777")
    assert second["match"] == "unique"
    assert second["customer"]["id"] == str(jim.pk)
    assert {"kind": "phone", "value": "+12125550777", "verified": False, "verified_at": None, "verified_via": None} in (
        second["customer"]["identities"]
    )
    assert second["recent_interactions"][0]["id"] == first["interaction_id"]


# --- merged and erased customers ---------------------------------------------------------


def test_a_merged_duplicate_is_never_returned_its_identifiers_lead_to_the_survivor(agent_api, sam, jim):
    dup = CustomerFactory(display_name="J. Okafor")
    IdentityFactory(customer=dup, kind="phone", value="+12125550123", normalized="+12125550123")
    privacy.customer_merge(actor=sam, survivor=jim, duplicate_id=dup.pk)

    by_phone = lookup(agent_api, phone="+12125550123")
    by_old_id = lookup(agent_api, customer_id=str(dup.pk))

    assert by_phone["match"] == "unique" and by_phone["customer"]["id"] == str(jim.pk)
    assert by_old_id["match"] == "unique" and by_old_id["customer"]["id"] == str(jim.pk)


def test_an_erased_customer_is_found_by_no_former_identifier(agent_api, sam, jim):
    privacy.customer_erase(actor=sam, customer=jim)

    for body in ({"phone": "+12125550100"}, {"email": "jim@example.com"}, {"account": "AC12345678"}):
        assert lookup(agent_api, **body)["match"] == "none"
    response = agent_api.post(URL, {"customer_id": str(jim.pk)}, format="json")
    assert response.status_code == 404
    assert "customer_id" in response.json()


def test_an_email_picks_one_member_of_a_household_whose_phone_the_ivr_verified(agent_api):
    ann, ben = household()
    IdentityFactory(customer=ann, kind="email", value="ann@example.com", normalized="ann@example.com")

    picked = lookup(agent_api, phone="+12125550199", email="ann@example.com", verified=["phone"])
    either = lookup(agent_api, phone="+12125550199", verified=["phone"])

    assert (picked["match"], picked["customer"]["id"]) == ("unique", str(ann.pk))
    assert either["match"] == "ambiguous" and {c["id"] for c in either["candidates"]} == {str(ann.pk), str(ben.pk)}


def test_an_erased_household_member_is_not_a_candidate(agent_api, sam):
    ann, ben = household()
    privacy.customer_erase(actor=sam, customer=ben)

    body = lookup(agent_api, phone="+12125550199")

    assert body["match"] == "unique" and body["customer"]["id"] == str(ann.pk)


# --- the contact and the audit -------------------------------------------------------------


def test_repeating_a_call_id_returns_the_same_interaction_and_opens_nothing(agent_api, jim):
    first = lookup(agent_api, phone="+12125550100", call_id="abc-1")
    count = Interaction.objects.count()

    second = lookup(agent_api, phone="+12125550100", call_id="abc-1")

    assert second["interaction_id"] == first["interaction_id"]
    assert Interaction.objects.count() == count
    assert first["interaction_id"] not in [i["id"] for i in second["recent_interactions"]]


def test_a_repeat_of_the_call_that_identifies_the_caller_links_the_contact_to_them(agent_api, jim):
    # given: the ringing lookup did not know the number
    first = lookup(agent_api, phone="+12125550999", call_id="late-id")
    assert first["match"] == "none"

    # when: the IVR has since verified the account
    second = lookup(agent_api, account="AC-1234-5678", verified=["account"], call_id="late-id")

    # then: same contact, now Jim's, and the wrap-up's facts land on Jim
    assert second["interaction_id"] == first["interaction_id"] and second["customer"]["id"] == str(jim.pk)
    interaction = Interaction.objects.get(pk=second["interaction_id"])
    assert (interaction.customer_id, interaction.verified) == (jim.pk, ["account"])
    assert interaction.identifiers == {"phone": "+12125550999", "account": "AC12345678"}
    response = agent_api.patch(
        f"/api/v1/interactions/{interaction.pk}", {"facts": [{"key": "router", "value": "Hub 6"}]}, format="json"
    )
    assert response.status_code == 200
    assert Fact.objects.filter(customer=jim, key="router", interaction=interaction).exists()


def test_a_repeat_of_the_call_that_matches_nobody_keeps_the_caller_it_found(agent_api, jim):
    first = lookup(agent_api, phone="+12125550100", call_id="keep-id")
    lookup(agent_api, phone="+12125550999", call_id="keep-id")

    assert Interaction.objects.get(pk=first["interaction_id"]).customer_id == jim.pk


def test_a_call_event_and_a_lookup_for_the_same_call_share_the_interaction(agent_api, ivy, alice, jim):
    from_connector = context_lookup(actor=ivy, agent=alice, phone="+12125550100", call_id="cti-7")
    from_desktop = lookup(agent_api, phone="+12125550100", call_id="cti-7")

    assert from_desktop["interaction_id"] == from_connector["interaction_id"]
    assert Interaction.objects.get(pk=from_connector["interaction_id"]).agent == alice


def test_the_lookup_records_the_contact_with_identifiers_ivr_and_agent(agent_api, alice, jim):
    body = lookup(
        agent_api,
        phone="212 555 0100",
        channel="phone",
        call_id="c-9",
        verified=["account"],
        account="AC-1234-5678",
        ivr={"intent": "billing", "postcode": "SW1A 1AA"},
    )

    interaction = Interaction.objects.get(pk=body["interaction_id"])
    assert interaction.customer == jim
    assert interaction.channel == "phone"
    assert interaction.agent == alice
    assert interaction.identifiers == {"phone": "+12125550100", "account": "AC12345678"}
    assert interaction.verified == ["account"]
    assert interaction.ivr == {"intent": "billing", "postcode": "SW1A 1AA"}
    assert interaction.started_at <= timezone.now()


def test_every_lookup_is_audited_with_who_whom_and_which_contact(agent_api, alice, jim):
    body = lookup(agent_api, phone="+12125550100")
    lookup(agent_api, phone="+12125550100", call_id="x")
    lookup(agent_api, phone="+12125550100", call_id="x")

    rows = AccessAudit.objects.filter(action="lookup").order_by("id")
    assert rows.count() == 3
    first = rows.first()
    assert (first.actor, first.customer, str(first.interaction_id)) == (alice, jim, body["interaction_id"])
    assert first.detail == {"match": "unique", "candidates": 1}


def test_an_ambiguous_lookup_audits_the_candidates_ids(agent_api):
    ann, ben = household()
    lookup(agent_api, phone="+12125550199")
    row = AccessAudit.objects.get(action="lookup")
    assert row.customer is None
    assert row.detail["candidate_ids"] == sorted([str(ann.pk), str(ben.pk)])


# --- verification and do_not_ask ----------------------------------------------------------


def test_ivr_verification_makes_the_contact_verified_and_not_asked_again(agent_api, jim):
    Fact.objects.create(customer=jim, key="router_model", value="Hub 6", recorded_at=timezone.now())

    body = lookup(
        agent_api,
        phone="+12125550100",
        account="AC12345678",
        verified=["account"],
        ivr={"intent": "billing", "postcode": "SW1A 1AA"},
    )

    assert body["verified"] is True
    assert body["do_not_ask"] == ["account", "intent", "phone", "postcode", "router_model"]
    assert body["ivr"] == {"intent": "billing", "postcode": "SW1A 1AA"}


def test_an_unverified_contact_is_not_verified(agent_api, jim):
    body = lookup(agent_api, phone="+12125550100")
    assert body["verified"] is False
    assert body["do_not_ask"] == ["phone"]


# --- the card --------------------------------------------------------------------------------


def test_the_card_shows_preferences_facts_cases_recent_contacts_and_feedback(agent_api, alice, jim):
    now = timezone.now()
    Preference.objects.create(customer=jim, key="contact_channel", value="sms", recorded_at=now)
    Preference.objects.create(customer=jim, key="old", value="x", is_current=False, recorded_at=now)
    source = InteractionFactory(customer=jim, channel="chat", started_at=now - dt.timedelta(days=400))
    Fact.objects.create(
        customer=jim, key="router_model", value="Hub 6", channel="chat", interaction=source, recorded_at=now
    )
    case = CaseFactory(customer=jim, subject="Broadband keeps dropping", opened_at=now - dt.timedelta(days=3))
    CaseFactory(customer=jim, subject="Closed one", status="closed")
    for days in range(1, 8):
        InteractionFactory(
            customer=jim,
            started_at=now - dt.timedelta(days=days * 10),
            agent=alice,
            reason=reason("billing"),
            summary=f"call {days}",
            outcome="resolved",
        )
    FeedbackFactory(customer=jim, rating=4, sentiment="positive", received_at=now - dt.timedelta(days=50))

    body = lookup(agent_api, phone="+12125550100")

    customer = body["customer"]
    assert customer["preferences"] == {"contact_channel": "sms"}
    assert customer["facts"] == [
        {
            "key": "router_model",
            "value": "Hub 6",
            "source": {"channel": "chat", "interaction_id": str(source.pk), "imported_from": None},
            "recorded_at": customer["facts"][0]["recorded_at"],
        }
    ]
    assert dt.datetime.fromisoformat(customer["facts"][0]["recorded_at"]) == now
    assert body["open_cases"] == [
        {
            "id": str(case.pk),
            "subject": "Broadband keeps dropping",
            "status": "open",
            "opened_at": body["open_cases"][0]["opened_at"],
        }
    ]
    recent = body["recent_interactions"]
    assert [r["summary"] for r in recent] == ["call 1", "call 2", "call 3", "call 4", "call 5"]
    assert recent[0] == {
        "id": recent[0]["id"],
        "channel": "phone",
        "started_at": recent[0]["started_at"],
        "agent": "alice",
        "reason": "billing",
        "summary": "call 1",
        "outcome": "resolved",
    }
    assert body["last_feedback"]["rating"] == 4
    assert body["last_feedback"]["sentiment"] == "positive"
    assert body["flags"] == ["repeat_contact", "new_customer"]  # billing twice in 30 days; jim is new


def test_recent_interactions_span_all_channels_newest_first(agent_api, jim):
    now = timezone.now()
    for n, channel in enumerate(["email", "chat", "sms", "web", "social", "in_person"]):
        InteractionFactory(customer=jim, channel=channel, started_at=now - dt.timedelta(hours=n + 1))
    body = lookup(agent_api, phone="+12125550100")
    assert [r["channel"] for r in body["recent_interactions"]] == ["email", "chat", "sms", "web", "social"]


# --- flags: each triggered and not triggered ------------------------------------------------


def test_repeat_contact_flag_when_this_reason_had_two_contacts_in_the_window(agent_api, jim):
    now = timezone.now()
    for days in (2, 9):
        InteractionFactory(customer=jim, reason=reason("billing"), started_at=now - dt.timedelta(days=days))

    assert "repeat_contact" in lookup(agent_api, phone="+12125550100", ivr={"intent": "billing"})["flags"]
    assert "repeat_contact" not in lookup(agent_api, phone="+12125550100", ivr={"intent": "outage"})["flags"]


def test_repeat_contact_flag_without_intent_when_any_reason_repeats(agent_api, jim):
    now = timezone.now()
    InteractionFactory(customer=jim, reason=reason("billing"), started_at=now - dt.timedelta(days=2))
    assert "repeat_contact" not in lookup(agent_api, phone="+12125550100")["flags"]
    InteractionFactory(customer=jim, reason=reason("billing"), started_at=now - dt.timedelta(days=3))
    assert "repeat_contact" in lookup(agent_api, phone="+12125550100")["flags"]


def test_repeat_contact_flag_ignores_contacts_outside_the_window(agent_api, jim):
    now = timezone.now()
    for days in (40, 50, 60):
        InteractionFactory(customer=jim, reason=reason("billing"), started_at=now - dt.timedelta(days=days))
    assert "repeat_contact" not in lookup(agent_api, phone="+12125550100", ivr={"intent": "billing"})["flags"]


def test_repeat_contact_flag_when_an_open_case_had_two_contacts(agent_api, jim):
    now = timezone.now()
    case = CaseFactory(customer=jim)
    InteractionFactory(customer=jim, case=case, started_at=now - dt.timedelta(days=1))
    assert "repeat_contact" not in lookup(agent_api, phone="+12125550100")["flags"]
    InteractionFactory(customer=jim, case=case, started_at=now - dt.timedelta(days=2))
    assert "repeat_contact" in lookup(agent_api, phone="+12125550100")["flags"]


def test_recent_complaint_flag_for_negative_feedback_in_the_window_only(agent_api, jim):
    now = timezone.now()
    FeedbackFactory(customer=jim, rating=1, sentiment="negative", received_at=now - dt.timedelta(days=45))
    FeedbackFactory(customer=jim, rating=5, sentiment="positive", received_at=now - dt.timedelta(days=1))
    assert "recent_complaint" not in lookup(agent_api, phone="+12125550100")["flags"]

    FeedbackFactory(customer=jim, rating=2, sentiment="negative", received_at=now - dt.timedelta(days=3))
    body = lookup(agent_api, phone="+12125550100")
    assert "recent_complaint" in body["flags"]
    assert body["last_feedback"]["rating"] == 5


def test_vip_flag_follows_the_tier(agent_api, jim):
    assert "vip" not in lookup(agent_api, phone="+12125550100")["flags"]
    jim.tier = "vip"
    jim.save()
    assert "vip" in lookup(agent_api, phone="+12125550100")["flags"]


def test_do_not_call_flag_follows_the_current_preference(agent_api, jim):
    now = timezone.now()
    Preference.objects.create(customer=jim, key="do_not_call", value="false", recorded_at=now)
    assert "do_not_call" not in lookup(agent_api, phone="+12125550100")["flags"]
    Preference.objects.filter(customer=jim).update(value="true")
    assert "do_not_call" in lookup(agent_api, phone="+12125550100")["flags"]


def test_new_customer_flag_within_the_window_of_creation(agent_api, jim):
    assert "new_customer" in lookup(agent_api, phone="+12125550100")["flags"]
    type(jim).objects.filter(pk=jim.pk).update(created_at=timezone.now() - dt.timedelta(days=90))
    assert "new_customer" not in lookup(agent_api, phone="+12125550100")["flags"]


# --- wrap-up is visible in the very next lookup ---------------------------------------------


def test_a_wrap_up_is_visible_in_the_very_next_lookup(agent_api, jim):
    first = lookup(agent_api, phone="+12125550100", call_id="w-1")

    response = agent_api.patch(
        f"/api/v1/interactions/{first['interaction_id']}",
        {
            "reason": "billing",
            "summary": "Explained the bill",
            "outcome": "resolved",
            "facts": [{"key": "router_model", "value": "Hub 6"}],
            "preferences": {"do_not_call": "true"},
        },
        format="json",
    )
    assert response.status_code == 200

    second = lookup(agent_api, phone="+12125550100", call_id="w-2")
    assert second["recent_interactions"][0]["id"] == first["interaction_id"]
    assert second["recent_interactions"][0]["summary"] == "Explained the bill"
    assert second["recent_interactions"][0]["reason"] == "billing"
    assert second["customer"]["preferences"] == {"do_not_call": "true"}
    assert [f["key"] for f in second["customer"]["facts"]] == ["router_model"]
    assert second["customer"]["facts"][0]["source"]["interaction_id"] == first["interaction_id"]
    assert "do_not_call" in second["flags"]
    assert "router_model" in second["do_not_ask"]


# --- bad input: 400/404 naming the field, nothing opened ----------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "phone"),
        ({"channel": "phone"}, "phone"),
        ({"phone": ""}, "phone"),
        ({"phone": "not a number"}, "phone"),
        ({"phone": "+1 212"}, "phone"),
        ({"phone": 2125550100}, "phone"),
        ({"email": "not-an-email"}, "email"),
        ({"email": ["jim@example.com"]}, "email"),
        ({"account": "A-1"}, "account"),
        ({"phone": "+12125550100", "channel": "fax"}, "channel"),
        ({"phone": "+12125550100", "channel": 3}, "channel"),
        ({"customer_id": "not-a-uuid"}, "customer_id"),
        ({"customer_id": 42}, "customer_id"),
        ({"phone": "+12125550100", "verified": "account"}, "verified"),
        ({"phone": "+12125550100", "verified": ["passport"]}, "verified"),
        ({"phone": "+12125550100", "ivr": ["intent"]}, "ivr"),
        ({"phone": "+12125550100", "ivr": "billing"}, "ivr"),
        ({"phone": "+12125550100", "call_id": 17}, "call_id"),
        ({"phone": "+12125550100", "call_id": "x" * 129}, "call_id"),
        ({"phone": "+12125550100", "call_id": " "}, "call_id"),
        ({"phone": "+12125550100", "phon": "+12125550100"}, "phon"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_opens_nothing(agent_api, jim, body, field):
    before = (Interaction.objects.count(), AccessAudit.objects.count())

    response = agent_api.post(URL, body, format="json")

    assert response.status_code == 400, response.content
    assert field in response.json()
    assert (Interaction.objects.count(), AccessAudit.objects.count()) == before


def test_a_body_that_is_not_an_object_is_a_400(agent_api):
    response = agent_api.post(URL, ["phone"], format="json")
    assert response.status_code == 400
    response = agent_api.post(URL, "{not json", content_type="application/json")
    assert response.status_code == 400
    assert Interaction.objects.count() == 0


def test_an_unknown_customer_id_is_a_404_naming_the_field_and_opens_nothing(agent_api):
    response = agent_api.post(URL, {"customer_id": "6f1c2b9e-0000-4000-8000-000000000000"}, format="json")
    assert response.status_code == 404
    assert "customer_id" in response.json()
    assert Interaction.objects.count() == 0
    assert AccessAudit.objects.count() == 0


def test_null_optional_fields_count_as_absent(agent_api, jim):
    body = lookup(agent_api, phone="+12125550100", email=None, call_id=None, ivr=None, verified=None, channel=None)
    assert body["match"] == "unique"


# --- roles -----------------------------------------------------------------------------------


def test_the_lookup_needs_a_token(anon_api):
    assert anon_api.post(URL, {"phone": "+12125550100"}, format="json").status_code == 401


def test_an_invalid_token_is_a_401(anon_api):
    anon_api.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert anon_api.post(URL, {"phone": "+12125550100"}, format="json").status_code == 401


def test_the_integration_role_may_not_look_up(integration_api, norole_api):
    assert integration_api.post(URL, {"phone": "+12125550100"}, format="json").status_code == 403
    assert norole_api.post(URL, {"phone": "+12125550100"}, format="json").status_code == 403
    assert Interaction.objects.count() == 0


def test_supervisors_and_superusers_may_look_up(supervisor_api, jim):
    from tests.conftest import client_for

    assert lookup(supervisor_api, phone="+12125550100")["match"] == "unique"
    root = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    assert lookup(client_for(root), phone="+12125550100")["match"] == "unique"


def test_a_removed_role_takes_effect_on_the_next_call(agent_api, alice):
    IdentityFactory(kind="phone", value="+12125550142", normalized="+12125550142")
    assert agent_api.post(URL, {"phone": "+12125550142"}, format="json").status_code == 200
    alice.groups.clear()
    assert agent_api.post(URL, {"phone": "+12125550142"}, format="json").status_code == 403


def test_a_deactivated_user_is_refused_on_the_next_call(agent_api, alice):
    alice.is_active = False
    alice.save()
    assert agent_api.post(URL, {"phone": "+12125550100"}, format="json").status_code == 401


def test_the_browser_session_may_look_up(client, jim):
    user = UserFactory(username="sessiona", role="agent")
    client.force_login(user)
    response = client.post(URL, {"phone": "+12125550100"}, content_type="application/json")
    assert response.status_code == 200
    assert response.json()["match"] == "unique"
