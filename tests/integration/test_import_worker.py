"""An import on a real Celery worker that is killed mid-file resumes after the last committed batch.

The test starts its own workers on a queue of its own (so the suite's other worker never
takes the job), SIGKILLs the first one while the file is half loaded, and hands the job to a
second one the way the sweep does (publishing it again once the first runner's claim is stale).
"""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from django.utils import timezone

from crm import imports
from crm.models import ImportJob, Interaction
from crm.queue import task_get
from tests.factories import CustomerFactory
from tests.fixtures.workers import worker_start, worker_stop
from tests.integration.test_worker import install_roles_and_reasons

pytestmark = [pytest.mark.worker, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROWS = 12_000
BATCH = 200


def start_worker(queue: str, log: Path) -> subprocess.Popen:
    # Two connections: the batches commit in file order from two lanes, and the kill lands among them.
    env = {"CRM_IMPORT_BATCH": str(BATCH), "CRM_IMPORT_STALE_SECONDS": "2", "CRM_IMPORT_CONNECTIONS": "2"}
    return worker_start(log, "-Q", queue, "--concurrency", "1", "--pool", "solo", name="import", env=env)


def wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"Timed out waiting for {what}")


def test_a_worker_killed_mid_file_leaves_the_rest_to_another_and_no_row_is_loaded_twice(tmp_path):
    install_roles_and_reasons()
    for n in range(20):
        CustomerFactory(display_name=f"Customer {n}", external_ref=f"C-{n}")
    path = tmp_path / "history.csv"
    with path.open("w") as f:
        f.write("external_id,customer_ref,channel,started_at,reason,summary,outcome\n")
        for n in range(ROWS):
            f.write(f"X-{n},C-{n % 20},phone,2024-01-01T00:00:00Z,billing,contact {n},resolved\n")
    job = imports.import_job_create(actor=None, kind="interactions", path=path, file_name=path.name)
    queue = f"imports-test-{uuid.uuid4().hex[:8]}"
    task = task_get("crm.import_run")
    workers: list[subprocess.Popen] = []
    try:
        workers.append(start_worker(queue, tmp_path / "first.log"))
        task.apply_async(args=[str(job.pk)], queue=queue)
        wait_for(lambda: ImportJob.objects.get(pk=job.pk).rows_done >= 5 * BATCH, 60, "the first batches")
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait(timeout=10)
        killed = ImportJob.objects.get(pk=job.pk)
        assert killed.status == "running" and 0 < killed.rows_done < ROWS, "the kill must land mid-file"
        assert Interaction.objects.filter(external_id__isnull=False).count() == killed.created

        # What the sweep does once the dead runner's claim is stale: publish the job again.
        ImportJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - dt.timedelta(seconds=5))
        workers.append(start_worker(queue, tmp_path / "second.log"))
        task.apply_async(args=[str(job.pk)], queue=queue)
        done = wait_for(lambda: ImportJob.objects.filter(pk=job.pk, status="done").first(), 120, "the import to finish")
    finally:
        for worker in workers:
            worker_stop(worker)

    assert (done.created, done.unchanged, done.rejected, done.rows_done) == (ROWS, 0, 0, ROWS)
    assert done.last_line == ROWS + 1
    assert Interaction.objects.filter(external_id__isnull=False).count() == ROWS
    assert done.runner != killed.runner
