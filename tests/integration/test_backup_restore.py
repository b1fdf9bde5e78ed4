"""The backup docs/operations.md describes, done for real: pg_dump of a seeded database,
pg_restore into a fresh one, and every table holds the same rows (and sequences go on
where they were, so the restored service does not reuse ids)."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import psycopg
import pytest
from django.apps import apps
from django.db import connection

from context.services import context_lookup
from tests.factories import CustomerFactory, FeedbackFactory, IdentityFactory, InteractionFactory, UserFactory


def pg_tool(name: str) -> str:
    """The client matching the server's major version when several are installed (Debian's layout)."""
    major = connection.cursor().connection.info.server_version // 10000
    candidate = Path(f"/usr/lib/postgresql/{major}/bin/{name}")
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: the backup procedure needs PostgreSQL's client tools")
    return found


def conninfo(dbname: str) -> str:
    settings = connection.settings_dict
    parts = {"host": settings["HOST"] or "127.0.0.1", "port": settings["PORT"] or "5432", "user": settings["USER"],
             "dbname": dbname}  # fmt: skip
    return " ".join(f"{key}={value}" for key, value in parts.items() if value)


def table_fingerprints(dbname: str, tables: list[str]) -> dict[str, tuple[int, str]]:
    with psycopg.connect(conninfo(dbname), password=connection.settings_dict["PASSWORD"] or None) as conn:
        return {
            table: conn.execute(
                f"SELECT count(*), md5(coalesce(string_agg(t::text, chr(10) ORDER BY t::text), '')) FROM \"{table}\" t"  # noqa: S608 - table names from Django's models
            ).fetchone()
            for table in tables
        }


def sequence_positions(dbname: str) -> dict[str, int]:
    with psycopg.connect(conninfo(dbname), password=connection.settings_dict["PASSWORD"] or None) as conn:
        return dict(conn.execute("SELECT sequencename, coalesce(last_value, 0) FROM pg_sequences").fetchall())


@pytest.mark.django_db(transaction=True)
def test_a_dump_of_a_seeded_database_restores_into_a_fresh_one_with_the_same_rows(tmp_path):
    agent = UserFactory(username="ana", role="agent")
    for n in range(5):
        customer = CustomerFactory(display_name=f"Customer {n}")
        IdentityFactory(customer=customer, kind="phone", value=f"+1212555{n:04d}", normalized=f"+1212555{n:04d}")
        InteractionFactory(customer=customer, agent=agent)
        FeedbackFactory(customer=customer, rating=1 + n % 5, text=f"feedback {n}")
    context_lookup(actor=agent, phone="+12125550003", call_id="call-restore-1")  # an interaction and its audit row

    source = connection.settings_dict["NAME"]
    scratch = f"{source}_restore_{uuid.uuid4().hex[:8]}"
    dump = tmp_path / "goldfish.dump"
    env = {**os.environ, "PGPASSWORD": connection.settings_dict["PASSWORD"] or ""}
    tables = sorted({model._meta.db_table for model in apps.get_models()} | {"django_migrations"})

    subprocess.run([pg_tool("pg_dump"), "--format=custom", f"--file={dump}", conninfo(source)],
                   check=True, env=env, capture_output=True)  # fmt: skip
    admin = psycopg.connect(conninfo("postgres"), password=connection.settings_dict["PASSWORD"] or None,
                            autocommit=True)  # fmt: skip
    try:
        admin.execute(f'CREATE DATABASE "{scratch}"')
        restored = subprocess.run(
            [pg_tool("pg_restore"), "--no-owner", "--exit-on-error", f"--dbname={conninfo(scratch)}", str(dump)],
            env=env, capture_output=True, text=True,
        )  # fmt: skip
        assert restored.returncode == 0, restored.stderr

        original, copy = table_fingerprints(source, tables), table_fingerprints(scratch, tables)
        assert copy == original
        assert original["crm_customer"][0] == 5 and original["crm_accessaudit"][0] >= 1
        assert sequence_positions(scratch) == sequence_positions(source)
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
        admin.close()
