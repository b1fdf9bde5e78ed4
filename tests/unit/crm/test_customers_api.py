import pytest

from crm.models import AccessAudit, Customer, Identity
from tests.factories import CustomerFactory, IdentityFactory

pytestmark = pytest.mark.django_db


def test_token_is_issued_for_right_credentials_only(anon_api, alice):
    ok = anon_api.post("/api/v1/auth/token", {"username": "alice", "password": "pw-for-tests"}, format="json")
    assert ok.status_code == 200 and ok.json()["token"]
    bad = anon_api.post("/api/v1/auth/token", {"username": "alice", "password": "wrong"}, format="json")
    assert bad.status_code in (400, 401) and "token" not in bad.json()


def test_agent_creates_a_customer_with_normalized_identities(agent_api):
    response = agent_api.post(
        "/api/v1/customers",
        {
            "display_name": "Maria Garcia",
            "identities": [
                {"kind": "phone", "value": "(212) 555-0123", "verified": True},
                {"kind": "email", "value": "Maria@Example.com"},
                {"kind": "account", "value": "ac 9988-77"},
            ],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    values = {(i["kind"], i["value"], i["verified"]) for i in body["identities"]}
    assert values == {
        ("phone", "+12125550123", True),
        ("email", "maria@example.com", False),
        ("account", "AC998877", False),
    }
    assert Customer.objects.filter(pk=body["id"], display_name="Maria Garcia").exists()


def test_a_duplicate_account_is_refused_and_nothing_is_written(agent_api, jim):
    customers, identities = Customer.objects.count(), Identity.objects.count()
    response = agent_api.post(
        "/api/v1/customers",
        {"display_name": "Impostor", "identities": [{"kind": "account", "value": "AC 1234 5678"}]},
        format="json",
    )
    assert response.status_code == 409
    assert "identities" in response.json()
    assert (Customer.objects.count(), Identity.objects.count()) == (customers, identities)


@pytest.mark.parametrize("term", ["(212) 555-0100", "+1 212 555 0100", "JIM@example.com", "ac-1234-5678", "okafor"])
def test_search_finds_a_customer_by_any_written_form(agent_api, jim, term):
    response = agent_api.get("/api/v1/customers", {"search": term})
    assert response.status_code == 200
    assert [c["id"] for c in response.json()["results"]] == [str(jim.pk)]


def test_search_does_not_find_merged_or_erased_customers(agent_api, jim):
    gone = CustomerFactory(display_name="James Okafor", erased_at="2026-01-01T00:00:00Z")
    IdentityFactory(customer=gone, kind="phone", value="+12125550199", normalized="+12125550199")
    response = agent_api.get("/api/v1/customers", {"search": "okafor"})
    assert [c["id"] for c in response.json()["results"]] == [str(jim.pk)]


def test_every_customer_read_is_audited(agent_api, alice, jim):
    agent_api.get(f"/api/v1/customers/{jim.pk}")
    agent_api.get(f"/api/v1/customers/{jim.pk}/timeline")
    agent_api.get("/api/v1/customers", {"search": "okafor"})
    rows = AccessAudit.objects.filter(customer=jim, actor=alice, action="view")
    assert rows.count() == 3


def test_patch_updates_the_customer(agent_api, jim):
    response = agent_api.patch(f"/api/v1/customers/{jim.pk}", {"tier": "vip", "preferred_name": "Jimmy"}, format="json")
    assert response.status_code == 200
    jim.refresh_from_db()
    assert (jim.tier, jim.preferred_name) == ("vip", "Jimmy")


def test_adding_an_identity_normalizes_it(agent_api, jim):
    response = agent_api.post(
        f"/api/v1/customers/{jim.pk}/identities", {"kind": "phone", "value": "0044 20 7946 0018"}, format="json"
    )
    assert response.status_code == 201
    assert Identity.objects.filter(customer=jim, kind="phone", normalized="+442079460018").exists()


def test_unknown_customer_is_404(agent_api):
    response = agent_api.get("/api/v1/customers/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert response.json()["detail"]


def test_every_other_read_of_a_customer_is_audited_with_its_actor(agent_api, supervisor_api, alice, sam, jim):
    from tests.factories import InteractionFactory

    interaction = InteractionFactory(customer=jim)
    agent_api.get(f"/api/v1/interactions/{interaction.pk}")
    agent_api.post("/api/v1/context/lookup", {"phone": "(212) 555-0100"}, format="json")
    supervisor_api.get(f"/api/v1/customers/{jim.pk}/export")

    assert AccessAudit.objects.filter(customer=jim, actor=alice, interaction_id=interaction.pk).exists()
    assert AccessAudit.objects.filter(customer=jim, actor=alice, action="lookup").exists()
    assert AccessAudit.objects.filter(customer=jim, actor=sam).exists()


def test_a_search_result_is_not_a_read_of_customers_it_does_not_return(agent_api, jim):
    other = CustomerFactory(display_name="Olga Novak")
    agent_api.get("/api/v1/customers", {"search": "okafor"})
    assert not AccessAudit.objects.filter(customer=other).exists()


def test_a_search_page_costs_a_fixed_number_of_queries(agent_api, alice, django_assert_max_num_queries):
    for n in range(30):
        CustomerFactory(display_name=f"Okafor {n:02d}")
    agent_api.get("/api/v1/customers", {"search": "okafor"})  # warm the token and role lookups
    with django_assert_max_num_queries(8):
        response = agent_api.get("/api/v1/customers", {"search": "okafor"})
    assert len(response.json()["results"]) == 30
    assert AccessAudit.objects.filter(actor=alice, action="view").count() == 60


def test_the_timeline_accepts_drfs_format_parameter(agent_api, jim):
    response = agent_api.get(f"/api/v1/customers/{jim.pk}/timeline", {"format": "json", "limit": 5})
    assert response.status_code == 200
    bad = agent_api.get(f"/api/v1/customers/{jim.pk}/timeline", {"limit": "many"})
    assert bad.status_code == 400 and "limit" in bad.json()


def test_the_timeline_pages_through_entries_that_share_a_moment_without_losing_any(agent_api, jim):
    # given: a bulk import gave five contacts and two cases the very same time
    from django.utils import timezone

    from tests.factories import CaseFactory, InteractionFactory

    moment = timezone.now().replace(microsecond=0)
    made = {str(InteractionFactory(customer=jim, started_at=moment).pk) for _ in range(5)}
    made |= {str(CaseFactory(customer=jim, opened_at=moment).pk) for _ in range(2)}

    # when: read two at a time
    seen, cursor = [], None
    for _ in range(10):
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = agent_api.get(f"/api/v1/customers/{jim.pk}/timeline", query).json()
        seen += [entry["id"] for entry in body["results"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break

    # then: every entry once
    assert sorted(seen) == sorted(made)


def test_a_cursor_the_timeline_did_not_write_is_a_400(agent_api, jim):
    response = agent_api.get(f"/api/v1/customers/{jim.pk}/timeline", {"cursor": "yesterday"})
    assert response.status_code == 400 and "cursor" in response.json()
