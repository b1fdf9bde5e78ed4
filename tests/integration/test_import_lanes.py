"""An import applied on several PostgreSQL connections ends every line as one connection does.

The files are built so that batches in flight together meet: a customer named by external_ref
in one batch and by its account in the next, an external_ref and a phone repeated a few lines
on, a contact's external_id repeated across batches. Batches of two lines on three connections,
then the same on one: the report, the error file and every row written must be the same.
The tests run outside a test transaction (other connections must see the rows).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from crm import imports
from crm.models import AccessAudit, Customer, Fact, Identity, ImportJob, Interaction, Preference
from tests.factories import CustomerFactory, IdentityFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

CUSTOMERS = """\
external_ref,display_name,tier,phone,account,fact:router,pref:contact_channel
N-1,Ann Ames,,+447700900111,,R1,
N-2,Bob Bell,,+447700900222,,,
OLD-1,,vip,,,R2,
N-3,Cat Cole,,+447700900333,,,
,,,,AC-9009,R3,email
N-4,Dan Dale,,+447700900444,,,
N-5,Eve Eyre,,+447700900111,,,
N-1,,vip,,,,sms
N-6,Fay Ford,,+447700900666,,,
N-1,,standard,,,R5,
N-7,Gus Gray,,+447700900777,AC-9009,,
N-8,Hal Hunt,,12,,,
,,,,AC-9009,R4,
N-9,Ida Ives,,+447700900999,,,
OLD-1,,,+447700900111,,,phone
N-2,,gold,,,,
N-10,Jo Jones,,+447700900101,AC-1010,,
,,,+447700900202,AC-1010,R6,
N-11,Kim Kerr,standard,+447700900121,,,
N-12,Lee Lowe,,+447700900122,,,
N-11,,vip,,,,
"""

INTERACTIONS = """\
external_id,customer_ref,channel,started_at,reason
X-1,N-1,phone,2024-03-01T09:00:00Z,billing
X-2,N-2,chat,2024-03-02T09:00:00Z,
X-3,OLD-1,phone,2024-03-03T09:00:00Z,
X-1,N-2,phone,2024-03-04T09:00:00Z,
X-4,N-404,phone,2024-03-05T09:00:00Z,
X-5,N-3,email,2024-03-06T09:00:00Z,nonsense
X-2,N-3,phone,2024-03-07T09:00:00Z,
X-6,N-1,phone,2024-03-08T09:00:00Z,payment
X-4,N-4,phone,2024-03-09T09:00:00Z,
X-7,N-5,sms,2024-03-10T09:00:00Z,
X-6,N-5,phone,2024-03-11T09:00:00Z,
X-8,OLD-1,phone,2024-03-12T09:00:00Z,
"""


def seed() -> None:
    old = CustomerFactory(external_ref="OLD-1", display_name="Olga Old")
    IdentityFactory(customer=old, kind="account", value="AC-9009", normalized="AC9009")
    Fact.objects.create(customer=old, key="router", value="R0", recorded_at=timezone.now())


def outcome(job: ImportJob) -> dict:
    def problems(items: list[dict]) -> list[tuple]:
        return [(p["line"], p["field"], p["message"]) for p in items]  # customers named by external_ref

    ref = "customer__external_ref"
    return {
        "counts": (job.status, job.created, job.updated, job.unchanged, job.rejected, job.rows_done, job.last_line),
        "errors": problems(job.errors),
        "warnings": problems(job.warnings),
        "error file": Path(job.error_path).read_text(encoding="utf-8") if job.error_path else "",
        "customers": sorted(Customer.objects.values_list("external_ref", "display_name", "tier")),
        "identities": sorted(Identity.objects.values_list(ref, "kind", "normalized")),
        "facts": sorted(Fact.objects.values_list(ref, "key", "value", "is_current", "import_ref")),
        "preferences": sorted(Preference.objects.values_list(ref, "key", "value", "is_current", "import_ref")),
        "contacts": sorted(Interaction.objects.values_list("external_id", ref, "channel", "reason__code")),
        "audit": sorted(
            (a.customer.external_ref, a.action, a.detail.get("line", 0))
            for a in AccessAudit.objects.filter(detail__has_key="import").select_related("customer")
        ),
    }


def imported(directory: Path, kind: str, text: str, name: str) -> ImportJob:
    directory.mkdir(exist_ok=True)
    path = directory / name  # the same name in both runs: facts name their file
    path.write_text(text, encoding="utf-8")
    job = imports.import_job_create(actor=None, kind=kind, path=path, file_name=path.name)
    return imports.import_run(job.pk)


def both_files(tmp_path: Path, tag: str, *, digests: bool = True) -> tuple[dict, dict, dict]:
    """Customers, the same file again, then contacts. Without `digests`, the stored digests are
    forgotten before the second import: every row is then compared with what is on file."""
    seed()
    customers = outcome(imported(tmp_path / tag, "customers", CUSTOMERS, "customers.csv"))
    if not digests:
        Customer.objects.update(import_digest=None)
    again = outcome(imported(tmp_path / tag, "customers", CUSTOMERS, "customers.csv"))
    interactions = outcome(imported(tmp_path / tag, "interactions", INTERACTIONS, "history.csv"))
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE crm_accessaudit, crm_fact, crm_preference, crm_identity, crm_interaction, crm_importjob, "
            "crm_customer CASCADE"
        )
    return customers, again, interactions


def test_three_connections_end_every_line_as_one_does(tmp_path, settings):
    settings.CRM_IMPORT_BATCH = 2
    settings.CRM_IMPORT_CONNECTIONS = 1
    assert imports._lane_count() == 1
    one = both_files(tmp_path, "one")

    settings.CRM_IMPORT_CONNECTIONS = 3
    assert imports._lane_count() == 3  # outside a transaction: the batches do go to three connections
    three = both_files(tmp_path, "three")

    settings.CRM_IMPORT_CONNECTIONS = 1
    compared = both_files(tmp_path, "compared", digests=False)

    for sequential, parallel in zip(one, three, strict=True):
        for part in sequential:
            assert parallel[part] == sequential[part], part
    # The file imported again: rows skipped by their digest end as rows compared with what is on file.
    assert one[1] == compared[1]
    customers, again, interactions = one
    assert again["counts"][1:5] == (0, 9, 9, 3)
    # And one connection's outcome is the rules' (CONTRACT.md "Bulk import"):
    assert customers["counts"] == ("done", 10, 8, 0, 3, 21, 22)
    assert [line for line, _, _ in customers["errors"]] == [12, 13, 17]  # AC-9009 is Olga's; bad phone, tier
    olga = [(value, current) for ref, key, value, current, _ in customers["facts"] if ref == "OLD-1"]
    assert olga == [("R0", False), ("R2", False), ("R3", False), ("R4", True)]  # by ref, account, account
    assert ("N-1", "Ann Ames", "standard") in customers["customers"]  # the last of its three lines wins
    assert customers["warnings"] == [
        (8, "phone", "Possible duplicate of N-1."),
        (16, "phone", "Possible duplicate of N-1, N-5."),
    ]
    assert interactions["counts"] == ("done", 7, 0, 3, 2, 12, 13)
    assert [line for line, _, _ in interactions["errors"]] == [6, 7]  # X-4 loads from line 10 instead


def test_a_row_as_last_imported_is_applied_when_a_batch_in_flight_changes_its_customer_first(tmp_path, settings):
    """Line 2 puts Kim back to standard; line 4, her last row, makes her vip again. The batch of
    line 2 is still in flight when line 4's digest is read, so the digest read is the old one:
    line 4 must be applied all the same, as one connection (which has committed line 2) does."""
    settings.CRM_IMPORT_BATCH = 2
    settings.CRM_IMPORT_CONNECTIONS = 3
    text = "external_ref,display_name,tier\nK-1,Kim Kerr,standard\nK-2,Lee Lowe,standard\nK-1,,vip\n"
    imported(tmp_path, "customers", text, "kim.csv")

    again = imported(tmp_path, "customers", text, "kim.csv")

    assert (again.updated, again.unchanged) == (2, 1)
    assert Customer.objects.get(external_ref="K-1").tier == "vip"


@pytest.mark.parametrize("lanes", [1, 3])
def test_a_row_as_last_imported_is_unchanged_whatever_the_connections(tmp_path, settings, lanes):
    """Ann's row follows Bob's, matched by account, in a batch that may still be in flight: the
    reading thread cannot skip it, so its batch decides, and her corrected name stands."""
    settings.CRM_IMPORT_BATCH = 1
    settings.CRM_IMPORT_CONNECTIONS = lanes
    imported(tmp_path, "customers", "external_ref,display_name,account\nB-1,Bob,AC-2002\nR-1,Ann,AC-1001\n", "a.csv")
    Customer.objects.filter(external_ref="R-1").update(display_name="Ann K")

    again = imported(
        tmp_path, "customers", "external_ref,display_name,account\n,Bob,AC-2002\nR-1,Ann,AC-1001\n", "b.csv"
    )

    assert (again.created, again.updated, again.unchanged, again.rejected) == (0, 0, 2, 0)
    assert Customer.objects.get(external_ref="R-1").display_name == "Ann K"
