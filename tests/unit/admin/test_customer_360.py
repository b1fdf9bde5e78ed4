import datetime as dt

import pytest
from django.utils import timezone

from crm import models, privacy
from tests.factories import CustomerFactory, reason
from tests.fixtures.admin import make_person

pytestmark = pytest.mark.django_db


def test_the_360_shows_identities_preferences_facts_flags_and_timeline(supervisor_client, sam):
    person = make_person("Maria Garcia", 1)
    customer = person.customer
    customer.tier = "vip"
    customer.save()

    response = supervisor_client.get(f"/admin/crm/customer/{customer.pk}/360/")

    assert response.status_code == 200
    page = response.content.decode()
    for text in (person.phone, person.email, person.account, "unverified", "secret-fact-1", "secret-pref-1"):
        assert text in page
    assert 'data-flag="vip"' in page
    kinds = {e["type"] for e in response.context["timeline"]}
    assert kinds == {"interaction", "feedback", "case", "follow_up"}
    assert "secret-summary-1" in page and "secret-feedback-1" in page


def test_opening_the_360_is_recorded_in_the_access_audit(supervisor_client, sam, jim):
    supervisor_client.get(f"/admin/crm/customer/{jim.pk}/360/")

    row = models.AccessAudit.objects.get(customer=jim, action="view")
    assert row.actor == sam and row.detail == {"page": "admin_360"}


def test_the_360_opens_in_bounded_queries_for_a_customer_with_thousands_of_contacts(
    supervisor_client, django_assert_max_num_queries
):
    customer = CustomerFactory(display_name="Busy Caller")
    now = timezone.now()
    billing = reason("billing")
    models.Interaction.objects.bulk_create(
        [
            models.Interaction(
                customer=customer, channel="phone", started_at=now - dt.timedelta(hours=i), reason=billing, source="t"
            )
            for i in range(3000)
        ]
    )

    with django_assert_max_num_queries(32):  # issue 13: +survey window, +reason labels
        response = supervisor_client.get(f"/admin/crm/customer/{customer.pk}/360/")

    assert response.status_code == 200
    assert len(response.context["timeline"]) == 50
    assert response.context["counts"]["contacts"] == 3000
    # the next page starts where the first ended
    older = supervisor_client.get(
        f"/admin/crm/customer/{customer.pk}/360/", {"after": response.context["next_cursor"]}
    ).context["timeline"]
    assert len(older) == 50
    assert older[0]["at"] < response.context["timeline"][-1]["at"]


def test_a_merged_away_customer_opens_its_survivors_360(supervisor_client, sam, jim):
    twin = CustomerFactory()
    privacy.customer_merge(actor=sam, survivor=jim, duplicate_id=twin.pk)

    response = supervisor_client.get(f"/admin/crm/customer/{twin.pk}/360/")

    assert response.status_code == 302 and response.url == f"/admin/crm/customer/{jim.pk}/360/"


def test_the_customer_list_search_understands_any_written_form_of_a_phone(supervisor_client, jim):
    CustomerFactory(display_name="Someone Else")

    response = supervisor_client.get("/admin/crm/customer/", {"q": "(212) 555-0100"})

    assert list(response.context["cl"].result_list) == [jim]


def test_editing_a_customer_in_the_admin_is_audited(supervisor_client, sam, jim):
    supervisor_client.get(f"/admin/crm/customer/{jim.pk}/change/")
    form = {
        "display_name": "James Okafor",
        "preferred_name": "Jimmy",
        "language": "en",
        "timezone": "",
        "tier": "vip",
        "identities-TOTAL_FORMS": "3",
        "identities-INITIAL_FORMS": "3",
        "identities-MIN_NUM_FORMS": "0",
        "identities-MAX_NUM_FORMS": "1000",
    }
    for n, identity in enumerate(jim.identities.order_by("pk")):
        form[f"identities-{n}-id"] = str(identity.pk)
        form[f"identities-{n}-customer"] = str(jim.pk)

    response = supervisor_client.post(f"/admin/crm/customer/{jim.pk}/change/", form)

    assert response.status_code == 302, response.context["adminform"].errors if response.context else response
    jim.refresh_from_db()
    assert (jim.preferred_name, jim.tier) == ("Jimmy", "vip")
    update = models.AccessAudit.objects.get(customer=jim, action="update")
    assert update.actor == sam and update.detail == {"fields": ["preferred_name", "tier"]}
    assert models.AccessAudit.objects.filter(customer=jim, action="view", detail={"page": "admin_change"}).exists()


@pytest.mark.parametrize(
    "after", ["2024-13-45T00:00:00~case~x", "2024-02-30T10:00:00+00:00~case~x", "not-a-cursor", "2024-01-01~pet~1"]
)
def test_an_impossible_or_unreadable_cursor_shows_the_newest_page(supervisor_client, sam, jim, after):
    response = supervisor_client.get(f"/admin/crm/customer/{jim.pk}/360/", {"after": after})

    assert response.status_code == 200
