"""Bulk import: matching, idempotency, every kind of bad row, dry runs, the API and the round trip.

Runs on SQLite (make test-sqlite) and on PostgreSQL (make test) alike.
"""

from __future__ import annotations

import csv
import datetime as dt
import gc
import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from crm import imports
from crm.models import (
    AccessAudit,
    AuditAction,
    Customer,
    Fact,
    Identity,
    ImportJob,
    Interaction,
    Preference,
)
from tests.factories import CustomerFactory, IdentityFactory, InteractionFactory

pytestmark = pytest.mark.django_db

CUSTOMERS_CSV = """\
external_ref,display_name,preferred_name,tier,phone,email,account,verified,fact:router_model,pref:contact_channel
C-1,Ada Lovelace,Ada,vip,+44 20 7946 0001;+44 7911 123456,ada@example.com,AC-1001,AC-1001,TP-Link AX55,email
C-2,Charles Babbage,,standard,(212) 555-0102,charles@example.com,AC-1002,,,phone
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def run(path: Path, kind: str = "customers", *, actor=None, dry_run: bool = False) -> ImportJob:
    job = imports.import_job_create(actor=actor, kind=kind, path=path, file_name=path.name, dry_run=dry_run)
    return imports.import_run(job.pk)


def counts(job: ImportJob) -> tuple[int, int, int, int]:
    return job.created, job.updated, job.unchanged, job.rejected


def test_customers_are_created_with_identities_facts_and_preferences_from_the_import(tmp_path, sam):
    job = run(write(tmp_path, "crm.csv", CUSTOMERS_CSV), actor=sam)

    assert job.status == "done"
    assert counts(job) == (2, 0, 0, 0)
    ada = Customer.objects.get(external_ref="C-1")
    assert (ada.display_name, ada.preferred_name, ada.tier) == ("Ada Lovelace", "Ada", "vip")
    assert set(ada.identities.values_list("kind", "normalized")) == {
        ("phone", "+442079460001"),
        ("phone", "+447911123456"),
        ("email", "ada@example.com"),
        ("account", "AC1001"),
    }
    assert ada.identities.get(kind="account").verified_at is not None
    assert ada.identities.get(kind="email").verified_at is None
    fact = Fact.objects.get(customer=ada, key="router_model")
    assert (fact.value, fact.import_ref, fact.recorded_by) == ("TP-Link AX55", "crm.csv:2", sam)
    assert Preference.objects.get(customer=ada, key="contact_channel", is_current=True).value == "email"
    audit = AccessAudit.objects.filter(action=AuditAction.CREATE, actor=sam)
    assert set(audit.values_list("customer__external_ref", flat=True)) == {"C-1", "C-2"}
    assert all(a.detail["import"] == str(job.pk) for a in audit)


def test_importing_the_same_file_twice_changes_nothing_the_second_time(tmp_path):
    path = write(tmp_path, "crm.csv", CUSTOMERS_CSV)
    run(path)
    before = (Customer.objects.count(), Identity.objects.count(), Fact.objects.count(), Preference.objects.count())
    audit_before = AccessAudit.objects.count()

    again = run(path)

    assert counts(again) == (0, 0, 2, 0)
    assert (
        Customer.objects.count(),
        Identity.objects.count(),
        Fact.objects.count(),
        Preference.objects.count(),
    ) == before
    assert AccessAudit.objects.count() == audit_before


def test_a_file_imported_again_leaves_what_agents_recorded_since_and_applies_what_the_source_changed(tmp_path, sam):
    """A row identical to the one last imported for its customer is unchanged: the file does not
    overwrite what agents recorded after it. A row the source system changed is applied whole."""
    from crm.services import fact_record

    path = write(tmp_path, "crm.csv", CUSTOMERS_CSV)
    run(path)
    ada = Customer.objects.get(external_ref="C-1")
    fact_record(customer=ada, key="router_model", value="Hub 6", actor=sam)  # the caller swapped routers
    Customer.objects.filter(pk=ada.pk).update(display_name="Ada King")  # and a supervisor corrected her name

    again = run(path)

    assert counts(again) == (0, 0, 2, 0)
    ada.refresh_from_db()
    assert ada.display_name == "Ada King"
    assert Fact.objects.get(customer=ada, is_current=True).value == "Hub 6"

    changed = run(write(tmp_path, "crm.csv", CUSTOMERS_CSV.replace(",vip,", ",standard,")))

    assert counts(changed) == (0, 1, 1, 0)
    ada.refresh_from_db()
    assert (ada.display_name, ada.tier) == ("Ada Lovelace", "standard")
    assert Fact.objects.get(customer=ada, is_current=True).value == "TP-Link AX55"


def test_a_customer_imported_before_digests_were_kept_is_compared_in_full_then_given_its_rows_digest(tmp_path):
    path = write(tmp_path, "crm.csv", CUSTOMERS_CSV)
    run(path)
    digests = dict(Customer.objects.values_list("external_ref", "import_digest"))
    Customer.objects.update(import_digest=None)  # as migration 0024 leaves every customer
    updated_at = dict(Customer.objects.values_list("external_ref", "updated_at"))

    again = run(path)

    assert counts(again) == (0, 0, 2, 0)
    assert {ref: bytes(d) for ref, d in Customer.objects.values_list("external_ref", "import_digest")} == {
        ref: bytes(d) for ref, d in digests.items()
    }
    assert dict(Customer.objects.values_list("external_ref", "updated_at")) == updated_at  # not "changed"


def test_a_file_naming_a_customer_twice_ends_as_the_rows_say_each_time_it_is_imported(tmp_path):
    """The digest skip never lets an earlier row of the file change a customer last: a row whose
    customer an earlier row (by the same external_ref, or by account) may have changed is applied."""
    grace = CustomerFactory(display_name="Grace Hopper", external_ref="G-1")
    IdentityFactory(customer=grace, kind="account", value="AC-77", normalized="AC77")
    path = write(
        tmp_path,
        "twice.csv",
        "external_ref,display_name,tier,account,fact:team\n"
        "G-2,Ann Other,standard,,\n"  # line 2
        "G-2,Ann Other,vip,,Yale\n"  # line 3
        "G-1,Grace Hopper,vip,,Navy\n"  # line 4
        ",,standard,AC-77,\n"  # line 5: the same customer, by account
        "G-1,Grace Hopper,vip,,Navy\n",  # line 6: line 4 again
    )

    def state() -> tuple[list, list]:
        return (
            sorted(Customer.objects.values_list("external_ref", "display_name", "tier")),
            sorted(Fact.objects.values_list("customer__external_ref", "value", "is_current")),
        )

    first = run(path)
    after_first = state()
    again = run(path)

    assert counts(first) == (1, 4, 0, 0)
    assert after_first == (
        [("G-1", "Grace Hopper", "vip"), ("G-2", "Ann Other", "vip")],
        [("G-1", "Navy", True), ("G-2", "Yale", True)],
    )
    # Line 2 differs from line 3, G-2's last row, and line 3 follows it; line 4 is as last imported;
    # line 5 changes Grace (by account), so line 6 is applied after it: as the full comparison says.
    assert counts(again) == (0, 4, 1, 0)
    assert state() == after_first


@pytest.mark.parametrize("batch", [1, 2])
def test_a_row_as_last_imported_is_unchanged_whatever_the_batches(tmp_path, settings, batch):
    """Line 3 comes after an opaque row (Bob, by account): in a batch of one the reading thread
    skips it, in a batch of two its batch decides. Either way Ann's corrected name stands."""
    settings.CRM_IMPORT_BATCH = batch
    run(write(tmp_path, "a.csv", "external_ref,display_name,account\nB-1,Bob,AC-2002\nR-1,Ann,AC-1001\n"))
    Customer.objects.filter(external_ref="R-1").update(display_name="Ann K")

    again = run(write(tmp_path, "b.csv", "external_ref,display_name,account\n,Bob,AC-2002\nR-1,Ann,AC-1001\n"))

    assert counts(again) == (0, 0, 2, 0)
    assert Customer.objects.get(external_ref="R-1").display_name == "Ann K"


def test_a_row_read_under_other_rules_is_compared_in_full(tmp_path, settings):
    """The digest is keyed by the rules a row is read with: a JSON NaN is not a null, and a
    national number read in another default region is checked again."""
    settings.CRM_DEFAULT_PHONE_REGION = "GB"
    run(write(tmp_path, "a.csv", "external_ref,display_name,phone\nR-1,Ann,020 7946 0001\n"))
    settings.CRM_DEFAULT_PHONE_REGION = "US"

    again = run(write(tmp_path, "a.csv", "external_ref,display_name,phone\nR-1,Ann,020 7946 0001\n"))

    assert counts(again) == (0, 0, 0, 1)
    assert again.errors[0]["field"] == "phone"
    run(write(tmp_path, "b.jsonl", '{"external_ref": "R-2", "display_name": "Bo", "tier": null}\n'))
    nan = run(write(tmp_path, "c.jsonl", '{"external_ref": "R-2", "display_name": "Bo", "tier": NaN}\n'))
    assert counts(nan) == (0, 0, 0, 1)
    assert nan.errors[0]["field"] == "tier"


def test_rows_identical_to_their_last_import_are_unchanged_unless_an_earlier_row_may_change_their_customer(
    tmp_path,
):
    path = write(tmp_path, "crm.csv", CUSTOMERS_CSV)
    run(path)
    with path.open("rb") as stream:
        rows = list(imports.rows_read(stream, "csv", imports.CUSTOMER_COLUMNS))
    nobody_in_flight: tuple[list, bool] = ([], False)

    kept, unchanged, opaque = imports.rows_unchanged(rows, nobody_in_flight)
    assert (kept, unchanged, opaque) == ([], 2, False)

    kept, unchanged, _ = imports.rows_unchanged(rows, ([frozenset({("ref", "C-2")})], False))
    assert ([row.line for row, _ in kept], unchanged) == ([3], 1)  # C-2 may change in a batch in flight

    kept, unchanged, _ = imports.rows_unchanged(rows, ([frozenset()], True))
    assert ([row.line for row, _ in kept], unchanged) == ([2, 3], 0)  # so may anyone, by account

    by_account = imports.Row(9, {"account": "AC-1001", "tier": "standard"}, [])
    kept, unchanged, opaque = imports.rows_unchanged([rows[0], by_account, rows[1]], nobody_in_flight)
    assert ([row.line for row, _ in kept], unchanged, opaque) == ([9, 3], 1, True)

    survivor = CustomerFactory(display_name="Ada L.")
    Customer.objects.filter(external_ref="C-1").update(merged_into=survivor)
    kept, unchanged, opaque = imports.rows_unchanged(rows, nobody_in_flight)
    assert ([row.line for row, _ in kept], unchanged, opaque) == ([2, 3], 0, True)  # C-1 now writes to Ada L.


def test_a_row_naming_an_existing_customer_updates_it_and_keeps_the_history(tmp_path):
    run(write(tmp_path, "a.csv", CUSTOMERS_CSV))
    changed = write(
        tmp_path,
        "b.csv",
        "external_ref,email,fact:router_model,pref:contact_channel\nC-1,ada.l@example.com,Fritzbox 7590,email\n",
    )

    job = run(changed)

    assert counts(job) == (0, 1, 0, 0)
    ada = Customer.objects.get(external_ref="C-1")
    assert ada.display_name == "Ada Lovelace"  # columns left out are not blanked
    assert set(ada.identities.filter(kind="email").values_list("normalized", flat=True)) == {
        "ada@example.com",
        "ada.l@example.com",
    }
    history = list(
        Fact.objects.filter(customer=ada, key="router_model").order_by("pk").values_list("value", "is_current")
    )
    assert history == [("TP-Link AX55", False), ("Fritzbox 7590", True)]
    assert Preference.objects.filter(customer=ada, key="contact_channel").count() == 1  # unchanged: not appended


def test_a_changed_customer_field_is_saved_with_its_update_time(tmp_path):
    run(write(tmp_path, "a.csv", CUSTOMERS_CSV))
    Customer.objects.filter(external_ref="C-2").update(updated_at=timezone.now() - dt.timedelta(days=1))

    job = run(write(tmp_path, "b.csv", "external_ref,tier,preferred_name\nC-2,vip,Charlie\n"))

    assert counts(job) == (0, 1, 0, 0)
    charles = Customer.objects.get(external_ref="C-2")
    assert (charles.tier, charles.preferred_name, charles.display_name) == ("vip", "Charlie", "Charles Babbage")
    assert charles.updated_at > timezone.now() - dt.timedelta(minutes=1)


def test_every_column_of_a_changed_customer_lands_in_its_own_field(tmp_path):
    """The changed customers are written together (on PostgreSQL one UPDATE from a JSON list of
    rows): each value in its column, and the row's digest with them."""
    run(write(tmp_path, "a.csv", CUSTOMERS_CSV))
    text = "external_ref,display_name,preferred_name,language,tier\nC-2,Charles B,Charlie,fr-CA,vip\n"

    job = run(write(tmp_path, "b.csv", text))

    assert counts(job) == (0, 1, 0, 0)
    charles = Customer.objects.get(external_ref="C-2")
    fields = (charles.display_name, charles.preferred_name, charles.language, charles.tier)
    assert fields == ("Charles B", "Charlie", "fr-CA", "vip")
    assert charles.import_digest is not None and len(bytes(charles.import_digest)) == 16
    assert counts(run(write(tmp_path, "c.csv", text))) == (0, 0, 1, 0)  # the digest stored is this row's


def test_a_row_without_external_ref_is_matched_by_its_account(tmp_path):
    held = CustomerFactory(display_name="Grace Hopper")
    IdentityFactory(customer=held, kind="account", value="AC-77", normalized="AC77")

    job = run(write(tmp_path, "c.csv", "account,tier\nac 77,vip\n"))

    assert counts(job) == (0, 1, 0, 0)
    held.refresh_from_db()
    assert held.tier == "vip"
    assert Customer.objects.count() == 1


def test_a_shared_phone_never_merges_two_people_but_is_reported_as_a_possible_duplicate(tmp_path):
    """The other holder is named by the external_ref the supervisor's own files use."""
    mother = CustomerFactory(display_name="Rosa Walsh", external_ref="H-1")
    IdentityFactory(customer=mother, kind="phone", value="+12125550177", normalized="+12125550177")

    job = run(write(tmp_path, "d.csv", "external_ref,display_name,phone\nH-2,Nils Walsh,212 555 0177\n"))

    assert counts(job) == (1, 0, 0, 0)
    nils = Customer.objects.get(external_ref="H-2")
    assert nils.pk != mother.pk
    assert job.warnings == [{"line": 2, "field": "phone", "message": "Possible duplicate of H-1."}]


def test_a_customer_on_file_given_a_phone_someone_else_holds_is_warned_about_once(tmp_path):
    """Identifiers a customer already holds are not looked up again (a file imported again asks
    nothing); one that is new to them still is, even when they are named by external_ref. A holder
    without an external_ref is named by its id."""
    mother = CustomerFactory(display_name="Rosa Walsh")
    IdentityFactory(customer=mother, kind="phone", value="+12125550177", normalized="+12125550177")
    run(write(tmp_path, "a.csv", "external_ref,display_name,phone\nH-2,Nils Walsh,+12125550188\n"))
    path = write(tmp_path, "b.csv", "external_ref,phone\nH-2,+12125550188;+12125550177\n")

    job = run(path)
    again = run(path)

    assert counts(job) == (0, 1, 0, 0)
    assert job.warnings == [{"line": 2, "field": "phone", "message": f"Possible duplicate of {mother.pk}."}]
    assert counts(again) == (0, 0, 1, 0)
    assert again.warnings == []


def test_every_bad_row_is_reported_by_line_and_field_and_the_good_rows_load(tmp_path):
    other = CustomerFactory(display_name="Someone Else", external_ref="Z-1")
    IdentityFactory(customer=other, kind="account", value="AC-9999", normalized="AC9999")
    text = (
        "external_ref,display_name,phone,account,tier,shoe_size\n"
        "G-1,Good One,+12125550111,,standard,42\n"  # line 2: fine
        "B-1,Bad Phone,not a phone,,standard,\n"  # line 3
        "B-2,Bad Tier,,,platinum,\n"  # line 4
        "B-3,Stolen Account,,AC-9999,,\n"  # line 5
        "B-4,Too,Many,Fields,standard,,,\n"  # line 6: not valid CSV
        "B-5,,+12125550112,,,\n"  # line 7: a new customer without a name
        ",No Key,+12125550113,,,\n"  # line 8: nothing to match a re-import by
        'G-2,"Good, Two",+12125550114,,,\n'  # line 9: fine
    )

    job = run(write(tmp_path, "bad.csv", text))

    assert counts(job) == (2, 0, 0, 6)
    assert set(Customer.objects.values_list("external_ref", flat=True)) == {"Z-1", "G-1", "G-2"}
    assert [(e["line"], e["field"]) for e in job.errors] == [
        (3, "phone"),
        (4, "tier"),
        (5, "account"),
        (6, ""),
        (7, "display_name"),
        (8, "external_ref"),
    ]
    assert "not a phone number" in job.errors[0]["message"]
    assert job.errors[2]["message"] == "This account already belongs to another customer."
    assert job.errors[3]["message"] == "Not valid CSV: 8 fields where the header has 6."
    assert job.warnings == [{"line": 1, "field": "shoe_size", "message": "Unknown column, ignored."}]
    # The error file: the rejected lines with a reason column, ready to fix and import again.
    with open(job.error_path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["external_ref", "display_name", "phone", "account", "tier", "shoe_size", "error"]
    assert [r[0] for r in rows[1:]] == ["B-1", "B-2", "B-3", "B-4", "B-5", ""]
    assert rows[1][-1].startswith("phone: ")


def test_a_fixed_error_file_imports_cleanly(tmp_path):
    job = run(write(tmp_path, "bad.csv", "external_ref,display_name,tier\nB-2,Bad Tier,platinum\nG-1,Good,\n"))
    assert counts(job) == (1, 0, 0, 1)
    fixed = Path(job.error_path).read_text(encoding="utf-8").replace("platinum", "vip")

    again = run(write(tmp_path, "fixed.csv", fixed))

    assert counts(again) == (1, 0, 0, 0)
    assert again.warnings == []  # the reason column is known, not an unknown column
    assert Customer.objects.get(external_ref="B-2").tier == "vip"


def test_a_dry_run_validates_everything_and_writes_nothing(tmp_path):
    path = write(tmp_path, "crm.csv", CUSTOMERS_CSV + "C-3,Bad,,platinum,,,,,,\n")

    job = run(path, dry_run=True)

    assert counts(job) == (2, 0, 0, 1)
    assert job.errors[0]["line"] == 4
    assert Customer.objects.count() == 0
    assert Identity.objects.count() == 0
    assert AccessAudit.objects.count() == 0


def test_json_lines_take_lists_or_semicolons_and_report_bad_json_by_line(tmp_path):
    lines = [
        json.dumps({"external_ref": "J-1", "display_name": "Jay", "phone": ["+12125550121", "+12125550122"]}),
        "{not json",
        json.dumps(["an", "array"]),
        json.dumps({"external_ref": "J-2", "display_name": "Kay", "email": "KAY@example.com;kay2@example.com"}),
    ]

    job = run(write(tmp_path, "people.jsonl", "\n".join(lines) + "\n"))

    assert counts(job) == (2, 0, 0, 2)
    assert [(e["line"], e["field"]) for e in job.errors] == [(2, ""), (3, "")]
    assert Identity.objects.filter(customer__external_ref="J-1", kind="phone").count() == 2
    assert Identity.objects.filter(customer__external_ref="J-2", normalized="kay@example.com").exists()


INTERACTIONS_CSV = """\
external_id,customer_ref,account,channel,started_at,reason,summary,outcome,agent
X-1,C-1,,phone,2024-03-12T09:30:00Z,billing,Asked about a refund,resolved,alice
X-2,C-2,,chat,2024-03-13,technical_fault,Router drops at night,unresolved,
X-3,C-9,,phone,2024-03-14T10:00:00Z,billing,,,
X-4,C-1,,phone,2099-01-01T00:00:00Z,billing,,,
X-5,C-1,,phone,2024-03-15T10:00:00Z,no_such_reason,,,
X-6,C-1,,phone,2024-03-15T11:00:00Z,billing,,,mallory
,C-1,,phone,2024-03-15T12:00:00Z,billing,,,
X-8,,,phone,2024-03-16T12:00:00Z,billing,,,
X-9,,AC-1002,phone,2024-03-16T13:00:00Z,billing,,resolved,
"""


def test_contact_history_loads_onto_the_customers_and_bad_rows_are_reported(tmp_path, alice, sam):
    run(write(tmp_path, "crm.csv", CUSTOMERS_CSV))
    path = write(tmp_path, "contacts.csv", INTERACTIONS_CSV)

    job = run(path, "interactions", actor=sam)

    assert counts(job) == (3, 0, 0, 6)
    assert [(e["line"], e["field"]) for e in job.errors] == [
        (4, "customer_ref"),
        (5, "started_at"),
        (6, "reason"),
        (7, "agent"),
        (8, "external_id"),
        (9, "customer_ref"),
    ]
    assert job.errors[1]["message"] == "This date is in the future."
    first = Interaction.objects.get(external_id="X-1")
    assert (first.customer.external_ref, first.agent, first.reason.code, first.outcome) == (
        "C-1",
        alice,
        "billing",
        "resolved",
    )
    assert first.started_at == dt.datetime(2024, 3, 12, 9, 30, tzinfo=dt.UTC)
    assert Interaction.objects.get(external_id="X-9").customer.external_ref == "C-2"
    assert AccessAudit.objects.filter(action=AuditAction.UPDATE, actor=sam, detail__import=str(job.pk)).count() == 2

    again = run(path, "interactions")
    assert counts(again) == (0, 0, 3, 6)
    assert Interaction.objects.filter(external_id__isnull=False).count() == 3


def test_an_interaction_already_posted_through_the_api_is_unchanged(tmp_path):
    customer = CustomerFactory(external_ref="C-1")
    InteractionFactory(customer=customer, source="api", external_id="X-1")

    job = run(
        write(tmp_path, "i.csv", "external_id,customer_ref,started_at\nX-1,C-1,2024-01-01T00:00:00Z\n"),
        "interactions",
    )

    assert counts(job) == (0, 0, 1, 0)


def test_a_contact_import_audits_each_customer_once_whatever_the_batches_and_runs(tmp_path, settings, sam):
    settings.CRM_IMPORT_BATCH = 2  # C-1's five contacts span three batches, each its own run
    CustomerFactory(external_ref="C-1")
    CustomerFactory(external_ref="C-2")
    rows = [f"X-{n},C-{1 if n != 3 else 2},2024-01-0{n}T00:00:00Z" for n in range(1, 7)]
    path = write(tmp_path, "i.csv", "external_id,customer_ref,started_at\n" + "\n".join(rows) + "\n")

    job = imports.import_job_create(actor=sam, kind="interactions", path=path, file_name=path.name)
    for slice_ in range(10):  # one batch per run, as time-boxed worker tasks resume each other
        job = imports.import_run(job.pk, runner=f"task-{slice_}", budget_seconds=0)
        if job.status == "done":
            break

    assert counts(job) == (6, 0, 0, 0)
    audit = AccessAudit.objects.filter(detail__import=str(job.pk))
    assert sorted(a.customer.external_ref for a in audit) == ["C-1", "C-2"]
    assert {(a.action, a.actor) for a in audit} == {(AuditAction.UPDATE, sam)}


def test_an_import_leaves_the_garbage_collector_as_it_found_it(tmp_path):
    """It freezes the process's objects for the run (30-40 % of its CPU was the collector walking
    them) and unfreezes them after, even when the run fails; a process's own freeze is left alone."""
    path = write(tmp_path, "crm.csv", CUSTOMERS_CSV)
    assert gc.get_freeze_count() == 0
    assert run(path).status == "done"
    assert gc.get_freeze_count() == 0

    gc.freeze()
    try:
        run(write(tmp_path, "again.csv", CUSTOMERS_CSV))
        assert gc.get_freeze_count() > 0  # still frozen: not the import's to undo
    finally:
        gc.unfreeze()


def test_a_resumed_import_skips_the_batches_already_committed(tmp_path, settings):
    settings.CRM_IMPORT_BATCH = 2
    body = "".join(f"R-{n},Person {n}\n" for n in range(1, 8))
    path = write(tmp_path, "many.csv", "external_ref,display_name\n" + body)
    job = imports.import_job_create(actor=None, kind="customers", path=path, file_name=path.name)
    # A runner committed the first two batches (lines 2-5), then died.
    imports.import_claim(job.pk, "dead-runner")
    ImportJob.objects.filter(pk=job.pk).update(
        last_line=5, rows_done=4, created=4, heartbeat_at=timezone.now() - dt.timedelta(hours=1)
    )

    finished = imports.import_run(job.pk, runner="new-runner")

    assert counts(finished) == (7, 0, 0, 0)
    assert finished.rows_done == 7
    # Only lines 6-8 were loaded by this runner: the committed ones were not read again.
    assert sorted(Customer.objects.values_list("external_ref", flat=True)) == ["R-5", "R-6", "R-7"]


def killed_after_the_second_error_write(job: ImportJob, monkeypatch) -> None:
    """Run the job until its second batch with rejected lines has written them, then stop it there,
    before that batch commits, and leave the job as a killed runner does: held, at its last commit."""
    original = imports._ErrorFile.write
    calls = []

    def write_then_die(self, *args, **kwargs):
        calls.append(1)
        written = original(self, *args, **kwargs)
        if len(calls) == 2:
            raise RuntimeError("killed")
        return written

    with monkeypatch.context() as patched:
        patched.setattr(imports._ErrorFile, "write", write_then_die)
        with pytest.raises(RuntimeError):
            imports.import_run(job.pk, runner="dead-runner")
    ImportJob.objects.filter(pk=job.pk).update(status="running", heartbeat_at=timezone.now() - dt.timedelta(hours=1))


def test_a_batch_lost_after_writing_its_rejected_lines_does_not_list_them_twice_when_resumed(
    tmp_path, settings, monkeypatch
):
    """The error file is not in the database: a runner killed between writing a batch's rejected
    lines and committing the batch leaves them in the file, and the resumed run rejects them again."""
    settings.CRM_IMPORT_BATCH = 2
    lines = ["external_ref,display_name,tier"]
    lines += [f"R-{n},Person {n},{'platinum' if n % 2 else 'vip'}" for n in range(1, 7)]  # lines 2-7, odd n bad
    path = write(tmp_path, "tiers.csv", "\n".join(lines) + "\n")
    job = imports.import_job_create(actor=None, kind="customers", path=path, file_name=path.name)
    killed_after_the_second_error_write(job, monkeypatch)  # lines 4-5's batch wrote its line, never committed
    # What a kill leaves: the job still held by the dead runner, at its last committed batch.
    assert ImportJob.objects.get(pk=job.pk).last_line == 3

    done = imports.import_run(job.pk, runner="new-runner")

    assert counts(done) == (3, 0, 0, 3)
    with open(done.error_path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert [r[0] for r in rows] == ["external_ref", "R-1", "R-3", "R-5"]


def test_a_lost_batchs_rejected_line_that_loads_when_resumed_leaves_the_error_file(tmp_path, settings, monkeypatch):
    """The lost batch's lines are cut off when the job is resumed, not when a later batch rejects
    something: a line rejected before the kill may load after it (its customer created meanwhile)."""
    settings.CRM_IMPORT_BATCH = 2
    CustomerFactory(display_name="Ann", external_ref="C-1")
    text = "external_id,customer_ref,started_at\n" + "".join(
        f"X-{n},{ref},2024-01-0{n}T09:00:00Z\n" for n, ref in enumerate(["C-1", "NOPE", "C-1", "LATE"], start=1)
    )  # X-2 (line 3) never loads; X-4 (line 5) loads once LATE exists
    path = write(tmp_path, "history.csv", text)
    job = imports.import_job_create(actor=None, kind="interactions", path=path, file_name=path.name)
    killed_after_the_second_error_write(job, monkeypatch)
    CustomerFactory(display_name="Lee", external_ref="LATE")

    done = imports.import_run(job.pk, runner="new-runner")

    assert counts(done) == (3, 0, 0, 1)
    with open(done.error_path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert [r[0] for r in rows] == ["external_id", "X-2"]


def test_a_dry_run_and_an_import_of_the_same_file_each_have_their_own_error_file(tmp_path):
    path = write(tmp_path, "tiers.csv", "external_ref,display_name,tier\nR-1,One,platinum\nR-2,Two,vip\n")

    dry = run(path, dry_run=True)
    real = run(path)

    assert dry.error_path != real.error_path
    for job in (dry, real):
        assert Path(job.error_path).read_text(encoding="utf-8").splitlines() == [
            "external_ref,display_name,tier,error",
            "R-1,One,platinum,\"tier: 'platinum' is not a tier (standard, vip).\"",
        ]


def test_a_job_from_before_the_recorded_length_keeps_its_error_file_when_resumed(tmp_path, settings):
    settings.CRM_IMPORT_BATCH = 2
    text = "external_ref,display_name,tier\nR-1,One,platinum\nR-2,Two,vip\nR-3,Three,gold\n"
    path = write(tmp_path, "tiers.csv", text)
    job = imports.import_job_create(actor=None, kind="customers", path=path, file_name=path.name)
    errors = tmp_path / "tiers.csv.errors.csv"
    errors.write_text("external_ref,display_name,tier,error\nR-1,One,platinum,tier: not a tier\n", encoding="utf-8")
    # Migration 0025 leaves NULL on jobs whose runs never recorded the length.
    imports.import_claim(job.pk, "dead-runner")
    ImportJob.objects.filter(pk=job.pk).update(
        last_line=3, rows_done=2, created=1, rejected=1, error_path=str(errors), error_bytes=None,
        heartbeat_at=timezone.now() - dt.timedelta(hours=1),
    )  # fmt: skip

    done = imports.import_run(job.pk, runner="new-runner")

    assert counts(done) == (1, 0, 0, 2)
    assert [line.split(",")[0] for line in errors.read_text(encoding="utf-8").splitlines()] == [
        "external_ref",
        "R-1",
        "R-3",
    ]


def test_a_live_runner_keeps_its_job(tmp_path):
    path = write(tmp_path, "one.csv", "external_ref,display_name\nR-1,One\n")
    job = imports.import_job_create(actor=None, kind="customers", path=path, file_name=path.name)
    assert imports.import_claim(job.pk, "first")

    assert not imports.import_claim(job.pk, "second")
    assert imports.import_run(job.pk, runner="second").status == "running"
    assert Customer.objects.count() == 0


def test_export_then_import_into_an_empty_database_reproduces_the_customers(tmp_path):
    run(write(tmp_path, "crm.csv", CUSTOMERS_CSV))
    no_ref = CustomerFactory(display_name="Alan Turing", language="en-GB")
    IdentityFactory(customer=no_ref, kind="email", value="alan@example.com", normalized="alan@example.com")

    def snapshot():
        return sorted(
            (
                c.display_name,
                c.preferred_name,
                c.language,
                c.tier,
                tuple(sorted((i.kind, i.normalized, i.verified_at is not None) for i in c.identities.all())),
                tuple(sorted(c.facts.filter(is_current=True).values_list("key", "value"))),
                tuple(sorted(c.preferences.filter(is_current=True).values_list("key", "value"))),
            )
            for c in Customer.objects.live()
        )

    before = snapshot()
    for fmt in ("csv", "jsonl"):
        out = io.StringIO()
        assert imports.customers_export(out, file_format=fmt) == 3
        export = write(tmp_path, f"export.{fmt}", out.getvalue())
        Fact.objects.all().delete()
        Preference.objects.all().delete()
        Identity.objects.all().delete()
        AccessAudit.objects.all()._raw_delete(AccessAudit.objects.db)
        Customer.objects.all().delete()

        job = run(export)

        assert counts(job) == (3, 0, 0, 0)
        assert snapshot() == before


def test_the_commands_print_the_report_and_the_dry_run_writes_nothing(tmp_path):
    path = write(tmp_path, "crm.csv", CUSTOMERS_CSV)
    out = io.StringIO()

    call_command("import_customers", str(path), "--dry-run", "--no-progress", stdout=out)
    assert "2 rows read: 2 would be created, 0 updated, 0 unchanged, 0 rejected." in out.getvalue()
    assert Customer.objects.count() == 0

    call_command("import_customers", str(path), "--no-progress", stdout=out)
    assert Customer.objects.count() == 2
    export = tmp_path / "out.csv"
    call_command("export_customers", str(export), stdout=out)
    assert "2 customers written" in out.getvalue()
    assert export.read_text().splitlines()[0].startswith("external_ref,display_name,preferred_name,language,tier")


def test_the_api_takes_a_file_and_reports_progress_to_supervisors(tmp_path, supervisor_api, agent_api):
    upload = io.BytesIO(CUSTOMERS_CSV.encode())
    upload.name = "crm.csv"

    refused = agent_api.post("/api/v1/imports", {"file": upload, "kind": "customers"}, format="multipart")
    assert refused.status_code == 403
    upload.seek(0)
    response = supervisor_api.post("/api/v1/imports", {"file": upload, "kind": "customers"}, format="multipart")

    assert response.status_code == 202, response.content
    job_id = response.json()["id"]
    imports.import_run(job_id)  # what the worker does once the request commits
    report = supervisor_api.get(f"/api/v1/imports/{job_id}").json()
    assert {k: report[k] for k in ("status", "rows_total", "rows_done", "created", "rejected")} == {
        "status": "done",
        "rows_total": 2,
        "rows_done": 2,
        "created": 2,
        "rejected": 0,
    }
    assert report["errors"] == [] and report["error_file"] is None
    assert agent_api.get(f"/api/v1/imports/{job_id}").status_code == 403


def test_the_api_refuses_a_bad_kind_or_no_file_and_stores_nothing(tmp_path, supervisor_api):
    upload = io.BytesIO(b"external_ref\n")
    upload.name = "x.csv"

    bad_kind = supervisor_api.post("/api/v1/imports", {"file": upload, "kind": "cases"}, format="multipart")
    no_file = supervisor_api.post("/api/v1/imports", {"kind": "customers"}, format="multipart")

    assert bad_kind.status_code == 400 and "kind" in bad_kind.json()
    assert no_file.status_code == 400 and "file" in no_file.json()
    assert ImportJob.objects.count() == 0
    assert supervisor_api.get("/api/v1/imports/00000000-0000-0000-0000-000000000000").status_code == 404


def test_the_error_file_is_served_to_supervisors(tmp_path, supervisor_api):
    upload = io.BytesIO(b"external_ref,display_name,tier\nB-1,Bad,platinum\n")
    upload.name = "bad.csv"
    job_id = supervisor_api.post("/api/v1/imports", {"file": upload, "kind": "customers"}, format="multipart").json()[
        "id"
    ]
    imports.import_run(job_id)

    response = supervisor_api.get(f"/api/v1/imports/{job_id}/errors")

    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="bad-errors.csv"'
    assert response["Content-Type"] == "text/csv"
    body = b"".join(response.streaming_content).decode()
    assert body.splitlines() == [
        "external_ref,display_name,tier,error",
        "B-1,Bad,platinum,\"tier: 'platinum' is not a tier (standard, vip).\"",
    ]


def test_a_running_imports_error_file_holds_only_the_committed_batches_lines(
    tmp_path, supervisor_api, settings, monkeypatch
):
    """A batch writes its rejected lines before it commits; until then (or for ever, if its runner
    dies) they may yet load, so a download mid-run stops at the last committed batch's end."""
    settings.CRM_IMPORT_BATCH = 2
    lines = ["external_ref,display_name,tier"]
    lines += [f"R-{n},Person {n},{'platinum' if n % 2 else 'vip'}" for n in range(1, 7)]
    path = write(tmp_path, "tiers.csv", "\n".join(lines) + "\n")
    job = imports.import_job_create(actor=None, kind="customers", path=path, file_name=path.name)
    killed_after_the_second_error_write(job, monkeypatch)  # R-3's line written, its batch never committed
    assert "R-3" in Path(ImportJob.objects.get(pk=job.pk).error_path).read_text(encoding="utf-8")

    response = supervisor_api.get(f"/api/v1/imports/{job.pk}/errors")

    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode()
    assert [line.split(",")[0] for line in body.splitlines()] == ["external_ref", "R-1"]
    assert int(response["Content-Length"]) == len(body.encode())


def test_erasure_forgets_the_source_systems_id(tmp_path, sam):
    from crm.privacy import customer_erase

    run(write(tmp_path, "crm.csv", CUSTOMERS_CSV))
    ada = Customer.objects.get(external_ref="C-1")

    assert ada.import_digest is not None
    customer_erase(actor=sam, customer=ada)

    ada.refresh_from_db()
    assert ada.external_ref is None
    assert ada.import_digest is None  # a hash of her row, as imported


def test_the_admin_upload_starts_an_import_and_its_page_shows_the_report(tmp_path, sam, alice, client):
    upload = io.BytesIO(b"external_ref,display_name,tier\nG-1,Good,vip\nB-1,Bad,platinum\n")
    upload.name = "people.csv"
    client.force_login(alice)
    assert client.get("/admin/crm/importjob/add/").status_code == 302  # agents are sent to the login
    client.force_login(sam)

    response = client.post("/admin/crm/importjob/add/", {"upload": upload, "kind": "customers", "dry_run": ""})

    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/admin/crm/importjob/{job.pk}/change/")
    assert (job.kind, job.file_name, job.started_by) == ("customers", "people.csv", sam)
    imports.import_run(job.pk)
    page = client.get(response["Location"]).content.decode()
    assert "2 / 2 rows" in page
    assert "&#x27;platinum&#x27; is not a tier" in page
    assert f"/api/v1/imports/{job.pk}/errors" in page


def test_the_sweep_takes_again_only_imports_left_queued_or_held_by_a_quiet_runner(tmp_path, settings):
    settings.CRM_IMPORT_STALE_SECONDS = 60
    path = tmp_path / "x.csv"
    path.write_text("external_ref,display_name\nA,B\n")
    now = timezone.now()
    make = imports.import_job_create
    make(actor=None, kind="customers", path=path, file_name="x.csv")  # fresh: queued a moment ago
    old_queued = make(actor=None, kind="customers", path=path, file_name="x.csv")
    quiet = make(actor=None, kind="customers", path=path, file_name="x.csv")
    busy = make(actor=None, kind="customers", path=path, file_name="x.csv")
    ImportJob.objects.filter(pk=old_queued.pk).update(created_at=now - dt.timedelta(minutes=5))
    ImportJob.objects.filter(pk=quiet.pk).update(status="running", heartbeat_at=now - dt.timedelta(minutes=5))
    ImportJob.objects.filter(pk=busy.pk).update(status="running", heartbeat_at=now)
    assert set(imports.imports_stalled(now=now)) == {old_queued.pk, quiet.pk}


def test_a_runner_past_its_budget_hands_the_job_back_after_a_committed_batch(tmp_path, settings):
    settings.CRM_IMPORT_BATCH = 2
    path = write(tmp_path, "five.csv", "external_ref,display_name\n" + "".join(f"R-{n},P {n}\n" for n in range(5)))
    job = imports.import_job_create(actor=None, kind="customers", path=path, file_name=path.name)

    paused = imports.import_run(job.pk, runner="task-1", budget_seconds=0)

    assert (paused.status, paused.runner, paused.last_line, paused.created) == ("queued", "", 3, 2)
    finished = imports.import_run(job.pk, runner="task-2")
    assert (finished.status, finished.created, finished.unchanged) == ("done", 5, 0)
