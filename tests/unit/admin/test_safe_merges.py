"""Safe merges (issue 13): unmerge round trip, the verified-account block, conflicts, "not a duplicate"."""

import pytest
from django.utils import timezone

from crm import duplicates, merges, models, privacy
from crm.exceptions import Conflict
from crm.services import customers_matching
from tests.factories import CustomerFactory, IdentityFactory, InteractionFactory
from tests.fixtures.admin import make_person

pytestmark = pytest.mark.django_db

OWNED = {
    "identities": models.Identity,
    "preferences": models.Preference,
    "facts": models.Fact,
    "interactions": models.Interaction,
    "cases": models.Case,
    "feedback": models.Feedback,
    "follow_ups": models.FollowUp,
    "recurring_problems": models.RecurringProblem,
}


def snapshot(customer) -> dict:
    """What a supervisor would compare on the 360: counts, identifiers, current values, problems, audit."""
    customer.refresh_from_db()
    return {
        "counts": {name: model.objects.filter(customer=customer).count() for name, model in OWNED.items()},
        "identities": sorted(
            models.Identity.objects.filter(customer=customer).values_list("kind", "normalized", "verified_at")
        ),
        "current": sorted(
            (m.__name__, k, v)
            for m in (models.Preference, models.Fact)
            for k, v in m.objects.filter(customer=customer, is_current=True).values_list("key", "value")
        ),
        "problems": sorted(
            models.RecurringProblem.objects.filter(customer=customer).values_list(
                "status", "contact_count", "first_contact_at", "last_contact_at"
            )
        ),
        "audit": models.AccessAudit.objects.filter(customer=customer).exclude(action__in=["merge", "unmerge"]).count(),
        "fields": (customer.display_name, customer.preferred_name, customer.language, customer.merged_into_id),
    }


@pytest.fixture
def pair():
    """One person entered twice: a shared phone (folded in a merge), the same preference key, one open
    recurring problem each (folded), and the survivor with no language (filled by the merge)."""
    survivor = make_person("Maria Garcia", 1).customer
    duplicate_person = make_person("Maria García", 2)
    duplicate = duplicate_person.customer
    IdentityFactory(customer=duplicate, kind="phone", value="+12125550001", normalized="+12125550001")
    models.Customer.objects.filter(pk=survivor.pk).update(language="")
    survivor.refresh_from_db()
    return survivor, duplicate, duplicate_person


def test_unmerge_round_trip_restores_both_customers_exactly_and_the_survivor_keeps_what_it_learned(
    supervisor_api, pair, sam
):
    survivor, duplicate, person = pair
    before_s, before_d = snapshot(survivor), snapshot(duplicate)

    merged = supervisor_api.post(
        f"/api/v1/customers/{survivor.pk}/merge", {"duplicate_id": str(duplicate.pk)}, format="json"
    )
    assert merged.status_code == 200, merged.content
    assert snapshot(duplicate)["counts"]["interactions"] == 0
    # the survivor learns something while the two are one
    learned = InteractionFactory(customer=survivor, summary="called after the merge")
    models.Preference.objects.create(
        customer=survivor, key="preferred_channel", value="sms", recorded_at=timezone.now()
    )

    undone = supervisor_api.post(
        f"/api/v1/customers/{survivor.pk}/unmerge", {"merge_id": merged.json()["merge_id"]}, format="json"
    )

    assert undone.status_code == 200, undone.content
    assert undone.json()["restored"] == str(duplicate.pk)
    assert snapshot(duplicate) == before_d
    after_s = snapshot(survivor)
    expected = dict(before_s)
    expected["counts"] = {**before_s["counts"], "interactions": before_s["counts"]["interactions"] + 1}
    expected["counts"]["preferences"] += 1
    expected["current"] = sorted([*before_s["current"], ("Preference", "preferred_channel", "sms")])
    assert after_s == expected
    assert models.Interaction.objects.get(pk=learned.pk).customer == survivor
    # the duplicate's account finds the duplicate again; the shared phone finds both
    assert customers_matching({"account": person.account}) == [duplicate]
    assert set(customers_matching({"phone": "+12125550001"})) == {survivor, duplicate}
    record = models.MergeRecord.objects.get()
    assert record.undone_by == sam and record.undone_at is not None
    assert set(models.AccessAudit.objects.filter(action="unmerge").values_list("customer_id", flat=True)) == {
        survivor.pk,
        duplicate.pk,
    }


def test_an_undone_merge_cannot_be_undone_twice_and_the_pair_can_be_merged_again(supervisor_api, pair):
    survivor, duplicate, _ = pair
    record = privacy.customer_merge(actor=None, survivor=survivor, duplicate_id=duplicate.pk)
    url = f"/api/v1/customers/{survivor.pk}/unmerge"
    assert supervisor_api.post(url, {"merge_id": record.pk}, format="json").status_code == 200
    before = snapshot(duplicate)

    again = supervisor_api.post(url, {"merge_id": record.pk}, format="json")

    assert again.status_code == 409 and snapshot(duplicate) == before
    survivor.refresh_from_db()
    second = privacy.customer_merge(actor=None, survivor=survivor, duplicate_id=duplicate.pk)
    assert second.pk != record.pk


@pytest.mark.parametrize(
    ("body", "status"),
    [({"merge_id": 999999}, 404), ({"merge_id": "x"}, 400), ({}, 400), ({"merge_id": 1, "extra": 1}, 400)],
)
def test_unmerge_with_bad_input_answers_4xx_and_changes_nothing(supervisor_api, pair, body, status):
    survivor, duplicate, _ = pair
    privacy.customer_merge(actor=None, survivor=survivor, duplicate_id=duplicate.pk)
    before = snapshot(survivor)

    response = supervisor_api.post(f"/api/v1/customers/{survivor.pk}/unmerge", body, format="json")

    assert response.status_code == status
    assert snapshot(survivor) == before


def test_only_supervisors_unmerge(agent_api, pair):
    survivor, duplicate, _ = pair
    record = privacy.customer_merge(actor=None, survivor=survivor, duplicate_id=duplicate.pk)
    response = agent_api.post(f"/api/v1/customers/{survivor.pk}/unmerge", {"merge_id": record.pk}, format="json")
    assert response.status_code == 403
    assert models.MergeRecord.objects.get().undone_at is None


def verified_accounts():
    now = timezone.now()
    rosa = CustomerFactory(display_name="Rosa Walsh", tier="vip")
    nils = CustomerFactory(display_name="Nils Walsh", tier="standard")
    IdentityFactory(customer=rosa, kind="account", value="AC1", normalized="AC1", verified_at=now)
    IdentityFactory(customer=nils, kind="account", value="AC2", normalized="AC2", verified_at=now)
    for c in (rosa, nils):
        IdentityFactory(customer=c, kind="phone", value="+12125550777", normalized="+12125550777")
    models.Preference.objects.create(customer=rosa, key="marketing_opt_in", value="yes", recorded_at=now)
    return rosa, nils


def test_a_merge_of_two_verified_accounts_is_refused_without_a_reason_and_goes_ahead_with_one(supervisor_api):
    rosa, nils = verified_accounts()
    url = f"/api/v1/customers/{rosa.pk}/merge"

    refused = supervisor_api.post(url, {"duplicate_id": str(nils.pk)}, format="json")

    assert refused.status_code == 409 and "reason" in refused.json()
    assert models.Identity.objects.filter(customer=nils).count() == 2 and not models.MergeRecord.objects.exists()
    done = supervisor_api.post(url, {"duplicate_id": str(nils.pk), "reason": "Confirmed on the phone"}, format="json")
    assert done.status_code == 200
    assert models.MergeRecord.objects.get().reason == "Confirmed on the phone"


def test_the_preview_lists_every_differing_identifier_tier_and_consent():
    rosa, nils = verified_accounts()

    preview = privacy.merge_preview(survivor=rosa, duplicate=nils)

    assert preview["blocked"] is True
    found = {(c["kind"], c["key"]) for c in preview["other_conflicts"]}
    assert found == {("identifier", "account"), ("tier", "tier"), ("consent", "marketing_opt_in")}
    with pytest.raises(Conflict):
        privacy.customer_merge(actor=None, survivor=rosa, duplicate_id=nils.pk)


def test_not_a_duplicate_is_remembered_audited_and_reversible(supervisor_client, sam):
    rosa, nils = verified_accounts()
    assert len(duplicates.duplicate_pairs()) == 1

    supervisor_client.post(f"/admin/crm/customer/{nils.pk}/not-duplicate/{rosa.pk}/")

    assert duplicates.duplicate_pairs() == []
    page = supervisor_client.get("/admin/crm/customer/duplicates/").content.decode()
    assert "Rosa Walsh" in page and "Undo" in page
    assert models.AccessAudit.objects.filter(action="dismiss", actor=sam).count() == 2
    dismissal = models.DuplicateDismissal.objects.get()
    supervisor_client.post(f"/admin/crm/customer/dismissals/{dismissal.pk}/undo/")
    assert len(duplicates.duplicate_pairs()) == 1
    assert models.AccessAudit.objects.filter(action="dismiss").count() == 4
    assert merges.duplicate_dismissal_undo(actor=sam, dismissal_id=dismissal.pk) is False


def test_the_admin_undo_button_unmerges_and_opens_the_restored_customer(supervisor_client, pair):
    survivor, duplicate, _ = pair
    record = privacy.customer_merge(actor=None, survivor=survivor, duplicate_id=duplicate.pk)
    page = supervisor_client.get(f"/admin/crm/customer/{survivor.pk}/360/").content.decode()
    url = f"/admin/crm/customer/{survivor.pk}/unmerge/{record.pk}/"
    assert url in page

    response = supervisor_client.post(url)

    assert response.status_code == 302 and str(duplicate.pk) in response.url
    duplicate.refresh_from_db()
    assert duplicate.merged_into_id is None


def test_unmerge_moves_back_the_same_kinds_the_merge_moves():
    assert merges.MOVED_BACK == privacy.MOVED_WHOLESALE
