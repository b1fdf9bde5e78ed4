import json

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from crm import models, privacy, reports
from crm.services import customers_matching
from tests.factories import InteractionFactory
from tests.fixtures.admin import make_person

pytestmark = pytest.mark.django_db


def report_figures() -> dict:
    period = reports.Period.last_weeks(8)
    return {
        "quality": reports.contact_quality_by_week(period),
        "satisfaction": reports.satisfaction_by_week(period),
        "reasons": reports.top_reasons(period),
        "recognitions": reports.recognitions_per_agent(period),
        "totals": reports.totals(period),
    }


@pytest.fixture
def person_with_duplicate(sam):
    """Maria, into whom an earlier record of her (another phone, another account) was merged."""
    person = make_person("Maria Garcia", 1)
    twin = make_person("Mary Garcia", 2)
    privacy.customer_merge(actor=sam, survivor=person.customer, duplicate_id=twin.customer.pk)
    # a contact from an unknown caller who gave her phone, never linked to her
    InteractionFactory(customer=None, identifiers={"phone": person.phone}, summary="secret-unlinked")
    return person, twin


def test_after_erasure_no_former_identifier_or_name_finds_the_customer(
    supervisor_api, agent_api, person_with_duplicate
):
    person, twin = person_with_duplicate

    response = supervisor_api.delete(f"/api/v1/customers/{person.customer.pk}")

    assert response.status_code == 204
    for who in (person, twin):
        for kind, value in (("phone", who.phone), ("email", who.email), ("account", who.account)):
            assert customers_matching({kind: value}) == []
            assert agent_api.get("/api/v1/customers", {"search": value}).json()["results"] == []
            lookup = agent_api.post("/api/v1/context/lookup", {kind: value}, format="json").json()
            assert lookup["match"] == "none" and lookup["customer"] is None
        for name in (who.customer.display_name, who.customer.preferred_name):
            assert agent_api.get("/api/v1/customers", {"search": name}).json()["results"] == []
    assert agent_api.get(f"/api/v1/customers/{person.customer.pk}").status_code == 404
    assert agent_api.get(f"/api/v1/customers/{twin.customer.pk}").status_code == 404


def test_the_export_after_erasure_holds_no_personal_field(supervisor_api, person_with_duplicate):
    person, twin = person_with_duplicate
    before = supervisor_api.get(f"/api/v1/customers/{person.customer.pk}/export").content.decode()
    assert all(secret in before for secret in person.secrets + twin.secrets)

    supervisor_api.delete(f"/api/v1/customers/{person.customer.pk}")
    export = supervisor_api.get(f"/api/v1/customers/{person.customer.pk}/export")

    assert export.status_code == 200
    text = export.content.decode()
    leaked = [s for s in person.secrets + twin.secrets if s in text]
    assert leaked == []
    body = export.json()
    assert body["identities"] == [] and body["facts"] == [] and body["preferences"] == []
    assert body["customer"]["display_name"] == "" and body["customer"]["erased_at"]
    assert len(body["interactions"]) == 4  # the rows stay, anonymous


def test_nothing_personal_is_left_anywhere_in_the_database(sam, person_with_duplicate):
    person, twin = person_with_duplicate

    privacy.customer_erase(actor=sam, customer=person.customer)

    tables = [
        models.Customer, models.Identity, models.Preference, models.Fact, models.Interaction, models.Case,
        models.Feedback, models.Recognition, models.FollowUp, models.AccessAudit, models.MergeRecord,
    ]  # fmt: skip
    dump = json.dumps([list(model.objects.values()) for model in tables], cls=DjangoJSONEncoder)
    assert [s for s in person.secrets + twin.secrets + ["secret-unlinked"] if s in dump] == []


def test_report_aggregates_are_unchanged_by_erasure(sam, person_with_duplicate):
    person, _ = person_with_duplicate
    make_person("Someone Else", 3)
    before = report_figures()
    assert before["totals"]["contacts"] == 6 and before["recognitions"][0]["count"] >= 1

    privacy.customer_erase(actor=sam, customer=person.customer)

    assert report_figures() == before


def test_the_erasure_is_audited_without_the_erased_data(supervisor_api, sam, person_with_duplicate):
    person, twin = person_with_duplicate

    supervisor_api.delete(f"/api/v1/customers/{person.customer.pk}")

    audit = models.AccessAudit.objects.get(action="erase")
    assert audit.actor == sam and audit.customer_id == person.customer.pk
    assert audit.detail["counts"]["identities"] == 6
    assert [s for s in person.secrets + twin.secrets if s in json.dumps(audit.detail)] == []


def test_erasing_twice_is_404_and_changes_nothing(supervisor_api, jim):
    supervisor_api.delete(f"/api/v1/customers/{jim.pk}")
    erased_at = models.Customer.objects.get(pk=jim.pk).erased_at

    response = supervisor_api.delete(f"/api/v1/customers/{jim.pk}")

    assert response.status_code == 404
    assert models.Customer.objects.get(pk=jim.pk).erased_at == erased_at
    assert models.AccessAudit.objects.filter(action="erase").count() == 1


def test_agents_cannot_erase_or_export(agent_api, jim):
    assert agent_api.delete(f"/api/v1/customers/{jim.pk}").status_code == 403
    assert agent_api.get(f"/api/v1/customers/{jim.pk}/export").status_code == 403
    jim.refresh_from_db()
    assert jim.erased_at is None and jim.identities.count() == 3


def test_the_export_is_audited(supervisor_api, sam, jim):
    supervisor_api.get(f"/api/v1/customers/{jim.pk}/export")

    assert models.AccessAudit.objects.filter(action="export", actor=sam, customer=jim).count() == 1


def test_erasing_a_merged_away_id_erases_the_person_it_was_merged_into(supervisor_api, sam, jim):
    twin = make_person("James Okafor", 5).customer
    privacy.customer_merge(actor=sam, survivor=jim, duplicate_id=twin.pk)

    supervisor_api.delete(f"/api/v1/customers/{twin.pk}")

    jim.refresh_from_db()
    assert jim.erased_at is not None and jim.erased_at <= timezone.now()


def test_erasure_blanks_staff_notifications_that_quote_the_customer(sam, alice, jim):
    from crm.feedback import feedback_process
    from crm.models import Feedback, Notification, StaffProfile

    # given: praise from Jim for Alice, processed, so Alice and her supervisor were told his words
    StaffProfile.objects.create(user=alice, supervisor=sam)
    contact = InteractionFactory(customer=jim, agent=alice)
    feedback = Feedback.objects.create(
        customer=jim, interaction=contact, rating=5, text="Alice fixed my router, wonderful", received_at=timezone.now()
    )
    feedback_process(str(feedback.pk))
    assert Notification.objects.filter(body__contains="wonderful").count() == 2

    # when
    privacy.customer_erase(actor=sam, customer=jim)

    # then
    assert not Notification.objects.filter(body__contains="wonderful").exists()
    assert Notification.objects.filter(recipient__in=[alice, sam]).count() == 2
