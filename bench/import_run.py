"""Bulk import benchmark: generate files, import them with the real commands, print rows/s, CPU and memory.

    python -m bench.import_run --customers 1000000 --own-postgres [--pg-settings tuned]
    DATABASE_URL=postgres://.../goldfish_bench_import python -m bench.import_run --customers 1000000

Customers come in the lookup benchmark's mix: every one has a phone (about 8 % shared by a
household), half an e-mail, 30 % a fact and half a preference, so about 2.3 identities,
facts and preferences per customer; a third carry an account number. Interactions name their
customer by external_ref. Each file is imported twice: the second run finds every row
unchanged (the idempotency path); after the customers' two, the same customers with every
row's tier changed (the update path). Each import runs the real command in a child process
(bench/import_child.py), so its peak RSS is the command's own; CPU per row is the command's
process (all its threads) and the PostgreSQL server's (every backend the import's lanes open,
the WAL writer, the checkpointer): the figures to compare on a shared machine.

--own-postgres runs it on the bench's own cluster (bench/pgcluster.py: a data directory of its
own under var/bench-pg/, never the lookup benchmark's kept data set, which the import would
empty), with the settings docs/deployment.md recommends ("tuned") or initdb's ("default").
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from bench.pgcluster import PROFILES, BenchPostgres, settings_in_effect

ROOT = Path(__file__).resolve().parents[1]
REASONS = ["billing", "technical_fault", "payment", "outage", "complaint", "general"]
OUTCOMES = ["resolved", "unresolved", "follow_up", "transferred"]
CHANNELS = ["phone", "phone", "phone", "chat", "email", "sms"]
FIRST = ["James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "Aiko", "Kofi", "Rosa"]
LAST = ["Smith", "Johnson", "Garcia", "Walsh", "Okafor", "Nguyen", "Muller", "Oneil", "Kowalski", "Haddad"]


def customers_file(path: Path, n: int, seed: int, *, tiers_flipped: bool = False) -> None:
    """The customers; with `tiers_flipped` the same file with every row's tier changed (vip <-> standard)."""
    rnd = random.Random(seed)
    with path.open("w", encoding="utf-8") as f:
        f.write(
            "external_ref,display_name,preferred_name,tier,phone,email,account,fact:router_model,pref:contact_channel\n"
        )
        for i in range(n):
            household = i - 1 if i % 25 == 1 else i  # about 4 % pairs: 8 % of customers share a phone
            phone = f"+1212{5_000_000 + household % 4_999_999:07d}"
            first, last = rnd.choice(FIRST), rnd.choice(LAST)
            email = f"{first}.{last}{i}@example.com".lower() if i % 2 == 0 else ""
            account = f"GF{i:08d}" if i % 3 == 0 else ""
            fact = rnd.choice(["TP-Link AX55", "Fritzbox 7590", "Hub 6"]) if i % 10 < 3 else ""
            pref = rnd.choice(["email", "sms"]) if i % 2 == 1 else ""
            tier = "vip" if (i % 33 == 0) != tiers_flipped else "standard"
            name = f'"{first} {last}"'
            f.write(f"R{i},{name},{first if i % 4 == 0 else ''},{tier},{phone},{email},{account},{fact},{pref}\n")


def interactions_file(path: Path, n: int, customers: int, seed: int) -> None:
    rnd = random.Random(seed)
    with path.open("w", encoding="utf-8") as f:
        f.write("external_id,customer_ref,channel,started_at,reason,summary,outcome\n")
        for i in range(n):
            day = 1 + i % 28
            f.write(
                f"H{i},R{rnd.randrange(customers)},{rnd.choice(CHANNELS)},2025-{1 + i % 12:02d}-{day:02d}T"
                f"{8 + i % 10:02d}:{i % 60:02d}:00Z,{rnd.choice(REASONS)},Contact {i} about the account,"
                f"{rnd.choice(OUTCOMES)}\n"
            )


@dataclass
class Measured:
    seconds: float  # wall
    cpu: float  # the command's process (user + system)
    server_cpu: float | None  # the PostgreSQL server (every backend, WAL writer, checkpointer), when local
    rss_mb: int  # the command's peak
    report: str  # the report's first line


def run_import(command: str, path: Path) -> Measured:
    """Run one import in a child process (bench/import_child.py) and measure it."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "bench.import_child", command, str(path)],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    lines = done.stdout.splitlines()
    cpu = json.loads(lines[-1])
    return Measured(seconds, cpu["cpu"], cpu["server_cpu"], max(peak, before) // 1024, lines[0])


def per_row_us(seconds: float | None, rows: int) -> str:
    return "?" if seconds is None else f"{seconds / rows * 1e6:.0f}"


def reset(dsn: str) -> None:
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE crm_accessaudit, crm_fact, crm_preference, crm_identity, crm_interaction, crm_importjob, "
            "crm_customer CASCADE"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--interactions", type=int, help="default: 10 per customer")
    parser.add_argument("--dir", type=Path, default=ROOT / "var" / "bench-import")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--own-postgres", action="store_true", help="the bench's own cluster, not DATABASE_URL")
    parser.add_argument("--pgdata", type=Path, default=ROOT / "var" / "bench-pg" / "import-data")
    parser.add_argument("--pg-settings", choices=PROFILES, default="tuned")
    args = parser.parse_args()
    cluster = None
    if args.own_postgres:
        cluster = BenchPostgres(args.pgdata)
        cluster.initdb_if_missing()
        cluster.start(args.pg_settings)
        with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = 'goldfish_bench_import'").fetchone():
                conn.execute("CREATE DATABASE goldfish_bench_import")
        os.environ["DATABASE_URL"] = cluster.url("goldfish_bench_import")
    try:
        run(args)
    finally:
        if cluster:
            cluster.close()


def run(args) -> None:
    dsn = os.environ.get("DATABASE_URL", "")
    if not dsn.startswith("postgres"):
        sys.exit("Set DATABASE_URL to a PostgreSQL database for the benchmark (its crm tables are emptied).")
    interactions = args.interactions if args.interactions is not None else 10 * args.customers
    args.dir.mkdir(parents=True, exist_ok=True)
    customers_csv, interactions_csv = args.dir / "customers.csv", args.dir / "interactions.csv"
    changed_csv = args.dir / "customers-changed.csv"
    started = time.perf_counter()
    customers_file(customers_csv, args.customers, args.seed)
    customers_file(changed_csv, args.customers, args.seed, tiers_flipped=True)
    interactions_file(interactions_csv, interactions, args.customers, args.seed)
    print(
        f"files: {args.customers:,} customers, {interactions:,} interactions in {time.perf_counter() - started:.0f} s"
    )
    reset(dsn)
    shown = settings_in_effect(dsn)
    print(
        "PostgreSQL: "
        + ", ".join(f"{name}={shown[name]}" for name in ("shared_buffers", "max_wal_size", "synchronous_commit"))
    )
    print(f"lanes (CRM_IMPORT_CONNECTIONS): {os.environ.get('CRM_IMPORT_CONNECTIONS', 'the default')}")
    rows = [
        ("customers, first run", "import_customers", customers_csv, args.customers),
        ("customers, same file again", "import_customers", customers_csv, args.customers),
        ("customers, every row changed (its tier)", "import_customers", changed_csv, args.customers),
        ("interactions, first run", "import_interactions", interactions_csv, interactions),
        ("interactions, same file again", "import_interactions", interactions_csv, interactions),
    ]
    print(
        "\n| import | rows | seconds | rows/s | CPU µs/row: command | PostgreSQL server | peak RSS MB | report |"
        "\n| --- | --- | --- | --- | --- | --- | --- | --- |"
    )
    for label, command, path, n in rows:
        m = run_import(command, path)
        print(
            f"| {label} | {n:,} | {m.seconds:.1f} | {n / m.seconds:,.0f} | {per_row_us(m.cpu, n)} "
            f"| {per_row_us(m.server_cpu, n)} | {m.rss_mb} | {m.report} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
