"""Benchmark the screen-pop lookup and print one table.

    DATABASE_URL=postgres://.../goldfish_bench python -m bench.lookup_run --customers 1000000
    python -m bench.lookup_run --own-postgres --before c741209 --server granian gunicorn-gthread gunicorn-sync

Loads the data set first when the database does not hold it (bench.lookup_load),
then measures, on random lookups drawn from the data (phones in E.164 and national
form, e-mails in mixed case, verified accounts with dashes, logged-in customer ids,
unknown numbers, household phones; half with an IVR intent; every one a new call):

- floor: the same two SQL statements the service sends (identity resolution; open
  the contact + audit + read the card), prepared, through a bare psycopg connection;
- server side: the Django WSGI application called in-process, from a parsed
  request (WSGI environ) to the response bytes, token auth and roles included
  (bench/inprocess.py, in a fresh interpreter per code tree);
- queries per lookup, counted by Django;
- HTTP through a server (bench/servers.py: granian, gunicorn gthread or sync; same
  number of processes): open-loop latency at a fixed rate (requests leave on a
  schedule, latency counted from the scheduled time, so a stall is not hidden) and
  closed-loop capacity (wrk when installed, else a Python client), each with the CPU
  per lookup of the server's processes and of PostgreSQL's, from /proc.

Columns vary one thing at a time from the first: PostgreSQL settings (--own-postgres:
the bench's own persistent cluster, tuned and default settings, bench/pgcluster.py),
the HTTP server (--server), and the code (--before REF: REF checked out in a temporary
git worktree, measured against the same data in the same run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg

from bench.inprocess import PATH, CpuMeter, percentiles
from bench.lookup_load import AREA_CODES, load, schema_migrate
from bench.pgcluster import PROFILES, BenchPostgres, settings_in_effect
from bench.servers import SERVERS, TreeCpu, server_command, start_server, stop_server

ROOT = Path(__file__).resolve().parent.parent
BENCH_USER = "bench-desktop"
INTENTS = ["billing", "outage", "technical_fault", "payment", "order_status"]


# --- the data and the requests -------------------------------------------------------------


def customer_count(dsn: str) -> int:
    try:
        with psycopg.connect(dsn) as conn:
            return conn.execute("SELECT count(*) FROM crm_customer").fetchone()[0]
    except psycopg.Error:
        return 0


def national(e164: str) -> str:
    """+12125550100 -> (212) 555-0100, as a desktop might send it."""
    digits = e164[2:]
    return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"


def sample_bodies(dsn: str, n: int, seed: int) -> list[dict]:
    """n random lookup bodies drawn from the data, in the mix described in the module docstring."""
    rnd = random.Random(seed)
    with psycopg.connect(dsn) as conn:
        total = conn.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = 'crm_identity'").fetchone()[0]
        share = min(100.0, max(0.01, 300.0 * n / max(total, 1)))
        rows = conn.execute(
            f"SELECT kind, normalized, customer_id FROM crm_identity TABLESAMPLE BERNOULLI ({share:.4f}) "
            f"REPEATABLE ({seed}) LIMIT {n * 3}"
        ).fetchall()
    rnd.shuffle(rows)
    bodies = []
    for kind, normalized, customer_id in rows:
        if len(bodies) >= n:
            break
        roll = rnd.random()
        if roll < 0.05:
            body = {"channel": "chat", "customer_id": str(customer_id)}
        elif roll < 0.10:
            body = {"phone": f"+1{rnd.choice(AREA_CODES)}9{rnd.randrange(10**6):06d}"}  # nobody's number
        elif kind == "phone":
            body = {"phone": normalized if rnd.random() < 0.5 else national(normalized)}
        elif kind == "email":
            body = {"channel": "email", "email": normalized.upper() if rnd.random() < 0.3 else normalized}
        else:
            body = {"account": f"{normalized[:2]}-{normalized[2:6]}-{normalized[6:]}", "verified": ["account"]}
        if rnd.random() < 0.5:
            body["ivr"] = {"intent": rnd.choice(INTENTS)}
        bodies.append(body)
    return bodies


def bench_token(dsn: str) -> str:
    """An agent with an API token, made through the ORM (password hashing, groups)."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from crm import tokens

    user, _ = get_user_model().objects.get_or_create(username=BENCH_USER)
    user.groups.add(Group.objects.get(name="agent"))
    token, _ = tokens.issue(user)  # a hashed, expiring token, as a login gives
    django.db.connections.close_all()  # the own cluster restarts between profiles
    return token


# --- floor: the service's two statements through bare psycopg ------------------------------------


def measure_floor(dsn: str, bodies: list[dict], run_id: str) -> dict[str, float]:
    import datetime as dt

    from django.conf import settings

    from context import selectors
    from crm import card
    from crm.identifiers import erased_key
    from crm.services import identifiers_normalize

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        user_id = conn.execute("SELECT id FROM auth_user WHERE username = %s", (BENCH_USER,)).fetchone()[0]
        prepared = []
        for n, body in enumerate(bodies):
            identifiers = identifiers_normalize(body)
            prepared.append(
                (
                    {
                        "customer_id": uuid.UUID(body["customer_id"]) if "customer_id" in body else None,
                        "phone": identifiers.get("phone"),
                        "email": identifiers.get("email"),
                        "account": identifiers.get("account"),
                    },
                    {
                        "channel": body.get("channel", "phone"),
                        "call_id": f"floor-{run_id}-{n}",
                        "erased_call_id": erased_key(f"floor-{run_id}-{n}"),
                        "agent_id": user_id,
                        "actor_id": user_id,
                        "identifiers": json.dumps(identifiers),
                        "verified": json.dumps(body.get("verified", [])),
                        "ivr": json.dumps(body.get("ivr", {})),
                        "detail": json.dumps({"match": "unique", "candidates": 1}),
                        "intent": body.get("ivr", {}).get("intent"),
                        "async_commit": settings.CRM_LOOKUP_ASYNC_COMMIT,  # as the service in autocommit
                    },
                )
            )
        samples = []
        warm = min(200, len(prepared) // 10)
        meter = None
        for k, (first, second) in enumerate(prepared):
            if k == warm:
                meter = CpuMeter(conn.info.backend_pid)
            started = time.perf_counter_ns()
            rows = conn.execute(selectors._IDENTITY_SQL, first, prepare=True).fetchall()
            owners = {row[1] for row in rows}
            now = dt.datetime.now(dt.UTC)
            params = {
                **second,
                "id": uuid.uuid4(),
                "cid": owners.pop() if len(owners) == 1 else None,
                "now": now,
                "window": now - dt.timedelta(days=30),
            }
            with conn.pipeline(), conn.cursor() as cursor:
                cursor.execute(card._GENERIC_PLAN_SQL)
                cursor.execute(card._CONTACT_SQL, params, prepare=True)
                cursor.fetchone()
            samples.append((time.perf_counter_ns() - started) / 1e6)
        result = percentiles(samples[warm:])
        result["cpu_client"], result["cpu_db"] = meter.per_lookup_ms(len(prepared) - warm)
    return result


# --- HTTP -----------------------------------------------------------------------------------------


def http_request(port: int, token: str, payload: bytes) -> bytes:
    return (
        f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Token {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    ).encode() + payload


async def _exchange(conn, request: bytes) -> tuple[int, bool]:
    """One request on an open connection: (status, whether the server keeps the connection open)."""
    reader, writer = conn
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
    await reader.readexactly(length)
    return status, re.search(rb"(?i)\r\nconnection:\s*close", head) is None


async def open_loop(
    port: int, token: str, bodies: list[dict], rate: int, seconds: float, run_id: str, max_connections: int = 64
) -> dict:
    """Send `rate` lookups per second on a fixed schedule; latency from the scheduled time.

    At most `max_connections` keep-alive connections; when all are busy a request
    waits for one, and that wait counts in its latency (no coordinated omission).
    Requests not answered within `seconds` after the schedule ends count as late.
    """
    loop = asyncio.get_running_loop()
    idle: list = []
    slots = asyncio.Semaphore(max_connections)
    samples: list[float] = []
    errors = 0
    total = int(rate * seconds)
    requests = [
        http_request(port, token, json.dumps({**bodies[i % len(bodies)], "call_id": f"open-{run_id}-{i}"}).encode())
        for i in range(total)
    ]

    async def one(request: bytes, scheduled: float) -> None:
        nonlocal errors
        async with slots:
            try:
                conn = idle.pop() if idle else await asyncio.open_connection("127.0.0.1", port)
                status, keep = await _exchange(conn, request)
            except (OSError, asyncio.IncompleteReadError):
                errors += 1
                return
            samples.append((loop.time() - scheduled) * 1000)
            if status != 200:
                errors += 1
            if keep:
                idle.append(conn)
            else:  # gunicorn's sync worker: one request per connection
                conn[1].close()

    start = loop.time() + 0.1
    tasks = []
    for i, request in enumerate(requests):
        scheduled = start + i / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(request, scheduled)))
    _done, late = await asyncio.wait(tasks, timeout=seconds)
    for task in late:
        task.cancel()
    for _reader, writer in idle:
        writer.close()
    warm = min(rate, len(samples) // 10)  # the first second warms the workers' prepared statements
    result = percentiles(samples[warm:] or [float("nan")])
    result["errors"] = errors
    result["late"] = len(late)
    return result


async def closed_loop_python(port: int, token: str, bodies: list[dict], connections: int, seconds: float, run_id):
    loop = asyncio.get_running_loop()
    done = 0
    errors = 0
    deadline = loop.time() + seconds

    async def worker(k: int) -> None:
        nonlocal done, errors
        conn = None
        n = 0
        while loop.time() < deadline:
            conn = conn or await asyncio.open_connection("127.0.0.1", port)
            body = {**bodies[(k * 7919 + n) % len(bodies)], "call_id": f"closed-{run_id}-{k}-{n}"}
            status, keep = await _exchange(conn, http_request(port, token, json.dumps(body).encode()))
            errors += status != 200
            done += 1
            n += 1
            if not keep:
                conn[1].close()
                conn = None
        if conn:
            conn[1].close()

    started = loop.time()
    await asyncio.gather(*(worker(k) for k in range(connections)))
    elapsed = loop.time() - started
    return {"rps": done / elapsed, "requests": done, "errors": errors, "tool": f"python client, {connections} conns"}


def closed_loop_wrk(port: int, token: str, bodies: list[dict], connections: int, seconds: float, run_id: str):
    lines = ",\n".join(json.dumps(json.dumps(b)[:-1] + ', "call_id": "') for b in bodies[:2000])
    script = f"""
local bodies = {{
{lines}
}}
local counter = 0
local threads = 0
local tag = nil
-- one tag per wrk thread: each thread's Lua state draws the same math.random sequence
setup = function(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
init = function(args)
  tag = "wrk-{run_id}-" .. tostring(tid) .. "-"
end
request = function()
  counter = counter + 1
  local body = bodies[(counter % #bodies) + 1] .. tag .. counter .. '"}}'
  return wrk.format("POST", "{PATH}", {{["Content-Type"] = "application/json",
    ["Authorization"] = "Token {token}"}}, body)
end
"""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        output = subprocess.run(
            ["wrk", "-t2", f"-c{connections}", f"-d{int(seconds)}s", "-s", handle.name, f"http://127.0.0.1:{port}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(handle.name)
    rps = float(re.search(r"Requests/sec:\s*([\d.]+)", output).group(1))
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", output)
    errors = int(bad.group(1)) if bad else 0
    socket_errors = re.search(r"Socket errors:.*", output)
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(0)))
    return {"rps": rps, "requests": requests, "errors": errors, "tool": f"wrk, {connections} conns"}


# --- the report -----------------------------------------------------------------------------------


def machine() -> str:
    cpu = platform.processor() or "cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except OSError:
        mem_kb = 0
    return f"{os.cpu_count()} vCPU ({cpu}), {mem_kb / 1024 / 1024:.0f} GB RAM, {platform.system()} {platform.release()}"


def data_size(dsn: str) -> str:
    with psycopg.connect(dsn) as conn:
        counts = {
            t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("crm_customer", "crm_identity", "crm_interaction", "crm_case", "crm_feedback")
        }
        version = conn.execute("SHOW server_version").fetchone()[0]
        size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()[0]
        buffers = conn.execute("SHOW shared_buffers").fetchone()[0]
    return (
        f"{counts['crm_customer']:,} customers, {counts['crm_identity']:,} identities, "
        f"{counts['crm_interaction']:,} interactions, {counts['crm_case']:,} cases, {counts['crm_feedback']:,} "
        f"feedback; PostgreSQL {version}, database {size}, shared_buffers {buffers}"
    )


# --- the runs: which code, which PostgreSQL settings, which server ------------------------------


@dataclass(frozen=True)
class Column:
    """One column of the table: a code tree measured with a PostgreSQL profile behind a server."""

    code: str  # "after" (this tree) or "before <ref>"
    tree: Path
    profile: str | None  # "tuned" / "default" on the bench's own cluster; None: the server as configured
    server: str

    @property
    def title(self) -> str:
        parts = [self.code]
        if self.profile:
            parts.append(f"PG {self.profile}")
        return ", ".join([*parts, self.server])


def plan_columns(profiles: list, servers: list[str], before: tuple[str, Path] | None) -> list[Column]:
    """One factor at a time from the first column (this tree, first profile, first server):
    each other profile, each other server, then the older code. N factors, not N products."""
    first = Column("after", ROOT, profiles[0], servers[0])
    columns = [first]
    columns += [Column("after", ROOT, profile, servers[0]) for profile in profiles[1:]]
    columns += [Column("after", ROOT, profiles[0], server) for server in servers[1:]]
    if before:
        columns.append(Column(before[0], before[1], profiles[0], servers[0]))
    return columns


class BeforeTree:
    """REF checked out in a temporary `git worktree` (removed afterwards), and how its schema compares."""

    def __init__(self, ref: str):
        self.ref = ref
        self.sha = git("rev-parse", "--short", f"{ref}^{{commit}}").strip()
        self.name = ref if ref.startswith(self.sha) else f"{ref} ({self.sha})"
        self.path = Path(tempfile.mkdtemp(prefix="goldfish-before-")) / "tree"

    def __enter__(self) -> BeforeTree:
        git("worktree", "add", "--detach", str(self.path), self.sha)
        return self

    def __exit__(self, *exc) -> None:
        git("worktree", "remove", "--force", str(self.path))
        shutil.rmtree(self.path.parent, ignore_errors=True)

    def migrations_note(self) -> str:
        changed = git("diff", "--name-only", self.sha, "--", "*/migrations/*.py").split()
        if not changed:
            return f"before = {self.name}: same migrations as this tree, same schema"
        return (
            f"before = {self.name}: its migrations differ ({', '.join(changed)}); its code ran against "
            "this tree's schema (the same database): compatible unless its column says failed"
        )


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True, text=True).stdout


def run_in_process(tree: Path, dsn: str, bodies: list[dict], token: str, run_id: str) -> dict:
    """bench/inprocess.py in a fresh interpreter (same venv) with `tree` first on the path."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as spec:
        json.dump({"bodies": bodies, "token": token, "run_id": run_id}, spec)
    env = {**os.environ, "DATABASE_URL": dsn, "PYTHONPATH": str(tree), "DJANGO_SETTINGS_MODULE": "crm.settings"}
    try:
        done = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "inprocess.py"), spec.name],
            cwd=tree, env=env, capture_output=True, text=True, timeout=3600,
        )  # fmt: skip
    finally:
        os.unlink(spec.name)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_http(column: Column, dsn: str, token: str, bodies: list[dict], args, run_id: str, own: bool) -> dict:
    """Open loop at each rate, then closed-loop capacity, each with CPU per request from /proc."""
    env = {**os.environ, "DATABASE_URL": dsn}
    log = Path(tempfile.gettempdir()) / f"goldfish-bench-{column.server}-{run_id}.log"
    process = start_server(column.server, column.tree, env, args.port, args.workers, args.threads, log)
    try:
        asyncio.run(closed_loop_python(args.port, token, bodies, args.connections, 1, f"{run_id}-warm"))
        result = {"open": {}}
        for rate in args.rate:
            meter = TreeCpu(process.pid, dsn, own)
            measured = asyncio.run(open_loop(args.port, token, bodies, rate, args.open_seconds, f"{run_id}-{rate}"))
            measured["cpu_server"], measured["cpu_db"] = meter.per_request_ms(measured["n"])
            result["open"][rate] = measured
        meter = TreeCpu(process.pid, dsn, own)
        if shutil.which("wrk") and not args.python_client:
            closed = closed_loop_wrk(args.port, token, bodies, args.connections, args.closed_seconds, run_id)
        else:
            closed = asyncio.run(
                closed_loop_python(args.port, token, bodies, args.connections, args.closed_seconds, run_id)
            )
        closed["cpu_server"], closed["cpu_db"] = meter.per_request_ms(closed["requests"])
        result["closed"] = closed
        return result
    finally:
        stop_server(process)
        log.unlink(missing_ok=True)


def say(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


def run_all(args, dsn_for, cluster: BenchPostgres | None, before: BeforeTree | None) -> dict:
    """Every measurement, grouped by PostgreSQL profile (one restart per profile)."""
    profiles = args.pg_settings if cluster else [None]
    columns = plan_columns(profiles, args.server, (f"before {before.name}", before.path) if before else None)
    out = {"columns": columns, "floor": {}, "inproc": {}, "http": {}, "settings": {}, "load": loadavg()}
    for profile in profiles:
        if cluster:
            say(f"PostgreSQL with the {profile} settings...")
            cluster.restart(profile)
        dsn = dsn_for()
        if "token" not in out:
            ensure_data(dsn, args.customers)
            say("  removing earlier runs' lookups...")
            out["forgotten"] = forget_bench_lookups(dsn)
            out["token"] = bench_token(dsn)
            out["bodies"] = sample_bodies(dsn, args.lookups, args.seed)
            out["data"] = data_size(dsn)
        token, bodies = out["token"], out["bodies"]
        out["settings"][profile] = settings_in_effect(dsn)
        run_id = uuid.uuid4().hex[:8]
        say("  floor...")
        out["floor"][profile] = measure_floor(dsn, bodies, f"{run_id}-{profile}")
        for column in (c for c in columns if c.profile == profile):
            key = (column.code, profile)
            if key not in out["inproc"]:
                say(f"  in-process, {column.code}...")
                out["inproc"][key] = run_in_process(column.tree, dsn, bodies, token, f"{run_id}-{len(out['inproc'])}")
            if not args.no_http and "error" not in out["inproc"][key]:
                say(f"  HTTP, {column.title}...")
                tag = f"{run_id}-{columns.index(column)}"
                out["http"][column] = measure_http(column, dsn, token, bodies, args, tag, cluster is not None)
    out["load"] += f" / {loadavg()}"
    return out


# Every call_id the benchmark sends starts with one of these; the loaded data has none.
BENCH_CALL_IDS = r"^(inproc|count|floor|open|closed|wrk)-"


def forget_bench_lookups(dsn: str) -> int:
    """Delete the contacts, and their audit rows, that earlier runs' lookups added. With a fixed
    seed every run draws the same customers, whose recent history would otherwise grow run
    after run on a kept data set (and the card with it)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        removed = conn.execute(
            """
            WITH gone AS (DELETE FROM crm_interaction WHERE call_id ~ %s RETURNING id),
                 audits AS (DELETE FROM crm_accessaudit a USING gone WHERE a.interaction_id = gone.id)
            SELECT count(*) FROM gone
            """,
            (BENCH_CALL_IDS,),
        ).fetchone()[0]
        if removed:
            conn.execute("VACUUM (ANALYZE) crm_interaction, crm_accessaudit")
    return removed


def ensure_data(dsn: str, customers: int) -> None:
    have = customer_count(dsn)
    if have < customers * 0.99 or have > customers * 1.01:
        say(f"loading {customers:,} customers (found {have:,})...")
        load(dsn, customers)
    else:
        # A kept data set gets this tree's later migrations (index changes included), so the
        # "after" figures are measured on the schema the code ships with.
        say("bringing the kept data set's schema up to this tree's migrations...")
        schema_migrate(dsn)


def loadavg() -> str:
    path = Path("/proc/loadavg")
    return path.read_text().split()[0] if path.exists() else "?"


# --- the report -------------------------------------------------------------------------------------


# Issue 14's targets for the open-loop rates it names.
OPEN_LOOP_TARGETS = {500: "p99 <= 15 ms", 100: "p99 <= 5 ms"}


def ms(p: dict) -> str:
    return f"p50 {p['p50']:.3f} / p95 {p['p95']:.3f} / p99 {p['p99']:.3f} ms (n={p['n']:,})"


def cpu_pair(result: dict, first: str, second: str) -> str:
    return f"{result[first]:.3f} / {result[second]:.3f} ms"


def open_cell(result: dict) -> str:
    return f"{ms(result)}, max {result['max']:.1f} ms, errors {result['errors']}, unanswered {result['late']}"


def capacity_cell(result: dict) -> str:
    return f"{result['rps']:,.0f} lookups/s, errors {result['errors']}"


def in_process_cell(measured: dict) -> str:
    return f"failed: {measured['error']}" if "error" in measured else ms(measured["server"])


def measure_rows(out: dict, args) -> list[tuple[str, object, str]]:
    """(label, cell(column) -> text, target) for each row that differs by column."""
    inproc = lambda c: out["inproc"][(c.code, c.profile)]  # noqa: E731
    floor = lambda c: out["floor"][c.profile]  # noqa: E731
    http = lambda c: out["http"][c]  # noqa: E731
    rows = [
        ("lookup mix", lambda c: ", ".join(f"{k} {v:,}" for k, v in inproc(c)["mix"].items()), ""),
        ("floor: the same statements, bare psycopg, prepared (2 round trips)", lambda c: ms(floor(c)), ""),
        ("server side, in-process (WSGI request -> response bytes)", lambda c: in_process_cell(inproc(c)),
         "p50 <= 1.2 ms, p99 <= 3 ms"),
        ("ratio server / floor at p50", lambda c: f"{inproc(c)['server']['p50'] / floor(c)['p50']:.1f}x", "<= 4x"),
        ("CPU per lookup, floor (client / PostgreSQL backend)",
         lambda c: cpu_pair(floor(c), "cpu_client", "cpu_db"), ""),
        ("CPU per lookup, server side (Django process / PostgreSQL backend)",
         lambda c: cpu_pair(inproc(c)["server"], "cpu_client", "cpu_db"), "<= 0.45 / <= 0.6 ms"),
        ("WAL written per lookup, in-process (the contact and audit rows, their indexes, full-page images)",
         lambda c: f"{inproc(c)['server'].get('wal_bytes', 0):,.0f} bytes", ""),
        ("SQL statements per lookup (auth; resolve; plan setting + open/audit/card in one round trip)",
         lambda c: str(inproc(c)["queries"]), "fixed, small"),
    ]  # fmt: skip
    if not out["http"]:
        return rows
    for rate in args.rate:
        rows.append((f"HTTP open loop at {rate}/s for {args.open_seconds:g} s ({args.workers} processes)",
                     lambda c, r=rate: open_cell(http(c)["open"][r]), OPEN_LOOP_TARGETS.get(rate, "")))  # fmt: skip
        rows.append((f"CPU per lookup at {rate}/s (server processes / PostgreSQL)",
                     lambda c, r=rate: cpu_pair(http(c)["open"][r], "cpu_server", "cpu_db"), ""))  # fmt: skip
    tool = next(iter(out["http"].values()))["closed"]["tool"]
    rows.append((f"HTTP closed-loop capacity ({tool}, {args.closed_seconds:g} s)",
                 lambda c: capacity_cell(http(c)["closed"]), ">= 1,500/s"))  # fmt: skip
    rows.append(("CPU per lookup at capacity (server processes / PostgreSQL)",
                 lambda c: cpu_pair(http(c)["closed"], "cpu_server", "cpu_db"), ""))  # fmt: skip
    return rows


def cell(value, column) -> str:
    """value(column), or "-" where that column was not measured."""
    try:
        return value(column)
    except KeyError:
        return "-"


def report(out: dict, args) -> str:
    columns: list[Column] = out["columns"]

    def row(name: str, values: list[str], target: str = "") -> str:
        return f"| {name} | {' | '.join(values)} | {target} |"

    def spanning(text: str) -> list[str]:
        return [text] + [""] * (len(columns) - 1)

    lines = [
        row("measure", [c.title for c in columns], "target"),
        "| --- |" + " --- |" * (len(columns) + 1),
        row("machine", spanning(machine())),
        row("data", spanning(out["data"])),
        row("machine load (1-min load average at start / end)", spanning(f"{out['load']} on {os.cpu_count()} cores")),
    ]
    for label, value, target in measure_rows(out, args):
        lines.append(row(label, [cell(value, c) for c in columns], target))
    return "\n".join(lines)


def settings_report(settings: dict) -> str:
    """The PostgreSQL settings each profile actually ran with (SHOW), side by side."""
    profiles = list(settings)
    if profiles == [None]:
        values = settings[None]
        return "PostgreSQL settings (as the server was configured): " + ", ".join(f"{k}={v}" for k, v in values.items())
    lines = [f"| PostgreSQL setting | {' | '.join(profiles)} |", "| --- |" + " --- |" * len(profiles)]
    for name in settings[profiles[0]]:
        lines.append(f"| {name} | {' | '.join(settings[p][name] for p in profiles)} |")
    return "\n".join(lines)


def notes(out: dict, args, before: BeforeTree | None, cluster: BenchPostgres | None) -> list[str]:
    lines = []
    if cluster:
        lines.append(f"PostgreSQL: the benchmark's own cluster, data directory {cluster.data}, port {cluster.port}")
        lines.append("'default' = postgresql.conf as initdb wrote it (Debian's defaults for these settings)")
    lines.append(f"before measuring, {out['forgotten']:,} contacts earlier runs' lookups had added were removed")
    if before:
        lines.append(before.migrations_note())
    lines.append("floor and in-process figures depend on the code and PostgreSQL settings, not on the server")
    for server in dict.fromkeys(c.server for c in out["columns"]):
        lines.append(f"{server}: {' '.join(server_command(server, args.port, args.workers, args.threads)[1:])}")
    return [f"- {line}" for line in lines]


# --- the command ---------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000, help="data set size (loaded when missing)")
    parser.add_argument("--lookups", type=int, default=6000, help="in-process lookups (and floor runs)")
    parser.add_argument(
        "--rate", type=int, nargs="+", default=[500, 100], help="open-loop lookups per second (one run per rate)"
    )
    parser.add_argument("--open-seconds", type=float, default=30)
    parser.add_argument("--closed-seconds", type=float, default=20)
    parser.add_argument("--connections", type=int, default=16, help="closed-loop connections")
    parser.add_argument("--workers", type=int, default=2, help="server processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per process (gthread, granian)")
    parser.add_argument(
        "--server", nargs="+", choices=SERVERS, default=[SERVERS[0]],
        help="HTTP servers to compare, the first is the main column (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument("--own-postgres", action="store_true",
                        help="the bench's own PostgreSQL cluster (persistent data), not DATABASE_URL")  # fmt: skip
    parser.add_argument("--pgdata", type=Path, default=None,
                        help="its data directory (default $BENCH_PGDATA or var/bench-pg/data)")  # fmt: skip
    parser.add_argument("--pg-settings", nargs="+", choices=PROFILES, default=list(PROFILES),
                        help="own cluster: settings profiles to measure, the first is the main column")  # fmt: skip
    parser.add_argument("--before", metavar="REF", help="also measure this git ref's code (a temporary worktree)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("BENCH_PORT", "8102")))
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP measurements")
    parser.add_argument("--python-client", action="store_true", help="closed loop with the Python client, not wrk")
    parser.add_argument("--seed", type=int, default=11)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
    os.environ["CRM_HTTPS"] = "false"
    os.environ["DEBUG"] = "false"
    os.environ.pop("REDIS_URL", None)  # the lookup uses no cache; keep the run self-contained
    sys.path.insert(0, str(ROOT))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the finally blocks stop what we started

    cluster = None
    if args.own_postgres:
        cluster = BenchPostgres(args.pgdata)
        if cluster.initdb_if_missing():
            say(f"initdb: a new cluster in {cluster.data}")
        dbname = f"goldfish_bench_{args.customers}"
        dsn_for = lambda: cluster.url(dbname)  # noqa: E731
        os.environ["DATABASE_URL"] = cluster.url(dbname)
    else:
        dsn = os.environ.get("DATABASE_URL", "")
        if not dsn.startswith(("postgres://", "postgresql://")):
            raise SystemExit("Set DATABASE_URL to the PostgreSQL benchmark database, or pass --own-postgres.")
        dsn_for = lambda: dsn  # noqa: E731
    before = BeforeTree(args.before) if args.before else None
    try:
        with before or contextlib.nullcontext():
            out = run_all(args, dsn_for, cluster, before)
            print(report(out, args))
            print()
            print(settings_report(out["settings"]))
            print()
            print("\n".join(notes(out, args, before, cluster)))
    finally:
        if cluster:
            cluster.close()


if __name__ == "__main__":
    main()
