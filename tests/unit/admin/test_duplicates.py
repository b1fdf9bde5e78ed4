import json

import pytest
from django.utils import timezone

from crm import duplicates, models
from tests.factories import CustomerFactory, IdentityFactory
from tests.fixtures.admin import make_person

pytestmark = pytest.mark.django_db


def shared_phone(*customers, phone="+12125550999"):
    for customer in customers:
        IdentityFactory(customer=customer, kind="phone", value=phone, normalized=phone)


def test_customers_sharing_a_phone_or_email_are_paired_most_alike_names_first():
    maria, maria_again = CustomerFactory(display_name="María García"), CustomerFactory(display_name="maria garcia")
    shared_phone(maria, maria_again)
    tom, anna = CustomerFactory(display_name="Tom Baker"), CustomerFactory(display_name="Anna Baker")
    for c in (tom, anna):
        IdentityFactory(customer=c, kind="email", value="bakers@example.com", normalized="bakers@example.com")
    CustomerFactory(display_name="María García")  # same name, nothing shared: not proposed

    pairs = duplicates.duplicate_pairs()

    assert [(p["survivor"], p["duplicate"]) for p in pairs] == [(maria, maria_again), (tom, anna)]
    assert pairs[0]["likely"] and pairs[0]["score"] == 100
    assert not pairs[1]["likely"]
    assert pairs[0]["shared"] == [{"kind": "phone", "value": "+12125550999"}]
    assert [(p["survivor"], p["duplicate"]) for p in duplicates.duplicate_pairs(likely_only=True)] == [
        (maria, maria_again)
    ]


def test_an_initial_matches_the_full_first_name():
    a, b = CustomerFactory(display_name="Aiko Garcia"), CustomerFactory(display_name="A. Garcia")
    assert duplicates.name_similarity(a, b) >= duplicates.LIKELY_SCORE


def test_erased_and_merged_customers_are_not_proposed():
    live = CustomerFactory(display_name="Jo Smith")
    erased = CustomerFactory(display_name="Jo Smith", erased_at=timezone.now())
    merged = CustomerFactory(display_name="Jo Smith", merged_into=live)
    shared_phone(live, erased, merged)

    assert duplicates.duplicate_pairs() == []


def test_the_duplicates_page_lists_pairs_with_a_merge_link(supervisor_client):
    a, b = CustomerFactory(display_name="Jo Smith"), CustomerFactory(display_name="Jo Smith")
    shared_phone(a, b)

    response = supervisor_client.get("/admin/crm/customer/duplicates/")

    assert response.status_code == 200
    assert f"/admin/crm/customer/{a.pk}/merge/{b.pk}/" in response.content.decode()


def test_the_merge_preview_shows_what_will_move_and_changes_nothing(supervisor_client):
    survivor, duplicate = make_person("Jo Smith", 1).customer, make_person("Jo Smith", 2).customer

    response = supervisor_client.get(f"/admin/crm/customer/{survivor.pk}/merge/{duplicate.pk}/")

    assert response.status_code == 200
    counts = response.context["preview"]["counts"]
    assert counts["interactions"] == 2 and counts["identities"] == 3 and counts["feedback"] == 1
    assert counts["recognitions"] == 1 and counts["follow_ups"] == 1 and counts["cases"] == 1
    duplicate.refresh_from_db()
    assert duplicate.merged_into is None


def test_confirming_the_merge_in_the_admin_merges_and_opens_the_survivor(supervisor_client, sam):
    survivor, duplicate = make_person("Jo Smith", 1).customer, make_person("Jo Smith", 2).customer

    response = supervisor_client.post(f"/admin/crm/customer/{survivor.pk}/merge/{duplicate.pk}/")

    assert response.status_code == 302 and response.url == f"/admin/crm/customer/{survivor.pk}/360/"
    duplicate.refresh_from_db()
    assert duplicate.merged_into == survivor
    assert models.MergeRecord.objects.get(duplicate=duplicate).merged_by == sam


def test_a_self_merge_in_the_admin_is_refused_with_a_message(supervisor_client, jim):
    response = supervisor_client.get(f"/admin/crm/customer/{jim.pk}/merge/{jim.pk}/", follow=True)

    assert "cannot be merged into itself" in response.content.decode()
    assert not models.MergeRecord.objects.exists()


def test_the_export_button_downloads_everything_as_json_and_is_audited(supervisor_client, sam):
    person = make_person("Jo Smith", 1)

    response = supervisor_client.get(f"/admin/crm/customer/{person.customer.pk}/export/")

    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    body = json.loads(response.content)
    assert {i["normalized"] for i in body["identities"]} == {person.phone, person.email, person.account}
    assert body["recognitions"][0]["quote"] == "secret-quote-1"
    assert models.AccessAudit.objects.filter(action="export", actor=sam).count() == 1


def test_erasing_from_the_admin_needs_a_confirmation_post(supervisor_client):
    person = make_person("Jo Smith", 1)
    url = f"/admin/crm/customer/{person.customer.pk}/erase/"

    assert supervisor_client.get(url).status_code == 200
    person.customer.refresh_from_db()
    assert person.customer.erased_at is None

    supervisor_client.post(url)

    person.customer.refresh_from_db()
    assert person.customer.erased_at is not None and person.customer.display_name == ""


def test_the_merge_action_on_two_selected_customers_opens_the_preview(supervisor_client):
    older, newer = CustomerFactory(display_name="Jo Smith"), CustomerFactory(display_name="Jo Smith")

    response = supervisor_client.post(
        "/admin/crm/customer/", {"action": "merge_selected", "_selected_action": [str(newer.pk), str(older.pk)]}
    )

    assert response.status_code == 302 and response.url == f"/admin/crm/customer/{older.pk}/merge/{newer.pk}/"
