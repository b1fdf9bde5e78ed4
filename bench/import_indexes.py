"""Issue 15: what COPYing imported rows into crm_identity and crm_interaction costs, with the indexes of
migration 0020 (before) and 0021 (duplicates dropped, mostly-NULL foreign keys indexed without NULLs).

On its own PostgreSQL cluster (initdb on a free port, stopped at the end), so the WAL counted is only
this run's. One database is migrated to crm 0020 and filled with base rows (--customers customers,
1.5 identities and 3 contacts each, a fifth of the contacts with an agent); a copy of it is migrated
to 0021. Then, alternating between the two, --repeat times: a CHECKPOINT, and --rows rows COPYed in
one transaction (the deferred foreign key checks run at its commit), timed, with the WAL they wrote.

    python -m bench.import_indexes --customers 1000000 --rows 100000
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from uuid_utils.compat import uuid7

from tests.own_services import OwnPostgres

ROOT = Path(__file__).resolve().parents[1]
AGENTS = 50
CHANNELS = ["phone", "phone", "phone", "chat", "email", "sms"]
OUTCOMES = ["resolved", "unresolved", "follow_up", "transferred"]
IDENTITY_COLUMNS = "customer_id, kind, value, normalized, verified_at, source, created_at"
INTERACTION_COLUMNS = (
    "id, customer_id, channel, started_at, ended_at, agent_id, reason_id, summary, outcome,"
    " identifiers, verified, ivr, source, external_id, created_at"
)
TABLES = ("crm_identity", "crm_interaction")

# Base rows, made by the server: the agents, customers, their identities and contacts.
FILL_SQL = [
    """INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff, is_active,
                              date_joined)
       SELECT '!', false, 'agent' || n, '', '', '', false, true, now() FROM generate_series(1, %(agents)s) n""",
    """INSERT INTO crm_contactreason (code, label, active)
       SELECT 'reason' || n, 'Reason ' || n, true FROM generate_series(1, 12) n""",
    """INSERT INTO crm_customer (id, display_name, preferred_name, language, timezone, tier, created_at, updated_at,
                                 external_ref)
       SELECT gen_random_uuid(), 'Customer ' || n, '', 'en', '', 'standard', now(), now(), 'R' || n
       FROM generate_series(1, %(customers)s) n""",
    """INSERT INTO crm_identity (customer_id, kind, value, normalized, source, created_at)
       SELECT id, 'phone', '+1212' || lpad((row_number() OVER ())::text, 7, '0'),
              '+1212' || lpad((row_number() OVER ())::text, 7, '0'), 'import', now()
       FROM crm_customer""",
    """INSERT INTO crm_identity (customer_id, kind, value, normalized, source, created_at)
       SELECT id, 'email', 'c' || external_ref || '@example.com', 'c' || lower(external_ref) || '@example.com',
              'import', now()
       FROM crm_customer WHERE hashtext(external_ref) %% 2 = 0""",
    """INSERT INTO crm_interaction (id, customer_id, channel, started_at, agent_id, reason_id, summary, outcome,
                                    identifiers, verified, ivr, source, external_id, created_at)
       SELECT crm_uuid7(), c.id, 'phone', now() - (random() * interval '1000 days'),
              CASE WHEN random() < 0.2 THEN (SELECT min(id) FROM auth_user) + floor(random() * %(agents)s)::int END,
              CASE WHEN random() < 0.6 THEN (SELECT min(id) FROM crm_contactreason) + floor(random() * 12)::int END,
              'Contact about the account', 'resolved', '{}', '[]', '{}', 'import', c.external_ref || '-' || k, now()
       FROM crm_customer c CROSS JOIN generate_series(1, 3) k""",
]


def manage(url: str, *args: str) -> float:
    """Run manage.py against the bench's database; seconds it took."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "manage.py", *args, "-v0"], cwd=ROOT, check=True,
        env={**os.environ, "DATABASE_URL": url},
    )  # fmt: skip
    return time.perf_counter() - started


def copy_text(rows: list[tuple]) -> bytes:
    r"""COPY's text format: tab-separated, \N for NULL (the values hold no tab, newline or backslash)."""
    out = io.StringIO()
    for row in rows:
        out.write("\t".join(r"\N" if v is None else str(v) for v in row) + "\n")
    return out.getvalue().encode()


def identity_rows(conn, n: int, run: str, rnd: random.Random) -> bytes:
    """Imported identities of existing customers, never verified (verified_by NULL, as the import leaves it)."""
    customers = [r[0] for r in conn.execute("SELECT id FROM crm_customer ORDER BY random() LIMIT %s", [n])]
    now = dt.datetime.now(dt.UTC)
    rows = []
    for i in range(n):
        kind = "phone" if i % 2 else "email"
        value = f"+1313{run}{i:07d}" if kind == "phone" else f"x{run}.{i}@example.com"
        rows.append((customers[i % len(customers)], kind, value, value, None, "import", now))
    rnd.shuffle(rows)
    return copy_text(rows)


def interaction_rows(conn, n: int, run: str, rnd: random.Random) -> bytes:
    """Imported contacts of existing customers: most without an agent, 60 % coded, time-ordered keys."""
    customers = [r[0] for r in conn.execute("SELECT id FROM crm_customer ORDER BY random() LIMIT %s", [n])]
    agents = [r[0] for r in conn.execute("SELECT id FROM auth_user ORDER BY id")]
    reasons = [r[0] for r in conn.execute("SELECT id FROM crm_contactreason ORDER BY id")]
    now = dt.datetime.now(dt.UTC)
    rows = []
    for i in range(n):
        started = now - dt.timedelta(minutes=rnd.randrange(1_440_000))
        rows.append((
            uuid7(), rnd.choice(customers), rnd.choice(CHANNELS), started, started + dt.timedelta(minutes=7),
            rnd.choice(agents) if rnd.random() < 0.2 else None, rnd.choice(reasons) if rnd.random() < 0.6 else None,
            f"Imported contact {i} about the account", rnd.choice(OUTCOMES), "{}", "[]", "{}", "import",
            f"H{run}-{i}", now,
        ))  # fmt: skip
    return copy_text(rows)


def wal_lsn(conn) -> int:
    return int(conn.execute("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn").fetchone()[0])


def copy_measure(conn, table: str, columns: str, data: bytes) -> tuple[float, int]:
    """Milliseconds and WAL bytes of one COPY and its commit, after a checkpoint."""
    conn.execute("CHECKPOINT")
    before, started = wal_lsn(conn), time.perf_counter()
    with conn.transaction(), conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        copy.write(data)
    return (time.perf_counter() - started) * 1000, wal_lsn(conn) - before


def indexes(conn, table: str) -> list[str]:
    return [r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s ORDER BY 1", [table])]


def report(conns: dict[str, psycopg.Connection], args, rnd: random.Random) -> None:
    version = ""
    for conn in conns.values():
        conn.execute("VACUUM ANALYZE")
        version = conn.execute("SHOW server_version").fetchone()[0]
    counts = {t: conns["0020"].execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
    print(f"\nPostgreSQL {version} (own cluster, fsync off), base rows {counts}; {args.rows:,} rows per COPY "
          f"in one transaction after a CHECKPOINT, median of {args.repeat}, the schemas alternating\n")  # fmt: skip
    results: dict[tuple[str, str], list[tuple[float, int]]] = {}
    for run in range(args.repeat):
        for table, columns, make in (
            ("crm_identity", IDENTITY_COLUMNS, identity_rows),
            ("crm_interaction", INTERACTION_COLUMNS, interaction_rows),
        ):
            for name in ("0020", "0021") if run % 2 == 0 else ("0021", "0020"):
                data = make(conns[name], args.rows, f"{run}{name[-1]}", rnd)
                results.setdefault((table, name), []).append(copy_measure(conns[name], table, columns, data))
    print("| table | schema | indexes | ms per COPY (min-max) | WAL MB per COPY | µs per row | WAL bytes per row |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for (table, name), measured in sorted(results.items()):
        times = [m for m, _ in measured]
        ms, wal = statistics.median(times), statistics.median(w for _, w in measured)
        spread = f"{ms:,.0f} ({min(times):,.0f}-{max(times):,.0f})"
        print(f"| {table} | {name} | {len(indexes(conns[name], table))} | {spread} | {wal / 1e6:,.1f} "
              f"| {ms * 1000 / args.rows:,.1f} | {wal / args.rows:,.0f} |")  # fmt: skip
    for table in TABLES:
        for name, conn in conns.items():
            print(f"{table} {name}: {', '.join(indexes(conn, table))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000, help="base customers (3 contacts each)")
    parser.add_argument("--rows", type=int, default=100_000, help="rows per COPY")
    parser.add_argument("--repeat", type=int, default=3, help="COPYs per table and schema (the median is shown)")
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args()
    rnd = random.Random(args.seed)

    cluster = OwnPostgres()
    try:
        base = cluster.url.rsplit("/", 1)[0]
        urls = {"0020": f"{base}/bench_0020", "0021": f"{base}/bench_0021"}
        with psycopg.connect(cluster.url, autocommit=True) as admin:
            admin.execute("CREATE DATABASE bench_0020")
            manage(urls["0020"], "migrate", "crm", "0020")
            with psycopg.connect(urls["0020"], autocommit=True) as conn:
                started = time.perf_counter()
                for sql in FILL_SQL:
                    conn.execute(sql, {"agents": AGENTS, "customers": args.customers})
                conn.execute("VACUUM ANALYZE")
                print(f"Base rows made in {time.perf_counter() - started:.0f} s", flush=True)
            admin.execute("CREATE DATABASE bench_0021 TEMPLATE bench_0020")
        seconds = manage(urls["0021"], "migrate", "crm", "0021")
        print(f"Migrating the copy to 0021 took {seconds:.1f} s", flush=True)

        conns = {name: psycopg.connect(url, autocommit=True) for name, url in urls.items()}
        try:
            report(conns, args, rnd)
        finally:
            for conn in conns.values():
                conn.close()
    finally:
        cluster.close()


if __name__ == "__main__":
    main()
