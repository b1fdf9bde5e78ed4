import datetime as dt

import pytest
from django.utils import timezone

from crm import models, privacy
from crm.exceptions import DomainError
from crm.services import customers_matching
from tests.factories import CustomerFactory, IdentityFactory
from tests.fixtures.admin import make_person

pytestmark = pytest.mark.django_db

RELATED = {
    "identities": models.Identity,
    "preferences": models.Preference,
    "facts": models.Fact,
    "interactions": models.Interaction,
    "cases": models.Case,
    "feedback": models.Feedback,
    "follow_ups": models.FollowUp,
    "recurring_problems": models.RecurringProblem,
    "audit": models.AccessAudit,
}


def owned_by(customer) -> dict[str, int]:
    return {name: model.objects.filter(customer=customer).count() for name, model in RELATED.items()}


def test_merge_moves_every_kind_of_related_row_and_loses_nothing(supervisor_api, sam):
    # given two records of one person, each with one of every kind of related row
    survivor = make_person("Maria Garcia", 1).customer
    duplicate = make_person("Maria Garcia", 2).customer
    before_s, before_d = owned_by(survivor), owned_by(duplicate)
    totals = {name: model.objects.count() for name, model in RELATED.items()}
    recognitions = models.Recognition.objects.count()

    # when
    response = supervisor_api.post(
        f"/api/v1/customers/{survivor.pk}/merge", {"duplicate_id": str(duplicate.pk)}, format="json"
    )

    # then every row now belongs to the survivor, and no table lost a row
    assert response.status_code == 200, response.json()
    after = owned_by(survivor)
    for name in RELATED:
        expected = before_s[name] + before_d[name] + (1 if name == "audit" else 0)  # + the merge's own audit row
        assert after[name] == expected, name
    assert owned_by(duplicate) == dict.fromkeys(RELATED, 0)
    assert {name: model.objects.count() for name, model in RELATED.items()} == {
        **totals,
        "audit": totals["audit"] + 1,
    }
    assert models.Recognition.objects.count() == recognitions
    duplicate.refresh_from_db()
    assert duplicate.merged_into_id == survivor.pk


def test_the_merge_record_lists_every_moved_row_so_it_can_be_reversed(sam):
    survivor = make_person("Maria Garcia", 1).customer
    duplicate = make_person("Maria Garcia", 2).customer
    expected = {
        "interactions": {str(pk) for pk in duplicate.interactions.values_list("pk", flat=True)},
        "cases": {str(pk) for pk in duplicate.cases.values_list("pk", flat=True)},
        "feedback": {str(pk) for pk in duplicate.feedback.values_list("pk", flat=True)},
        "follow_ups": {str(pk) for pk in duplicate.follow_ups.values_list("pk", flat=True)},
        "identities": set(duplicate.identities.values_list("pk", flat=True)),
        "facts": set(duplicate.facts.values_list("pk", flat=True)),
        "preferences": set(duplicate.preferences.values_list("pk", flat=True)),
        "audit": set(duplicate.audit.values_list("pk", flat=True)),
        "recurring_problems": set(duplicate.recurring_problems.values_list("pk", flat=True)),
    }

    record = privacy.customer_merge(actor=sam, survivor=survivor, duplicate_id=duplicate.pk)

    record.refresh_from_db()
    for name, ids in expected.items():
        assert set(record.moved[name]) == ids, name
    assert len(record.moved["recognitions"]) == 1
    audit = models.AccessAudit.objects.get(action="merge", customer=survivor)
    assert audit.actor == sam
    assert audit.detail["merge_record"] == record.pk
    assert audit.detail["duplicate"] == str(duplicate.pk)
    assert "Maria" not in str(audit.detail) and "Maria" not in str(record.moved)


def test_after_a_merge_either_former_phone_or_account_finds_the_survivor(supervisor_api, agent_api):
    first, second = make_person("Ana Lopez", 1), make_person("Ana López", 2)

    supervisor_api.post(
        f"/api/v1/customers/{first.customer.pk}/merge", {"duplicate_id": str(second.customer.pk)}, format="json"
    )

    for person in (first, second):
        assert customers_matching({"phone": person.phone}) == [first.customer]
        assert customers_matching({"account": person.account}) == [first.customer]
        lookup = agent_api.post("/api/v1/context/lookup", {"account": person.account}, format="json").json()
        assert lookup["match"] == "unique" and lookup["customer"]["id"] == str(first.customer.pk)
        search = agent_api.get("/api/v1/customers", {"search": person.phone}).json()["results"]
        assert [c["id"] for c in search] == [str(first.customer.pk)]
    # the duplicate's own id resolves to the survivor too
    response = agent_api.get(f"/api/v1/customers/{second.customer.pk}")
    assert response.json()["id"] == str(first.customer.pk)


def test_a_shared_identifier_is_kept_once_and_stays_verified(sam):
    survivor, duplicate = CustomerFactory(), CustomerFactory()
    IdentityFactory(customer=survivor, kind="email", value="x@example.com", normalized="x@example.com")
    verified = timezone.now() - dt.timedelta(days=3)
    IdentityFactory(
        customer=duplicate, kind="email", value="X@example.com", normalized="x@example.com", verified_at=verified
    )

    record = privacy.customer_merge(actor=sam, survivor=survivor, duplicate_id=duplicate.pk)

    identity = models.Identity.objects.get(normalized="x@example.com")
    assert identity.customer == survivor and identity.verified_at == verified
    assert record.moved["identities_folded"][0]["into"] == identity.pk


def test_conflicting_preferences_newest_wins_and_the_older_is_kept_as_history(sam):
    now = timezone.now()
    survivor, duplicate = CustomerFactory(), CustomerFactory()
    old = models.Preference.objects.create(
        customer=survivor, key="channel", value="sms", recorded_at=now - dt.timedelta(days=9)
    )
    new = models.Preference.objects.create(customer=duplicate, key="channel", value="email", recorded_at=now)
    kept = models.Fact.objects.create(customer=survivor, key="car", value="Golf", recorded_at=now)
    stale = models.Fact.objects.create(
        customer=duplicate, key="car", value="Polo", recorded_at=now - dt.timedelta(days=30)
    )

    preview = privacy.merge_preview(survivor=survivor, duplicate=duplicate)
    record = privacy.customer_merge(actor=sam, survivor=survivor, duplicate_id=duplicate.pk)

    assert {(c["key"], c["winner"]) for c in preview["conflicts"]} == {("channel", "duplicate"), ("car", "survivor")}
    old.refresh_from_db(), new.refresh_from_db(), kept.refresh_from_db(), stale.refresh_from_db()
    assert (new.customer, new.is_current) == (survivor, True)
    assert (old.customer, old.is_current) == (survivor, False)
    assert (kept.is_current, stale.is_current, stale.customer) == (True, False, survivor)
    assert record.moved["preferences_demoted"] == [old.pk] or record.moved["preferences_demoted"] == [str(old.pk)]
    assert models.Preference.objects.filter(customer=survivor, key="channel", is_current=True).get().value == "email"


def test_an_open_recurring_problem_for_the_same_reason_folds_into_the_survivors(sam):
    survivor, duplicate = make_person("Bo Li", 1).customer, make_person("Bo Li", 2).customer

    record = privacy.customer_merge(actor=sam, survivor=survivor, duplicate_id=duplicate.pk)

    open_ = models.RecurringProblem.objects.get(customer=survivor, status="open")
    assert open_.interactions.count() == 4 and open_.contact_count == 4
    assert models.RecurringProblem.objects.filter(customer=survivor, status="resolved").count() == 1
    assert record.moved["recurring_problems_folded"][0]["into"] == open_.pk


def test_customers_merged_earlier_into_the_duplicate_follow_it_to_the_survivor(sam):
    survivor, duplicate, older = CustomerFactory(), CustomerFactory(), CustomerFactory()
    privacy.customer_merge(actor=sam, survivor=duplicate, duplicate_id=older.pk)

    privacy.customer_merge(actor=sam, survivor=survivor, duplicate_id=duplicate.pk)

    older.refresh_from_db()
    assert older.merged_into == survivor


def test_merging_a_customer_into_itself_is_refused_with_a_clear_message(supervisor_api, jim):
    response = supervisor_api.post(f"/api/v1/customers/{jim.pk}/merge", {"duplicate_id": str(jim.pk)}, format="json")

    assert response.status_code == 400
    assert response.json()["duplicate_id"] == ["A customer cannot be merged into itself."]
    assert not models.MergeRecord.objects.exists()


def test_merging_into_an_erased_customer_is_refused_with_a_clear_message(sam, jim):
    erased = CustomerFactory(erased_at=timezone.now())
    interactions = jim.interactions.count()

    with pytest.raises(DomainError, match="surviving customer has been erased"):
        privacy.customer_merge(actor=sam, survivor=erased, duplicate_id=jim.pk)

    jim.refresh_from_db()
    assert jim.merged_into is None and jim.interactions.count() == interactions


def test_merging_an_erased_duplicate_is_refused_with_a_clear_message(supervisor_api, jim):
    erased = CustomerFactory(erased_at=timezone.now())

    response = supervisor_api.post(f"/api/v1/customers/{jim.pk}/merge", {"duplicate_id": str(erased.pk)}, format="json")

    assert response.status_code == 400
    assert "erased" in response.json()["detail"]
    assert not models.MergeRecord.objects.exists()


def test_merging_a_duplicate_twice_is_refused(sam, jim):
    duplicate = CustomerFactory()
    privacy.customer_merge(actor=sam, survivor=jim, duplicate_id=duplicate.pk)

    with pytest.raises(DomainError, match="already merged"):
        privacy.customer_merge(actor=sam, survivor=jim, duplicate_id=duplicate.pk)


def test_an_unknown_duplicate_is_404(supervisor_api, jim):
    response = supervisor_api.post(
        f"/api/v1/customers/{jim.pk}/merge", {"duplicate_id": "00000000-0000-0000-0000-000000000001"}, format="json"
    )
    assert response.status_code == 404


def test_agents_cannot_merge(agent_api, jim):
    duplicate = CustomerFactory()

    response = agent_api.post(f"/api/v1/customers/{jim.pk}/merge", {"duplicate_id": str(duplicate.pk)}, format="json")

    assert response.status_code == 403
    duplicate.refresh_from_db()
    assert duplicate.merged_into is None
