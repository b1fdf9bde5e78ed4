"""PostgreSQL's interaction import (a staging table and set-based SQL) against the portable path.

The same file, with every way a line can end (loaded, unchanged, refused, and the duplicates
within and across batches that decide between them), goes through both paths on the same data:
the counts, the reported lines and the rows loaded must be the same.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from crm import imports
from crm.models import AccessAudit, ImportJob, Interaction
from tests.factories import CustomerFactory, IdentityFactory, InteractionFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

LINES = """\
external_id,customer_ref,account,phone,started_at,reason,agent
X-1,C-1,,,2024-03-01T09:00:00Z,billing,
X-1,C-1,,,2024-03-01T09:00:00Z,billing,
X-2,C-404,,,2024-03-02T09:00:00Z,,
X-2,C-1,,,2024-03-02T09:00:00Z,,
X-3,C-1,,,2024-03-03T09:00:00Z,,mallory
X-API,C-404,,,2024-03-03T10:00:00Z,,mallory
X-4,,AC-2002,,2024-03-04T09:00:00Z,payment,
X-5,,,+447911123456,2024-03-05T09:00:00Z,,
X-6,,,+447911000000,2024-03-06T09:00:00Z,,
X-7,C-1,,,2024-03-07T09:00:00Z,,
X-7,C-404,,,2024-03-07T09:00:00Z,,
X-8,C-OLD,,,2024-03-08T09:00:00Z,,
X-9,C-1,,,2024-03-09T09:00:00Z,outage,alice
X-1,C-2,,,2024-03-10T09:00:00Z,,
X-10,C-1,,,2024-03-11T09:00:00Z,,mallory
X-10,C-2,,,2024-03-11T09:00:00Z,,
"""


@pytest.fixture
def customers(alice):
    one = CustomerFactory(external_ref="C-1")
    two = CustomerFactory(external_ref="C-2")
    CustomerFactory(external_ref="C-OLD", merged_into=one)
    IdentityFactory(customer=two, kind="account", value="AC-2002", normalized="AC2002")
    for holder in (one, two):  # a household's phone: never decides who a row is
        IdentityFactory(customer=holder, kind="phone", value="+447911123456", normalized="+447911123456")
    InteractionFactory(customer=one, source="api", external_id="X-API")


def outcome(job: ImportJob) -> tuple:
    loaded = Interaction.objects.filter(source="api").exclude(external_id="X-API")
    return (
        (job.created, job.updated, job.unchanged, job.rejected),
        [(e["line"], e["field"], e["message"]) for e in job.errors],
        sorted(
            loaded.values_list(
                "external_id", "customer__external_ref", "agent__username", "reason__code", "started_at", "identifiers"
            )
        ),
        sorted(a.customer.external_ref for a in AccessAudit.objects.filter(detail__import=str(job.pk))),
    )


def run(path: Path) -> ImportJob:
    job = imports.import_job_create(actor=None, kind="interactions", path=path, file_name=path.name)
    return imports.import_run(job.pk)


@pytest.mark.parametrize("batch", [4, 2000])
def test_the_staging_table_path_ends_every_line_as_the_portable_path_does(
    tmp_path, customers, settings, monkeypatch, batch
):
    settings.CRM_IMPORT_BATCH = batch
    path = tmp_path / "history.csv"
    path.write_text(LINES, encoding="utf-8")

    staged = outcome(run(path))
    keys = Interaction.objects.filter(source="api").exclude(external_id="X-API").values_list("pk", flat=True)
    assert {key.version for key in keys} == {7}  # time-ordered keys, as the model's own (made in Python and staged)
    Interaction.objects.filter(source="api").exclude(external_id="X-API").delete()
    monkeypatch.setattr(imports, "_interactions_staged", imports._interactions_matched)
    portable = outcome(run(path))

    assert staged == portable
    assert staged[0] == (7, 0, 4, 5)
    assert [line for line, _, _ in staged[1]] == [4, 6, 9, 10, 16]
    loaded = {external_id: ref for external_id, ref, *_ in staged[2]}
    assert loaded == {"X-1": "C-1", "X-2": "C-1", "X-4": "C-2", "X-7": "C-1", "X-8": "C-1", "X-9": "C-1", "X-10": "C-2"}


def test_a_file_imported_again_loads_nothing_and_refuses_the_same_lines(tmp_path, customers):
    path = tmp_path / "history.csv"
    path.write_text(LINES, encoding="utf-8")
    run(path)

    again = run(path)

    assert (again.created, again.unchanged, again.rejected) == (0, 13, 3)  # refused lines are refused again


def test_lines_on_file_end_the_same_whether_or_not_their_batch_asked_first(tmp_path, customers, settings, monkeypatch):
    """A batch asks first which of its external_ids are on file only while batches find some (a
    first import skips the query). Lines on file staged unasked must end as asked: unchanged, or
    refused as before."""
    settings.CRM_IMPORT_BATCH = 4
    path = tmp_path / "history.csv"
    path.write_text(LINES, encoding="utf-8")
    run(path)
    asked = run(path)

    monkeypatch.setattr(
        imports._Lookups, "ask_first", property(lambda self: False, lambda self, value: None), raising=False
    )
    unasked = run(path)

    assert (unasked.created, unasked.unchanged, unasked.rejected) == (asked.created, asked.unchanged, asked.rejected)
    assert unasked.errors == asked.errors
    assert (asked.created, asked.unchanged, asked.rejected) == (0, 13, 3)
