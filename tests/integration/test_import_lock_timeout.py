"""A real lock timeout in a lane, on PostgreSQL: the job is handed back, not failed, and the next
run loads the rest, every line once.

A supervisor's merge or an agent's edit holds a customer's row (`FOR UPDATE`) longer than a lane's
`lock_timeout` (half of CRM_IMPORT_STALE_SECONDS); the contact batch's foreign-key check on that
customer waits for it and times out (SQLSTATE 55P03). Outside a test transaction: the lanes and
the holder are connections of their own.
"""

from __future__ import annotations

import psycopg
import pytest
from django.db import OperationalError, connection

from crm import imports
from crm.models import ImportJob, Interaction
from tests.factories import CustomerFactory
from tests.integration.test_worker import install_roles_and_reasons

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_a_lane_that_times_out_on_a_held_customer_hands_the_job_back_and_the_next_run_finishes_it(tmp_path, settings):
    settings.CRM_IMPORT_BATCH = 50
    settings.CRM_IMPORT_STALE_SECONDS = 2  # lock_timeout 1 s
    settings.CRM_IMPORT_CONNECTIONS = 2
    install_roles_and_reasons()
    customers = [CustomerFactory(display_name=f"Customer {n}", external_ref=f"C-{n}") for n in range(5)]
    path = tmp_path / "history.csv"
    with path.open("w") as f:
        f.write("external_id,customer_ref,channel,started_at,reason\n")
        for n in range(400):  # C-4 first appears at line 301: the batches before it commit
            f.write(f"X-{n},C-{n % 4 if n < 298 else n % 5},phone,2024-01-01T00:00:00Z,billing\n")
    job = imports.import_job_create(actor=None, kind="interactions", path=path, file_name=path.name)
    params = connection.get_connection_params()
    dsn = psycopg.conninfo.make_conninfo(
        **{k: v for k, v in params.items() if k in ("dbname", "user", "password", "host", "port") and v}
    )

    with psycopg.connect(dsn) as holder:  # an open transaction holding C-4's row
        holder.execute("SELECT 1 FROM crm_customer WHERE id = %s FOR UPDATE", [customers[4].pk])
        with pytest.raises(OperationalError, match="lock timeout"):
            imports.import_run(job.pk)
        handed_back = ImportJob.objects.get(pk=job.pk)
        holder.rollback()

    assert (handed_back.status, handed_back.runner, handed_back.failure) == ("queued", "", "")
    assert 0 < handed_back.last_line < 300

    done = imports.import_run(job.pk)

    assert done.status == "done" and done.created == 400 and done.rejected == 0
    assert Interaction.objects.filter(external_id__startswith="X-").count() == 400
