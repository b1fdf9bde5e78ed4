"""Issue 15: every index on the tables that imports and lookups write earns its write.

No index repeats another (a duplicate, or a left prefix of one that also serves its reads),
and the foreign keys that are NULL on nearly every row are indexed without the NULLs;
their reads and the foreign key checks still use those indexes, with the generic plan too.
"""

import os
import subprocess
import sys
import uuid

import psycopg
import pytest
from django.db import connection, models

from crm import imports
from crm.models import AccessAudit, Customer, Fact, Identity, Interaction, Preference
from tests.integration.test_lookup_cost import assert_indexed, explain

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

WRITTEN = (AccessAudit, Customer, Fact, Identity, Interaction, Preference)

# Foreign keys NULL on nearly every row (an imported or IVR-only contact has no agent, few
# customers are merged, ...): each one's index leaves the NULLs out, so a row without the
# key writes nothing to it, and every read of it names a key, which implies NOT NULL.
MOSTLY_NULL = {
    (Interaction, "agent"): "interaction_agent_idx",
    (Customer, "merged_into"): "customer_merged_into_idx",
    (Identity, "verified_by"): "identity_verified_by_idx",
    (Fact, "interaction"): "fact_interaction_idx",
    (Fact, "recorded_by"): "fact_recorded_by_idx",
    (Preference, "interaction"): "preference_interaction_idx",
    (Preference, "recorded_by"): "preference_recorded_by_idx",
    (AccessAudit, "interaction"): "audit_interaction_idx",
}

# Per index: its key columns (or expressions) with operator class, collation and order, its
# INCLUDE columns and its predicate, read from the catalog as PostgreSQL sees them.
_INDEXES_SQL = """
SELECT t.relname, i.relname, am.amname, x.indisunique,
       ARRAY(SELECT pg_get_indexdef(x.indexrelid, k, true) FROM generate_series(1, x.indnkeyatts) k),
       ARRAY(SELECT pg_get_indexdef(x.indexrelid, k, true) FROM generate_series(x.indnkeyatts + 1, x.indnatts) k),
       x.indclass::oid[], x.indcollation::oid[], x.indoption::int2[],
       pg_get_expr(x.indpred, x.indrelid, true)
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_am am ON am.oid = i.relam
WHERE t.relname = ANY(%s) AND pg_table_is_visible(t.oid)
"""
# indoption bits: DESC and NULLS FIRST. A B-tree read backwards serves the order with both flipped.
_DESC_NULLS_FIRST = 3


def indexes(tables):
    with connection.cursor() as cursor:
        cursor.execute(_INDEXES_SQL, [list(tables)])
        rows = cursor.fetchall()
    return [
        {
            "table": table,
            "name": name,
            "method": method,
            "unique": unique,
            "keys": list(zip(keys, opclasses, collations, strict=True)),
            "options": list(options[: len(keys)]),
            "included": set(included),
            "predicate": predicate,
        }
        for table, name, method, unique, keys, included, opclasses, collations, options, predicate in rows
    ]


def serves_all_of(wider, index) -> bool:
    """Whether `wider` answers every read and enforces every rule `index` does, so `index` only costs writes."""
    n = len(index["keys"])
    if wider["table"] != index["table"] or wider["method"] != index["method"] or wider["name"] == index["name"]:
        return False
    same_keys = wider["keys"] == index["keys"]
    # Only a B-tree serves a read on the leading columns of a longer key.
    prefix = index["method"] == "btree" and wider["keys"][:n] == index["keys"]
    if not (same_keys or prefix):
        return False
    if index["method"] == "btree" and n:
        ordered = wider["options"][:n]
        if ordered != index["options"] and ordered != [o ^ _DESC_NULLS_FIRST for o in index["options"]]:
            return False
    # Same rows: a full index holds a partial one's rows, but reading them through it also reads
    # every row the partial one leaves out; a partial one lacks rows the full one's reads need.
    if wider["predicate"] != index["predicate"]:
        return False
    # An index-only scan of this one would need its INCLUDE columns.
    if not index["included"] <= {key for key, _, _ in wider["keys"]} | wider["included"]:
        return False
    # A unique index enforces a rule a longer or non-unique one does not.
    return not index["unique"] or (wider["unique"] and same_keys)


def test_no_index_on_the_written_tables_repeats_another():
    found = indexes(model._meta.db_table for model in WRITTEN)
    assert {i["table"] for i in found} == {model._meta.db_table for model in WRITTEN}

    redundant = sorted(
        f"{index['table']}.{index['name']} (served by {wider['name']})"
        for index in found
        for wider in found
        if serves_all_of(wider, index)
    )

    assert redundant == [], "indexes that only cost writes: " + ", ".join(redundant)


def test_the_redundancy_check_tells_a_prefix_and_a_partial_index_apart():
    """The rule above, on shapes this schema has: a full index on the leading column of a
    partial unique one (crm_fact.customer_id beside one_current_fact_per_key) is not redundant."""
    btree = {"table": "t", "method": "btree", "unique": False, "included": set(), "predicate": None}
    customer = ("customer_id", 1, 0)
    single = {**btree, "name": "by_customer", "keys": [customer], "options": [0]}
    longer = {**btree, "name": "by_customer_key", "keys": [customer, ("key", 1, 100)], "options": [0, 3]}
    partial_unique = {**longer, "name": "one_current", "unique": True, "predicate": "is_current"}

    assert serves_all_of(longer, single)
    assert serves_all_of({**longer, "options": [3, 0]}, single)  # read backwards
    assert not serves_all_of(partial_unique, single)  # history: the rows it leaves out
    assert not serves_all_of(longer, {**single, "predicate": "status = 'sending'"})  # the few rows it holds
    assert not serves_all_of(longer, {**single, "unique": True})  # a rule the longer one does not keep
    assert serves_all_of(partial_unique, {**longer, "predicate": "is_current"})
    assert not serves_all_of({**longer, "method": "brin"}, single)


def test_foreign_keys_null_on_nearly_every_row_are_indexed_without_the_nulls():
    found = indexes(model._meta.db_table for model in WRITTEN)
    for (model, field), name in MOSTLY_NULL.items():
        table, column = model._meta.db_table, model._meta.get_field(field).column
        leading = {i["name"]: i["predicate"] for i in found if i["table"] == table and i["keys"][0][0] == column}
        assert leading == {name: f"{column} IS NOT NULL"}, (table, column, leading)


def indexes_used(sql, params, *, generic):
    """Index names in the plan of a read every table of which an index must serve."""
    nodes = explain(sql, params, generic=generic)
    assert_indexed(nodes)
    return {n.get("Index Name") for n in nodes}


@pytest.mark.parametrize("generic", [False, True])
def test_an_agents_contacts_and_a_customers_merged_duplicates_are_read_through_the_partial_indexes(
    generic, jim, alice, sam
):
    for queryset, index in (
        (Interaction.objects.filter(agent=alice), "interaction_agent_idx"),
        # Django's SET_NULL when users are deleted; a team's contacts (admin filter, reports): a join.
        (Interaction.objects.filter(agent__in=[alice, sam]), "interaction_agent_idx"),
        (Interaction.objects.filter(agent__staff_profile__team_id=1), "interaction_agent_idx"),
        (Customer.objects.filter(merged_into_id=jim.pk), "customer_merged_into_idx"),
        (Customer.objects.filter(merged_into__in=[jim.pk, uuid.uuid4()]), "customer_merged_into_idx"),
    ):
        sql, params = queryset.values_list("pk").query.sql_with_params()
        assert index in indexes_used(sql, params, generic=generic), (str(queryset.query), generic)


@pytest.mark.parametrize("generic", [False, True])
@pytest.mark.parametrize(("model", "field"), list(MOSTLY_NULL))
def test_deleting_the_referenced_row_checks_through_the_partial_index(model, field, generic):
    """The foreign key's own check when a referenced row is deleted: the statement PostgreSQL's
    referential trigger prepares (an equality on the column, planned once for every value)."""
    key = model._meta.get_field(field)
    table, column = model._meta.db_table, key.column
    # A value of the key's type (the plan does not depend on which).
    value = uuid.uuid4() if isinstance(key.target_field, models.UUIDField) else 1
    sql = f"SELECT 1 FROM ONLY {table} x WHERE %s OPERATOR(pg_catalog.=) {column} FOR KEY SHARE OF x"  # noqa: S608
    assert MOSTLY_NULL[model, field] in indexes_used(sql, [value], generic=generic)


@pytest.mark.parametrize("generic", [False, True])
def test_a_contact_import_finds_the_customers_it_has_audited_through_its_own_index(generic):
    """contacts_audit's check (has this import audited this customer?) finds the answer in
    audit_import_idx's entries, customer and job: no other import's row fetched to read its job."""
    with connection.cursor() as cursor:
        cursor.execute(imports.STAGE_CREATE)
    check = imports.CONTACTS_AUDIT[imports.CONTACTS_AUDIT.index("SELECT %(now)s") :]
    params = {"now": "2026-12-07T00:00:00Z", "actor": None, "action": "update", "job": str(uuid.uuid4())}
    nodes = explain(check, params, generic=generic)
    [probe] = [n for n in nodes if n.get("Index Name") == "audit_import_idx"]
    # One probe per customer, whatever the planner expects of this import's rows (not all of them hashed).
    assert "customer_id = t.customer_id" in probe.get("Index Cond", ""), probe
    assert "(detail ->> 'import'::text) =" in probe["Index Cond"], probe
    assert "Filter" not in probe, probe
    # The batch's own customers are read whole; everything else through an index.
    assert [n["Relation Name"] for n in nodes if n["Node Type"] == "Seq Scan"] == ["crm_import_touched"]


def _imported(tmp_path, kind: str, text: str):
    path = tmp_path / f"{kind}.csv"
    path.write_text(text, encoding="utf-8")
    return imports.import_run(imports.import_job_create(actor=None, kind=kind, path=path, file_name=path.name).pk)


def test_a_customer_imports_audit_rows_stay_out_of_audit_import_idx(tmp_path):
    """A customer import audits each customer it writes (a row per line) and never reads them back:
    after a customer import and a contact import, the index holds the contact import's rows only."""
    customers = _imported(tmp_path, "customers", "external_ref,display_name\nC-1,Ada\nC-2,Bob\n")
    contacts = _imported(
        tmp_path, "interactions", "external_id,customer_ref,started_at\nX-1,C-1,2024-01-01T00:00:00Z\n"
    )
    [predicate] = [i["predicate"] for i in indexes(["crm_accessaudit"]) if i["name"] == "audit_import_idx"]
    held = f"SELECT customer_id, detail ->> 'import' FROM crm_accessaudit WHERE {predicate}"  # noqa: S608
    assert "audit_import_idx" in indexes_used(held, [], generic=False)  # its entries, each once

    with connection.cursor() as cursor:
        cursor.execute(held)
        rows = cursor.fetchall()

    assert AccessAudit.objects.filter(detail__import=str(customers.pk)).count() == 2
    assert rows == [(Customer.objects.get(external_ref="C-1").pk, str(contacts.pk))]


@pytest.mark.django_db(transaction=True)
def test_the_migration_drops_the_indexes_and_leaves_the_foreign_keys_alone(tmp_path):
    """Django would drop each altered foreign key and add it back, checking every row again under
    lock; 0021 only drops the index. The constraints keep their identity (oid) across it."""
    params = connection.get_connection_params()
    scratch = f"{connection.settings_dict['NAME']}_mig21"
    login = params.get("user") or "postgres"
    if params.get("password"):
        login += f":{params['password']}"
    url = f"postgres://{login}@{params.get('host') or '127.0.0.1'}:{params.get('port') or 5432}/{scratch}"
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{scratch}"')
        cursor.execute(f'CREATE DATABASE "{scratch}"')
    env = {**os.environ, "DATABASE_URL": url}

    def migrate(target: str) -> None:
        command = [sys.executable, "manage.py", "migrate", "crm", target, "-v", "0"]
        subprocess.run(command, env=env, check=True, capture_output=True, timeout=180)

    def foreign_keys() -> dict:
        with psycopg.connect(url) as conn:
            rows = conn.execute(
                "SELECT conname, oid FROM pg_constraint WHERE contype = 'f' AND conrelid::regclass::text = ANY(%s)",
                [[model._meta.db_table for model in WRITTEN]],
            ).fetchall()
        return dict(rows)

    try:
        migrate("0020")
        before = foreign_keys()
        migrate("0021")
        after = foreign_keys()
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')

    assert before and after == before


@pytest.mark.django_db(transaction=True)
def test_the_index_migrations_run_again_after_a_build_was_interrupted(tmp_path):
    """CREATE INDEX CONCURRENTLY that fails or is cancelled leaves its index behind, invalid.
    0021 and 0022 run again over such a leftover: it is dropped and built afresh, not reported
    as "already exists" (nor, with IF NOT EXISTS, kept invalid for good)."""
    params = connection.get_connection_params()
    scratch = f"{connection.settings_dict['NAME']}_rerun"
    login = params.get("user") or "postgres"
    url = f"postgres://{login}@{params.get('host') or '127.0.0.1'}:{params.get('port') or 5432}/{scratch}"
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{scratch}"')
        cursor.execute(f'CREATE DATABASE "{scratch}"')
    env = {**os.environ, "DATABASE_URL": url}

    def migrate(*target: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "manage.py", "migrate", "crm", *target, "-v", "0"]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)

    try:
        assert migrate("0020").returncode == 0
        with psycopg.connect(url, autocommit=True) as conn:
            for name in ("interaction_agent_idx", "audit_import_idx"):  # 0021's and 0022's
                # A unique build over duplicates fails after creating its index: the interrupted build.
                with pytest.raises(psycopg.errors.UniqueViolation):
                    conn.execute(f'CREATE UNIQUE INDEX CONCURRENTLY "{name}" ON django_migrations ((1))')
            leftovers = conn.execute("SELECT count(*) FROM pg_index WHERE NOT indisvalid").fetchone()[0]
        assert leftovers == 2

        done = migrate()

        assert done.returncode == 0, done.stderr[-2000:]
        with psycopg.connect(url) as conn:
            invalid = conn.execute("SELECT count(*) FROM pg_index WHERE NOT indisvalid").fetchone()[0]
            tables = dict(
                conn.execute(
                    "SELECT indexrelid::regclass::text, indrelid::regclass::text FROM pg_index "
                    "WHERE indexrelid::regclass::text IN ('interaction_agent_idx', 'audit_import_idx')"
                ).fetchall()
            )
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')

    assert invalid == 0
    assert tables == {"interaction_agent_idx": "crm_interaction", "audit_import_idx": "crm_accessaudit"}


def test_the_possible_duplicate_lookup_probes_each_kind_with_its_own_values():
    """PostgreSQL 15 probes `kind = ANY(...) AND normalized = ANY(...)` with every kind and every
    value: a phone was looked for among e-mails too. Each kind's values go with it: half the probes
    (a batch of 2,000 phones and 1,000 e-mails: 25-28 ms -> 6-13 ms at 100,000 customers)."""
    from django.db import connection as conn
    from django.test.utils import CaptureQueriesContext

    customers = Customer.objects.bulk_create(Customer(display_name=f"C {n}") for n in range(300))
    Identity.objects.bulk_create(
        Identity(customer=c, kind=kind, value=value, normalized=value)
        for n, c in enumerate(customers)
        for kind, value in (("phone", f"+1212555{n:04d}"), ("email", f"c{n}@example.com"))
    )
    with conn.cursor() as cursor:
        cursor.execute("ANALYZE crm_identity")  # the plan an import's batches get, not an empty table's
    wanted = {("phone", "+12125550100"), ("phone", "+12125550101"), ("email", "ada@example.com")}
    with CaptureQueriesContext(conn) as captured:
        imports._holders(wanted)
    [query] = captured.captured_queries
    nodes = explain(query["sql"], None)
    scans = [n for n in nodes if n.get("Index Name") == "identity_lookup_idx"]

    assert_indexed(nodes)
    conditions = sorted(n["Index Cond"] for n in scans)
    assert len(conditions) == 2, nodes
    assert "'email'" in conditions[0] and "'phone'" not in conditions[0]
    assert "'phone'" in conditions[1] and "'email'" not in conditions[1]
    found = imports._holders({("phone", "+12125550007"), ("email", "c8@example.com"), ("email", "+12125550009")})
    assert found == {("phone", "+12125550007"): {customers[7].pk}, ("email", "c8@example.com"): {customers[8].pk}}
