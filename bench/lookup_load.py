"""Build the lookup benchmark's data set in PostgreSQL: N customers, about 10 N interactions.

    DATABASE_URL=postgres://.../goldfish_bench python -m bench.lookup_load --customers 1000000

Rows are generated in Python and streamed with COPY (psycopg), in the shapes
that make a lookup expensive in real life:

- households: about 8 % of customers share their phone with one to three others
  (the lookup answers `ambiguous` for them);
- long histories: 1 % of customers have 200-620 contacts, the rest 0-12, so the
  total is about 10 interactions per customer; a share of them falls inside the
  30-day window so that the repeat-contact flag is live;
- open cases (5 % of customers) with recent contacts attached, closed cases,
  feedback (a share negative and recent), current facts and preferences
  (2 % do_not_call), VIP tier (3 %), new customers (2 %).

Interactions of one customer are spread over the table as in a real, time-ordered
history (rows are shuffled within blocks of customers), so the card's reads touch
as many pages as they would in production.

Secondary indexes of the loaded tables are dropped before COPY and rebuilt after
it (much faster than maintaining them row by row); foreign-key triggers are off
for the loading session only (session_replication_role), the data being consistent
by construction. The run is deterministic for a given --seed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg

TABLES = [
    "crm_customer",
    "crm_identity",
    "crm_case",
    "crm_interaction",
    "crm_feedback",
    "crm_fact",
    "crm_preference",
]
FIRST = [
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Amara",
    "Chen",
    "Fatima",
    "Hiroshi",
    "Ingrid",
    "Jamal",
    "Lucia",
    "Mateo",
    "Noor",
    "Olga",
    "Priya",
    "Ravi",
    "Sofia",
    "Tariq",
    "Yara",
    "Zoe",
]
LAST = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Okafor",
    "Nakamura",
    "Kowalski",
    "Singh",
    "Haddad",
    "Novak",
    "Larsen",
    "Rossi",
]
AREA_CODES = ["212", "312", "415", "617", "202", "305", "404", "512", "646", "718", "206", "303", "702", "713"]
CHANNELS = ["phone"] * 6 + ["chat"] * 2 + ["email", "sms", "web", "in_person", "social"]
OUTCOMES = ["resolved"] * 6 + ["unresolved", "follow_up", "transferred"]
SUMMARIES = [
    "Asked about the last bill; explained the pro-rata charge.",
    "Router keeps dropping the connection; reset remotely, will monitor.",
    "Moved the payment date to the 15th.",
    "Reported an outage in the area; gave the ETA.",
    "Wants to upgrade the plan; sent the offer by e-mail.",
    "Engineer appointment booked for Tuesday morning.",
    "Complained about waiting time; apologised and noted.",
    "Changed the address on the account.",
]
FACT_KEYS = ["router_model", "postcode", "best_time_to_call", "pet_name", "accessibility_needs", "employer"]
SUBJECTS = ["Broadband keeps dropping", "Billing dispute", "Engineer did not arrive", "Refund not received"]
SENTIMENT = ["positive"] * 12 + ["neutral"] * 5 + ["negative"] * 3
BENCH_AGENTS = 50
BLOCK = 20_000  # customers per shuffled block of interactions (see the module docstring)


def phone_for(n: int) -> str:
    """A distinct, valid US number in E.164 for every n (no two customers collide by accident)."""
    area = AREA_CODES[n % len(AREA_CODES)]
    rest = n // len(AREA_CODES)
    exchange = 200 + rest % 700
    if exchange % 100 == 11:  # N11 codes are service numbers, not valid exchanges
        exchange += 1
    line = (rest // 700) % 10_000
    return f"+1{area}{exchange:03d}{line:04d}"


def ts(value: dt.datetime) -> str:
    return value.isoformat()


class Copier:
    """Buffers text-format COPY rows per table and writes them in large chunks."""

    def __init__(self, dsn: str, table: str, columns: list[str]):
        # One connection per table: a connection carries one COPY at a time.
        self.conn = psycopg.connect(dsn)
        self.conn.execute("SET session_replication_role = replica")
        self.conn.execute("SET synchronous_commit = off")
        self.cursor = self.conn.cursor()
        self.copy_cm = self.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN")
        self.copy = self.copy_cm.__enter__()
        self.buffer: list[str] = []
        self.rows = 0

    def row(self, *values) -> None:
        self.buffer.append("\t".join("\\N" if v is None else str(v) for v in values))
        self.rows += 1
        if len(self.buffer) >= 50_000:
            self.flush()

    def line(self, text: str) -> None:
        self.buffer.append(text)
        self.rows += 1
        if len(self.buffer) >= 50_000:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            self.copy.write("\n".join(self.buffer) + "\n")
            self.buffer.clear()

    def close(self) -> None:
        self.flush()
        self.copy_cm.__exit__(None, None, None)
        self.cursor.close()
        self.conn.commit()
        self.conn.close()


def ensure_database(dsn: str) -> None:
    """Create the benchmark database when it does not exist yet."""
    info = psycopg.conninfo.conninfo_to_dict(dsn)
    name = info["dbname"]
    try:
        psycopg.connect(dsn).close()
    except psycopg.OperationalError:
        with psycopg.connect(psycopg.conninfo.make_conninfo(dsn, dbname="postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')


def reset_schema(dsn: str) -> None:
    """A fresh schema from the project's migrations: the benchmark database is disposable."""
    ensure_database(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    schema_migrate(dsn)


def schema_migrate(dsn: str) -> None:
    """The project's migrations up to this tree's (a no-op when the kept data set is already there)."""
    root = Path(__file__).resolve().parent.parent
    subprocess.run(
        [sys.executable, str(root / "manage.py"), "migrate", "--noinput", "-v0"],
        check=True,
        cwd=root,
        env={**os.environ, "DATABASE_URL": dsn, "DJANGO_SETTINGS_MODULE": "crm.settings"},
    )


def prepare_schema(conn: psycopg.Connection) -> list[str]:
    """Drop the loaded tables' secondary indexes; return the statements that rebuild them."""
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT i.indexname, i.indexdef FROM pg_indexes i
            WHERE i.schemaname = 'public' AND i.tablename = ANY(%s)
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
            """,
            (TABLES,),
        )
        rebuild = []
        for name, definition in cur.fetchall():
            cur.execute(f'DROP INDEX "{name}"')
            rebuild.append(definition)
    conn.commit()
    return rebuild


def bench_users(conn: psycopg.Connection) -> list[int]:
    """The agents that history rows name, created once (ids returned)."""
    with conn.cursor() as cur:
        cur.execute("SELECT id FROM auth_group WHERE name = 'agent'")
        group_id = cur.fetchone()[0]
        ids = []
        for n in range(BENCH_AGENTS):
            cur.execute(
                """
                INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff,
                                       is_active, date_joined)
                VALUES ('!', false, %s, '', '', '', false, true, now())
                ON CONFLICT (username) DO UPDATE SET is_active = true RETURNING id
                """,
                (f"bench-agent-{n:02d}",),
            )
            user_id = cur.fetchone()[0]
            cur.execute(
                "INSERT INTO auth_user_groups (user_id, group_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (user_id, group_id),
            )
            ids.append(user_id)
    conn.commit()
    return ids


def load(dsn: str, customers: int, seed: int = 7, quiet: bool = False) -> dict[str, int]:
    """Load the data set; returns row counts per table."""
    rnd = random.Random(seed)
    now = dt.datetime.now(dt.UTC)
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    started = time.monotonic()
    reset_schema(dsn)
    with psycopg.connect(dsn) as conn:
        with conn.cursor() as cur:
            cur.execute("SET session_replication_role = replica")
            cur.execute("SET synchronous_commit = off")
            cur.execute("SET maintenance_work_mem = '1GB'")
            cur.execute("SET max_parallel_maintenance_workers = 2")
            cur.execute("SELECT id FROM crm_contactreason ORDER BY id")
            reasons = [r[0] for r in cur.fetchall()]
        rebuild = prepare_schema(conn)
        agents = bench_users(conn)

        c_customer = Copier(
            dsn,
            "crm_customer",
            ["id", "display_name", "preferred_name", "language", "timezone", "tier", "created_at", "updated_at"],
        )
        c_identity = Copier(
            dsn, "crm_identity", ["customer_id", "kind", "value", "normalized", "verified_at", "source", "created_at"]
        )
        c_case = Copier(
            dsn, "crm_case", ["id", "customer_id", "subject", "kind", "reason_id", "status", "opened_at", "owner_id"]
        )
        interaction_cols = [
            "id",
            "customer_id",
            "channel",
            "direction",
            "started_at",
            "ended_at",
            "agent_id",
            "queue",
            "reason_id",
            "reason_text",
            "summary",
            "outcome",
            "identifiers",
            "verified",
            "ivr",
            "case_id",
            "source",
            "created_at",
        ]
        c_feedback = Copier(
            dsn,
            "crm_feedback",
            [
                "id",
                "customer_id",
                "interaction_id",
                "rating",
                "nps",
                "text",
                "staff_named",
                "identifiers",
                "sentiment",
                "status",
                "received_at",
                "processed_at",
                "dispatched_at",
                "contact_consent",
            ],
        )
        c_fact = Copier(dsn, "crm_fact", ["customer_id", "key", "value", "is_current", "channel", "recorded_at"])
        c_pref = Copier(dsn, "crm_preference", ["customer_id", "key", "value", "is_current", "recorded_at"])
        c_interaction = Copier(dsn, "crm_interaction", interaction_cols)
        copiers = {
            "customer": c_customer,
            "identity": c_identity,
            "case": c_case,
            "feedback": c_feedback,
            "fact": c_fact,
            "pref": c_pref,
        }

        household_phone, household_size = None, 0
        block_rows: list[str] = []
        three_years = 3 * 365 * 86400
        window = 30 * 86400
        for n in range(customers):
            cid = uuid.UUID(int=rnd.getrandbits(128), version=4)
            first, last = rnd.choice(FIRST), rnd.choice(LAST)
            if rnd.random() < 0.02:
                created = now - dt.timedelta(seconds=rnd.randrange(20 * 86400))
            else:
                created = now - dt.timedelta(seconds=rnd.randrange(40 * 86400, 5 * 365 * 86400))
            created_s = ts(created)
            tier = "vip" if rnd.random() < 0.03 else "standard"
            copiers["customer"].row(
                *(cid, f"{first} {last}", first if rnd.random() < 0.3 else "", "en", "", tier, created_s, created_s)
            )
            # Households: the next customer shares this phone with probability 8 %, up to 4 people.
            if household_phone is not None and household_size < 4 and rnd.random() < 0.08:
                phone = household_phone
                household_size += 1
            else:
                phone = phone_for(n)
                household_phone, household_size = phone, 1
            ident = c_identity
            ident.row(*(cid, "phone", phone, phone, created_s if rnd.random() < 0.4 else None, "import", created_s))
            if rnd.random() < 0.7:
                email = f"{first}.{last}{n}@example.com".lower()
                ident.row(*(cid, "email", email, email, None, "import", created_s))
            if rnd.random() < 0.6:
                account = f"AC{n:08d}"
                ident.row(
                    *(
                        cid,
                        "account",
                        f"AC-{n:08d}",
                        account,
                        created_s if rnd.random() < 0.5 else None,
                        "import",
                        created_s,
                    )
                )

            open_case = None
            if rnd.random() < 0.05:
                open_case = uuid.UUID(int=rnd.getrandbits(128), version=4)
                opened = now - dt.timedelta(seconds=rnd.randrange(1, 60 * 86400))
                copiers["case"].row(
                    *(
                        open_case,
                        cid,
                        rnd.choice(SUBJECTS),
                        "general",
                        rnd.choice(reasons),
                        rnd.choice(["open", "in_progress"]),
                        ts(opened),
                        rnd.choice(agents),
                    )
                )
            if rnd.random() < 0.10:
                copiers["case"].row(
                    *(
                        uuid.UUID(int=rnd.getrandbits(128), version=4),
                        cid,
                        rnd.choice(SUBJECTS),
                        "general",
                        rnd.choice(reasons),
                        "closed",
                        ts(now - dt.timedelta(seconds=rnd.randrange(60 * 86400, three_years))),
                        rnd.choice(agents),
                    )
                )

            # History: 1 % long (200-620 contacts, a fifth recent), the rest 0-12.
            heavy = rnd.random() < 0.01
            count = rnd.randint(200, 620) if heavy else rnd.randint(0, 12)
            recent_share = 0.2 if heavy else 0.06
            linked_to_case = 0
            last_iid = None
            for _ in range(count):
                iid = uuid.UUID(int=rnd.getrandbits(128), version=4)
                recent = rnd.random() < recent_share
                age = rnd.randrange(window) if recent else rnd.randrange(window, three_years)
                at = now - dt.timedelta(seconds=age)
                case_id = "\\N"
                if open_case is not None and recent and linked_to_case < 3:
                    case_id = str(open_case)
                    linked_to_case += 1
                reason = str(rnd.choice(reasons)) if rnd.random() < 0.8 else "\\N"
                started_s = ts(at)
                block_rows.append(
                    f"{iid}\t{cid}\t{rnd.choice(CHANNELS)}\tinbound\t{started_s}\t"
                    f"{ts(at + dt.timedelta(seconds=rnd.randrange(60, 1800)))}\t{rnd.choice(agents)}\t\t"
                    f"{reason}\t\t{rnd.choice(SUMMARIES)}\t{rnd.choice(OUTCOMES)}\t{{}}\t[]\t{{}}\t{case_id}\t"
                    f"import\t{started_s}"
                )
                last_iid = iid
            if rnd.random() < 0.5:
                sentiment = rnd.choice(SENTIMENT)
                rating = {"positive": rnd.choice([4, 5]), "neutral": 3, "negative": rnd.choice([1, 2])}[sentiment]
                age = rnd.randrange(window) if rnd.random() < 0.1 else rnd.randrange(window, three_years)
                received = ts(now - dt.timedelta(seconds=age))
                copiers["feedback"].row(
                    *(
                        uuid.UUID(int=rnd.getrandbits(128), version=4),
                        cid,
                        last_iid,
                        rating,
                        None,
                        "Thanks" if sentiment != "negative" else "Not happy with the wait",
                        "[]",
                        "{}",
                        sentiment,
                        "processed",
                        received,
                        received,
                        received,
                        "f",
                    )
                )
            for key in rnd.sample(FACT_KEYS, rnd.choice([0, 0, 1, 1, 2, 3])):
                copiers["fact"].row(
                    *(cid, key, f"{key}-{rnd.randrange(1000)}", "t", "phone", ts(created + dt.timedelta(days=1)))
                )
            if rnd.random() < 0.4:
                copiers["pref"].row(*(cid, "contact_channel", rnd.choice(["email", "sms"]), "t", created_s))
            if rnd.random() < 0.02:
                copiers["pref"].row(*(cid, "do_not_call", "true", "t", created_s))

            if (n + 1) % BLOCK == 0 or n + 1 == customers:
                rnd.shuffle(block_rows)
                for line in block_rows:
                    c_interaction.line(line)
                block_rows.clear()
                if (n + 1) % (BLOCK * 10) == 0:
                    say(
                        f"  {n + 1:,} customers, {c_interaction.rows:,} interactions, {time.monotonic() - started:.0f}s"
                    )

        for copier in (*copiers.values(), c_interaction):
            copier.close()
        say(f"  copied in {time.monotonic() - started:.0f}s; rebuilding {len(rebuild)} indexes")

        with conn.cursor() as cur:
            for statement in rebuild:
                cur.execute(statement)
            conn.commit()
            say(f"  indexes rebuilt at {time.monotonic() - started:.0f}s; analyzing")
        conn.autocommit = True
        with conn.cursor() as cur:
            for table in TABLES:
                cur.execute(f"VACUUM (ANALYZE) {table}")
            counts = {}
            for table in TABLES:
                cur.execute(f"SELECT count(*) FROM {table}")
                counts[table] = cur.fetchone()[0]
    say(f"  done in {time.monotonic() - started:.0f}s: {counts}")
    return counts


def dsn_from_env() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("Set DATABASE_URL to the PostgreSQL benchmark database (e.g. .../goldfish_bench).")
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    load(dsn_from_env(), args.customers, seed=args.seed)


if __name__ == "__main__":
    main()
