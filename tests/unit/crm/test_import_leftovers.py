"""Bulk import under faults and over time: what a lost connection, a failed or interrupted run and
the passing days leave behind (uploads, error files, the problems listed), and files refused."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, OperationalError, connection
from django.utils import timezone

from crm import imports
from crm.models import Customer, ImportJob
from tests.unit.crm.test_imports import counts, run, write

pytestmark = pytest.mark.django_db


def queued(path: Path) -> ImportJob:
    """A customer import of a file given to the command, not yet run."""
    return imports.import_job_create(actor=None, kind="customers", path=path, file_name=path.name)


def upload(supervisor_api, text: bytes, name: str = "mixed.csv") -> str:
    """The job's id, as `POST /api/v1/imports` answers it; the upload waits in CRM_IMPORT_DIR."""
    file = io.BytesIO(text)
    file.name = name
    response = supervisor_api.post("/api/v1/imports", {"file": file, "kind": "customers"}, format="multipart")
    assert response.status_code == 202, response.content
    job_id = response.json()["id"]
    assert Path(ImportJob.objects.get(pk=job_id).path).exists()
    return job_id


def upload_run(supervisor_api, text: bytes, name: str = "mixed.csv") -> ImportJob:
    return imports.import_run(upload(supervisor_api, text, name))


MIXED = b"external_ref,display_name,tier\nB-1,Bad,platinum\nG-1,Good,vip\n"


def test_an_uploaded_file_is_removed_when_its_import_ends_and_a_file_the_command_was_given_stays(
    tmp_path, supervisor_api
):
    """The upload is the service's own copy of the customers' personal data: once the import has
    ended nothing reads it again. The file a command was pointed at is the operator's."""

    uploaded = upload_run(supervisor_api, MIXED)
    given = run(write(tmp_path, "given.csv", MIXED.decode()))
    given_there = run(write(tmp_path / "uploads", "given-there.csv", MIXED.decode()))  # in the same directory

    assert not Path(uploaded.path).exists()
    assert Path(given_there.path).exists()
    assert Path(uploaded.error_path).exists()
    assert Path(given.path).exists()
    body = b"".join(supervisor_api.get(f"/api/v1/imports/{uploaded.pk}/errors").streaming_content).decode()
    assert [line.split(",")[0] for line in body.splitlines()] == ["external_ref", "B-1"]


def test_an_imports_report_and_error_file_age_out_and_its_counts_stay(tmp_path, supervisor_api, settings):
    """The problems listed quote the rejected values (a phone, an e-mail) and the error file holds
    whole lines, an erased customer's too: kept CRM_IMPORT_KEEP_DAYS after the import ends."""
    settings.CRM_IMPORT_KEEP_DAYS = 7
    uploaded = upload_run(supervisor_api, MIXED)
    given = run(write(tmp_path, "given.csv", MIXED.decode()))
    running = ImportJob.objects.get(pk=upload(supervisor_api, MIXED, name="later.csv"))
    long_ago = timezone.now() - dt.timedelta(days=30)
    ImportJob.objects.filter(pk=running.pk).update(
        status="running", created_at=long_ago, heartbeat_at=long_ago, finished_at=long_ago
    )  # a resumed job keeps what an earlier end wrote: only the status says it is not over
    error_files = [Path(uploaded.error_path), Path(given.error_path)]

    ImportJob.objects.exclude(pk=running.pk).update(finished_at=timezone.now() - dt.timedelta(days=6))
    assert imports.imports_purge() == 0
    assert all(f.exists() for f in error_files)

    ImportJob.objects.exclude(pk=running.pk).update(finished_at=timezone.now() - dt.timedelta(days=8))
    assert imports.imports_purge() == 2

    assert not any(f.exists() for f in error_files)
    assert Path(given.path).exists() and Path(running.path).exists()
    report = supervisor_api.get(f"/api/v1/imports/{uploaded.pk}").json()
    assert (report["created"], report["rejected"]) == (1, 1)
    assert report["errors"] == [] and report["error_file"] is None and report["purged_at"]
    assert supervisor_api.get(f"/api/v1/imports/{uploaded.pk}/errors").status_code == 404
    assert ImportJob.objects.get(pk=running.pk).purged_at is None
    assert imports.imports_purge() == 0


def test_the_purge_removes_an_upload_its_import_left_behind(tmp_path, supervisor_api):
    """A worker killed after the last batch committed, before it removed the upload."""
    job_id = upload(supervisor_api, MIXED)
    ImportJob.objects.filter(pk=job_id).update(status="failed", finished_at=timezone.now())

    assert imports.imports_purge() == 0

    assert not Path(ImportJob.objects.get(pk=job_id).path).exists()


def test_the_admin_says_when_an_imports_report_was_removed(tmp_path, sam, client, supervisor_api):
    job = upload_run(supervisor_api, MIXED)
    ImportJob.objects.filter(pk=job.pk).update(finished_at=timezone.now() - dt.timedelta(days=30))
    imports.imports_purge()
    client.force_login(sam)

    page = client.get(f"/admin/crm/importjob/{job.pk}/change/").content.decode()

    assert "Removed on" in page and "No problems." not in page
    assert f"/api/v1/imports/{job.pk}/errors" not in page


def test_a_lost_database_connection_mid_import_hands_the_job_back_and_the_next_run_finishes_it(
    tmp_path, supervisor_api, settings, monkeypatch
):
    """A failover or a lock timeout is no reason to give up half a file: the job goes back to the
    queue at its last committed batch (the task's retry, or the sweep, runs it again), upload kept."""
    settings.CRM_IMPORT_BATCH = 2
    text = "external_ref,display_name,tier\n" + "".join(f"R-{n},Person {n},vip\n" for n in range(1, 7))
    job_id = upload(supervisor_api, text.encode())
    original, calls = imports._batch_commit, []

    def connection_lost_on_the_second_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # what each backend raises then (psycopg: no SQLSTATE, the connection is gone)
            gone = "server closed the connection unexpectedly"
            raise OperationalError("database is locked" if connection.vendor == "sqlite" else gone)
        return original(*args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(imports, "_batch_commit", connection_lost_on_the_second_batch)
        with pytest.raises(OperationalError):
            imports.import_run(job_id)

    job = ImportJob.objects.get(pk=job_id)
    assert (job.status, job.runner, job.last_line, job.failure) == ("queued", "", 3, "")
    assert Path(job.path).exists()

    done = imports.import_run(job_id)

    assert done.status == "done" and counts(done) == (6, 0, 0, 0)
    assert Customer.objects.count() == 6


def test_a_database_error_the_file_causes_each_time_fails_the_import_rather_than_loop(tmp_path, monkeypatch):
    """Handed back, a batch whose row the database refuses every time would be resumed for ever."""
    import psycopg.errors

    def index_row_too_large(*args, **kwargs):
        if connection.vendor == "sqlite":
            raise OperationalError("too many SQL variables")
        raise OperationalError("index row size 3000 exceeds btree version 4 maximum 2704") from (
            psycopg.errors.ProgramLimitExceeded("index row size 3000 exceeds btree version 4 maximum 2704")
        )

    monkeypatch.setattr(imports, "customers_apply", index_row_too_large)
    job = queued(write(tmp_path, "one.csv", "external_ref,display_name\nR-1,One\n"))

    with pytest.raises(OperationalError):
        imports.import_run(job.pk)

    job.refresh_from_db()
    assert job.status == "failed" and job.failure.startswith("OperationalError: ")
    assert job.pk not in imports.imports_stalled(now=timezone.now() + dt.timedelta(hours=1))


def test_a_passing_database_error_that_comes_back_every_run_fails_the_import_in_the_end(
    tmp_path, supervisor_api, settings, monkeypatch
):
    """A statement timeout every batch hits is not passing for this job: handed back for ever, it
    would be run every minute and never purged. A run that commits a batch starts the count again."""
    settings.CRM_IMPORT_BATCH = 2
    text = "external_ref,display_name\n" + "".join(f"R-{n},P\n" for n in range(6))
    job_id = upload(supervisor_api, text.encode())
    original, calls = imports._batch_commit, []
    gone = "database is locked" if connection.vendor == "sqlite" else "canceling statement due to statement timeout"

    def times_out_but_the_first_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            return original(*args, **kwargs)
        raise OperationalError(gone)

    monkeypatch.setattr(imports, "_batch_commit", times_out_but_the_first_batch)
    for run_number in range(1, imports.STUCK_RUNS_MAX + 2):  # the first run commits a batch first
        with pytest.raises(OperationalError):
            imports.import_run(job_id)
        job = ImportJob.objects.get(pk=job_id)
        if run_number <= imports.STUCK_RUNS_MAX:
            assert (job.status, job.stuck) == ("queued", run_number - 1)

    assert job.status == "failed" and "runs in a row" in job.failure
    assert job.last_line == 3 and not Path(job.path).exists()


def test_the_command_ends_its_import_on_a_database_error_rather_than_leave_it_to_the_workers(tmp_path, monkeypatch):
    """The operator is there: a worker finishing their file meanwhile, or a second run beside it, is not wanted."""
    gone = "database is locked" if connection.vendor == "sqlite" else "server closed the connection unexpectedly"

    def connection_lost(*args, **kwargs):
        raise OperationalError(gone)

    monkeypatch.setattr(imports, "customers_apply", connection_lost)
    path = write(tmp_path, "one.csv", "external_ref,display_name\nR-1,One\n")

    with pytest.raises(CommandError, match="Import the file again to load the rest"):
        call_command("import_customers", str(path), "--no-progress", stdout=io.StringIO())

    job = ImportJob.objects.get()
    assert job.status == "failed" and job.failure.startswith("OperationalError: ")
    assert job.pk not in imports.imports_stalled(now=timezone.now() + dt.timedelta(hours=1))


def test_a_failure_after_the_last_batch_committed_leaves_the_import_done(tmp_path, monkeypatch):
    def analyze_fails():
        raise RuntimeError("statistics refresh failed")

    monkeypatch.setattr(imports, "_statistics_refresh", analyze_fails)
    job = queued(write(tmp_path, "one.csv", "external_ref,display_name\nR-1,One\n"))

    with pytest.raises(RuntimeError):
        imports.import_run(job.pk)

    job.refresh_from_db()
    assert (job.status, job.created, job.failure) == ("done", 1, "")


def test_a_failed_imports_reason_keeps_no_row_values_and_ages_out_to_its_kind(tmp_path, monkeypatch):
    """PostgreSQL's DETAIL line quotes the key's values (an external ref, an e-mail)."""

    def duplicate(*args, **kwargs):
        raise IntegrityError(
            'duplicate key value violates unique constraint "customer_external_ref_once"\n'
            "DETAIL:  Key (external_ref)=(C-1) already exists."
        )

    monkeypatch.setattr(imports, "customers_apply", duplicate)
    job = queued(write(tmp_path, "one.csv", "external_ref,display_name\nC-1,One\n"))
    with pytest.raises(IntegrityError):
        imports.import_run(job.pk)

    job.refresh_from_db()
    assert job.status == "failed"
    assert job.failure == 'IntegrityError: duplicate key value violates unique constraint "customer_external_ref_once"'
    ImportJob.objects.filter(pk=job.pk).update(finished_at=timezone.now() - dt.timedelta(days=30))
    imports.imports_purge()
    assert ImportJob.objects.get(pk=job.pk).failure == "IntegrityError"


def test_an_error_file_whose_batch_never_committed_ages_out_too(tmp_path, monkeypatch):
    """The first rejecting batch writes its lines, then fails: the job never recorded the file."""
    original = imports._ErrorFile.write

    def write_then_fail(self, *args, **kwargs):
        original(self, *args, **kwargs)
        raise RuntimeError("disk gone")

    monkeypatch.setattr(imports._ErrorFile, "write", write_then_fail)
    path = write(tmp_path, "bad.csv", MIXED.decode())
    job = queued(path)
    with pytest.raises(RuntimeError):
        imports.import_run(job.pk)
    job.refresh_from_db()
    assert job.status == "failed" and job.error_path == ""
    left = [p for p in tmp_path.iterdir() if ".errors." in p.name]
    assert len(left) == 1

    ImportJob.objects.filter(pk=job.pk).update(finished_at=timezone.now() - dt.timedelta(days=30))
    assert imports.imports_purge() == 1

    assert not left[0].exists() and path.exists()


NOT_UTF8 = b"external_ref,display_name,tier\n" + b"".join(b"R-%d,Person,vip\n" % n for n in range(1, 401))
NOT_UTF8 += b"R-401,Ren\xe9e,vip\n"  # Windows-1252, as Excel saves "CSV"


def test_a_file_that_is_not_utf8_is_refused_whole_with_its_line(tmp_path, supervisor_api, sam, client):
    """Decoded as it streams, it loaded the rows before the bad byte's chunk and called itself done."""
    upload_file = io.BytesIO(NOT_UTF8)
    upload_file.name = "excel.csv"

    response = supervisor_api.post("/api/v1/imports", {"file": upload_file, "kind": "customers"}, format="multipart")

    assert response.status_code == 400
    assert "line 402" in response.json()["file"][0] and "UTF-8" in response.json()["file"][0]
    assert ImportJob.objects.count() == 0 and Customer.objects.count() == 0
    assert list((tmp_path / "uploads").iterdir()) == []

    path = tmp_path / "excel.csv"
    path.write_bytes(NOT_UTF8)
    with pytest.raises(CommandError, match="line 402"):
        call_command("import_customers", str(path), "--no-progress", stdout=io.StringIO())
    assert ImportJob.objects.count() == 0

    client.force_login(sam)
    upload_file.seek(0)
    page = client.post("/admin/crm/importjob/add/", {"upload": upload_file, "kind": "customers", "dry_run": ""})
    assert page.status_code == 200 and "line 402" in page.content.decode()
    assert ImportJob.objects.count() == 0 and list((tmp_path / "uploads").iterdir()) == []


def test_a_long_file_name_in_a_non_latin_script_is_stored_and_its_error_file_written(tmp_path, supervisor_api):
    """The name was cut to 80 characters, but a file system allows 255 bytes: 3 a character here."""
    name = "顧" * 76 + ".csv"

    job = upload_run(supervisor_api, MIXED, name=name)

    assert job.status == "done" and counts(job) == (1, 0, 0, 1)
    assert job.file_name == name
    assert Path(job.error_path).exists()


def test_an_import_stopped_with_ctrl_c_is_not_finished_by_the_workers(tmp_path, settings):
    """The operator stopped it: the sweep must not hand the rest of the file to a worker."""
    settings.CRM_IMPORT_BATCH = 2
    path = write(tmp_path, "many.csv", "external_ref,display_name\n" + "".join(f"R-{n},P\n" for n in range(8)))
    job = queued(path)
    batches = []

    def ctrl_c_after_the_first_batch(current):
        batches.append(current.last_line)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        imports.import_run(job.pk, progress=ctrl_c_after_the_first_batch)

    job.refresh_from_db()
    assert job.status == "failed" and "Ctrl-C" in job.failure
    assert job.created == 2
    assert job.pk not in imports.imports_stalled(now=timezone.now() + dt.timedelta(hours=1))


def test_an_error_file_download_under_way_survives_the_purge(tmp_path, supervisor_api):
    job = upload_run(supervisor_api, MIXED)
    response = supervisor_api.get(f"/api/v1/imports/{job.pk}/errors")
    ImportJob.objects.filter(pk=job.pk).update(finished_at=timezone.now() - dt.timedelta(days=30))
    assert imports.imports_purge() == 1

    body = b"".join(response.streaming_content).decode()

    assert [line.split(",")[0] for line in body.splitlines()] == ["external_ref", "B-1"]


def test_the_command_stopped_with_ctrl_c_says_what_loaded_and_how_to_load_the_rest(tmp_path, settings, monkeypatch):
    from crm.management.commands import _import

    settings.CRM_IMPORT_BATCH = 2
    path = write(tmp_path, "many.csv", "external_ref,display_name\n" + "".join(f"R-{n},P\n" for n in range(8)))

    class BarWithCtrlC(_import.tqdm):
        def update(self, n=1):
            raise KeyboardInterrupt

    monkeypatch.setattr(_import, "tqdm", BarWithCtrlC)
    out = io.StringIO()

    with pytest.raises(CommandError, match=r"(?i)import the file again to load the rest"):
        call_command("import_customers", str(path), "--no-progress", stdout=out)

    assert out.getvalue().startswith("2 rows read: 2 were created")
    assert ImportJob.objects.get().status == "failed"
