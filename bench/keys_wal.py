"""WAL written per contact insert: UUIDv4 vs UUIDv7 keys, B-tree vs BRIN on started_at, partial indexes.

Issue 14. Every screen-pop lookup appends one interaction. With random keys each insert
lands on a random leaf of the primary key's index, and the first change to a page after
a checkpoint writes the whole 8 kB page to the WAL; with time-ordered keys inserts share
the right-hand leaf. The same goes for a B-tree on started_at against a BRIN.

On its own PostgreSQL cluster (initdb on a free port, stopped at the end), so the WAL
counted is only this run's: a table with crm_interaction's indexes (key, agent,
reason, case, customer, time, call_id; ~200 bytes of text) prefilled with --rows rows, then a CHECKPOINT and
--inserts single-row transactions, as lookups do. Prints WAL bytes per insert.

    python -m bench.keys_wal --rows 2000000 --inserts 20000
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
import uuid

import psycopg
from uuid_utils.compat import uuid7

from tests.own_services import OwnPostgres

# Indexes of crm_interaction that every lookup's insert writes, as on main before issue 14.
BEFORE_INDEXES = [
    "(agent_id)",
    "(reason_id)",
    "(case_id, started_at)",
    "(customer_id, reason_id, started_at)",
    "(customer_id, started_at DESC)",
    "(started_at)",
]
PARTIAL = [
    "(agent_id)",
    "(reason_id) WHERE reason_id IS NOT NULL",
    "(case_id, started_at) WHERE case_id IS NOT NULL",
    "(customer_id, reason_id, started_at) WHERE reason_id IS NOT NULL",
    "(customer_id, started_at DESC)",
    "USING brin (started_at)",
]
VARIANTS = {
    # name: (key function, indexes besides the primary key and the call_id constraint)
    "UUIDv4 key, B-tree on started_at (before)": (uuid.uuid4, BEFORE_INDEXES),
    "UUIDv7 key, B-tree on started_at": (uuid7, BEFORE_INDEXES),
    "UUIDv7 key, BRIN on started_at": (uuid7, [*BEFORE_INDEXES[:-1], "USING brin (started_at)"]),
    "UUIDv7, BRIN, case and reason indexes without the NULLs a new contact has (after)": (uuid7, PARTIAL),
}


def table_create(conn, name: str, indexes: list[str]) -> None:
    conn.execute(
        f"CREATE TABLE {name} (id uuid PRIMARY KEY, customer_id uuid, agent_id int, reason_id int, case_id uuid,"
        " started_at timestamptz, source text, call_id text, note text)"
    )
    conn.execute(f"CREATE UNIQUE INDEX ON {name} (source, call_id) WHERE call_id IS NOT NULL")
    for index in indexes:
        conn.execute(f"CREATE INDEX ON {name} {index}")


def table_fill(conn, name: str, key, rows: int, start: dt.datetime) -> None:
    """Rows in time order over the past, as a history appended over years: most coded, a tenth on a case."""
    step = (dt.datetime.now(dt.UTC) - start) / rows
    customers = [uuid.uuid4() for _ in range(max(rows // 10, 1))]
    cases = [uuid.uuid4() for _ in range(max(rows // 100, 1))]
    columns = "id, customer_id, agent_id, reason_id, case_id, started_at, source, call_id, note"
    with conn.cursor().copy(f"COPY {name} ({columns}) FROM STDIN") as copy:
        for n in range(rows):
            copy.write_row((
                key(), customers[n * 7919 % len(customers)], n % 50, n % 12 if n % 5 else None,
                cases[n % len(cases)] if n % 10 == 0 else None, start + step * n, "contact", f"past-{n}", "x" * 200,
            ))  # fmt: skip
    conn.execute(f"VACUUM ANALYZE {name}")


def wal_lsn(conn) -> int:
    return conn.execute("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn").fetchone()[0]


def inserts_measure(conn, name: str, key, inserts: int) -> tuple[float, float]:
    """WAL bytes and wall microseconds per single-row transaction, after a checkpoint."""
    conn.execute("CHECKPOINT")
    before, started = wal_lsn(conn), time.perf_counter()
    for _ in range(inserts):
        with conn.transaction():
            conn.execute(
                f"INSERT INTO {name} (id, customer_id, agent_id, started_at, source, call_id, note)"
                " VALUES (%s, %s, 7, now(), 'contact', %s, %s)",
                (key(), uuid.uuid4(), uuid.uuid4().hex, "x" * 200),
                prepare=True,
            )
    return (wal_lsn(conn) - before) / inserts, (time.perf_counter() - started) * 1e6 / inserts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows in the table before the inserts")
    parser.add_argument("--inserts", type=int, default=20_000, help="single-row transactions measured")
    args = parser.parse_args()

    cluster = OwnPostgres()
    try:
        with psycopg.connect(cluster.url, autocommit=True) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
            buffers = conn.execute("SHOW shared_buffers").fetchone()[0]
            print(f"PostgreSQL {version} (own cluster, shared_buffers {buffers}), {args.rows:,} rows before, "
                  f"{args.inserts:,} single-row inserts after a CHECKPOINT\n")  # fmt: skip
            print("| keys and index | WAL bytes per insert | wall per insert |")
            print("| --- | ---: | ---: |")
            start = dt.datetime.now(dt.UTC) - dt.timedelta(days=3 * 365)
            for n, (label, (key, indexes)) in enumerate(VARIANTS.items()):
                name = f"contact_{n}"
                table_create(conn, name, indexes)
                table_fill(conn, name, key, args.rows, start)
                wal, wall = inserts_measure(conn, name, key, args.inserts)
                print(f"| {label} | {wal:,.0f} | {wall:,.0f} µs |", flush=True)
                conn.execute(f"DROP TABLE {name}")
    finally:
        cluster.close()


if __name__ == "__main__":
    main()
