"""Benchmark the screen-pop lookup and print one table.

    DATABASE_URL=postgres://.../goldfish_bench python -m bench.lookup_run --customers 1000000

Loads the data set first when the database does not hold it (bench.lookup_load),
then measures, on random lookups drawn from the data (phones in E.164 and national
form, e-mails in mixed case, verified accounts with dashes, logged-in customer ids,
unknown numbers, household phones; half with an IVR intent; every one a new call):

- floor: the same two SQL statements the service sends (identity resolution; open
  the contact + audit + read the card), prepared, through a bare psycopg connection;
- server side: the Django WSGI application called in-process, from a parsed
  request (WSGI environ) to the response bytes, token auth and roles included;
- queries per lookup, counted by Django;
- HTTP through gunicorn (gthread workers, keep-alive): open-loop latency at a fixed
  rate (requests leave on a schedule, latency counted from the scheduled time, so a
  stall is not hidden) and closed-loop capacity (wrk when installed, else a Python
  client).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import psycopg

from bench.lookup_load import AREA_CODES, load

ROOT = Path(__file__).resolve().parent.parent
BENCH_USER = "bench-desktop"
PATH = "/api/v1/context/lookup"
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
    return token


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99), "max": ordered[-1], "n": len(ordered)}


def process_cpu_seconds(pid: int) -> float:
    """user + system CPU of a process (a PostgreSQL backend on this machine), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU per lookup of this process and of one PostgreSQL backend: unlike latency, it
    does not grow when other tenants of the machine compete for the cores."""

    def __init__(self, backend_pid: int):
        self.backend_pid = backend_pid
        self.client0 = time.process_time()
        self.backend0 = process_cpu_seconds(backend_pid)

    def per_lookup_ms(self, n: int) -> tuple[float, float]:
        client = (time.process_time() - self.client0) * 1000 / n
        backend = (process_cpu_seconds(self.backend_pid) - self.backend0) * 1000 / n
        return client, backend


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


# --- server side: the WSGI application in-process ----------------------------------------------


def wsgi_environ(body: bytes, token: str) -> dict:
    import io

    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": PATH,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8102",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_HOST": "127.0.0.1",
        "HTTP_AUTHORIZATION": f"Token {token}",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }


def measure_in_process(bodies: list[dict], token: str, run_id: str) -> tuple[dict[str, float], int, dict]:
    """Latency of the WSGI app per lookup, the query count of one lookup, and the match mix."""
    from django.core.wsgi import get_wsgi_application
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    app = get_wsgi_application()
    statuses: list[str] = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    payloads = [json.dumps({**b, "call_id": f"inproc-{run_id}-{n}"}).encode() for n, b in enumerate(bodies)]
    samples, mix = [], {"unique": 0, "ambiguous": 0, "none": 0}
    warm = min(200, len(payloads) // 10)
    meter = None
    for k, payload in enumerate(payloads):
        if k == warm:
            meter = CpuMeter(connection.connection.info.backend_pid)
        environ = wsgi_environ(payload, token)
        started = time.perf_counter_ns()
        out = b"".join(app(environ, start_response))
        samples.append((time.perf_counter_ns() - started) / 1e6)
        if not statuses[-1].startswith("200"):
            raise SystemExit(f"lookup failed: {statuses[-1]} {out[:300]!r}")
        mix[json.loads(out)["match"]] += 1
    result = percentiles(samples[warm:])
    result["cpu_client"], result["cpu_db"] = meter.per_lookup_ms(len(payloads) - warm)
    with CaptureQueriesContext(connection) as queries:
        b"".join(app(wsgi_environ(payloads[0].replace(b"inproc-", b"count-"), token), start_response))
    return result, len(queries), mix


# --- HTTP through gunicorn -------------------------------------------------------------------------


def start_gunicorn(dsn: str, port: int, workers: int, threads: int) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": dsn, "DJANGO_SETTINGS_MODULE": "crm.settings"}
    command = [
        str(Path(sys.executable).parent / "gunicorn"),
        "crm.wsgi",
        "-k",
        "gthread",
        "-w",
        str(workers),
        "--threads",
        str(threads),
        "-b",
        f"127.0.0.1:{port}",
        "--keep-alive",
        "60",
        "--backlog",
        "2048",
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    for _ in range(100):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                if response.status == 200:
                    return process
        except OSError:
            time.sleep(0.2)
    stop(process)
    raise SystemExit("gunicorn did not come up")


def stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def http_request(port: int, token: str, payload: bytes) -> bytes:
    return (
        f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Token {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    ).encode() + payload


async def _exchange(conn, request: bytes) -> int:
    reader, writer = conn
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
    await reader.readexactly(length)
    return status


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
                status = await _exchange(conn, request)
            except (OSError, asyncio.IncompleteReadError):
                errors += 1
                return
            samples.append((loop.time() - scheduled) * 1000)
            if status != 200:
                errors += 1
            idle.append(conn)

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
        conn = await asyncio.open_connection("127.0.0.1", port)
        n = 0
        while loop.time() < deadline:
            body = {**bodies[(k * 7919 + n) % len(bodies)], "call_id": f"closed-{run_id}-{k}-{n}"}
            if await _exchange(conn, http_request(port, token, json.dumps(body).encode())) != 200:
                errors += 1
            done += 1
            n += 1
        conn[1].close()

    started = loop.time()
    await asyncio.gather(*(worker(k) for k in range(connections)))
    return {"rps": done / (loop.time() - started), "errors": errors, "tool": f"python client, {connections} conns"}


def closed_loop_wrk(port: int, token: str, bodies: list[dict], connections: int, seconds: float, run_id: str):
    lines = ",\n".join(json.dumps(json.dumps(b)[:-1] + ', "call_id": "') for b in bodies[:2000])
    script = f"""
local bodies = {{
{lines}
}}
local counter = 0
local tag = "wrk-{run_id}-" .. tostring(math.random(1, 1000000000)) .. "-"
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
    bad = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", output)
    errors = int(bad.group(1)) if bad else 0
    socket_errors = re.search(r"Socket errors:.*", output)
    return {"rps": rps, "errors": errors, "tool": f"wrk, {connections} conns", "socket": socket_errors}


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000, help="data set size (loaded when missing)")
    parser.add_argument("--lookups", type=int, default=6000, help="in-process lookups (and floor runs)")
    parser.add_argument(
        "--rate", type=int, nargs="+", default=[500, 100], help="open-loop lookups per second (one run per rate)"
    )
    parser.add_argument("--open-seconds", type=float, default=30)
    parser.add_argument("--closed-seconds", type=float, default=20)
    parser.add_argument("--connections", type=int, default=16, help="closed-loop connections")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--port", type=int, default=int(os.environ.get("BENCH_PORT", "8102")))
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP measurements")
    parser.add_argument("--python-client", action="store_true", help="closed loop with the Python client, not wrk")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()

    dsn = os.environ.get("DATABASE_URL", "")
    if not dsn.startswith(("postgres://", "postgresql://")):
        raise SystemExit("Set DATABASE_URL to the PostgreSQL benchmark database (e.g. .../goldfish_bench).")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
    os.environ["CRM_HTTPS"] = "false"
    os.environ["DEBUG"] = "false"
    os.environ.pop("REDIS_URL", None)  # the lookup uses no cache; keep the run self-contained
    sys.path.insert(0, str(ROOT))

    load_before = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"
    have = customer_count(dsn)
    if have < args.customers * 0.99 or have > args.customers * 1.01:
        print(f"loading {args.customers:,} customers (found {have:,})...", file=sys.stderr, flush=True)
        load(dsn, args.customers)
    run_id = uuid.uuid4().hex[:8]
    token = bench_token(dsn)
    bodies = sample_bodies(dsn, args.lookups, args.seed)
    say = lambda *a: print(*a, file=sys.stderr, flush=True)  # noqa: E731

    say("floor...")
    floor = measure_floor(dsn, bodies, run_id)
    say("in-process...")
    server, queries, mix = measure_in_process(bodies, token, run_id)
    say(f"  floor {floor}\n  server {server}, {queries} queries, mix {mix}")
    http_open = closed = None
    if not args.no_http:
        say("gunicorn...")
        process = start_gunicorn(dsn, args.port, args.workers, args.threads)
        try:
            http_open = {
                rate: asyncio.run(open_loop(args.port, token, bodies, rate, args.open_seconds, f"{run_id}-{rate}"))
                for rate in args.rate
            }
            if shutil.which("wrk") and not args.python_client:
                closed = closed_loop_wrk(args.port, token, bodies, args.connections, args.closed_seconds, run_id)
            else:
                closed = asyncio.run(
                    closed_loop_python(args.port, token, bodies, args.connections, args.closed_seconds, run_id)
                )
        finally:
            stop(process)

    def row(name, value, target=""):
        return f"| {name} | {value} | {target} |"

    ms = lambda p: f"p50 {p['p50']:.3f} / p95 {p['p95']:.3f} / p99 {p['p99']:.3f} ms (n={p['n']:,})"  # noqa: E731
    lines = [
        "| measure | result | target |",
        "| --- | --- | --- |",
        row("machine", machine()),
        row("data", data_size(dsn)),
        row(
            "machine load (1-min load average at start / end of the run)",
            f"{load_before} / {Path('/proc/loadavg').read_text().split()[0] if Path('/proc/loadavg').exists() else '?'}"
            f" on {os.cpu_count()} cores (includes other tenants' work)",
        ),
        row("lookup mix", ", ".join(f"{k} {v:,}" for k, v in mix.items())),
        row("floor: the same statements, bare psycopg, prepared (2 round trips)", ms(floor)),
        row("server side, in-process (WSGI request -> response bytes)", ms(server), "p50 <= 1 ms, p99 <= 3 ms"),
        row("ratio server / floor at p50", f"{server['p50'] / floor['p50']:.1f}x", "<= 4x"),
        row(
            "CPU per lookup, floor (client / PostgreSQL backend)",
            f"{floor['cpu_client']:.3f} / {floor['cpu_db']:.3f} ms",
        ),
        row(
            "CPU per lookup, server side (Django process / PostgreSQL backend)",
            f"{server['cpu_client']:.3f} / {server['cpu_db']:.3f} ms; 2 idle cores would bound capacity at "
            f"~{2000 / (server['cpu_client'] + server['cpu_db']):,.0f} lookups/s",
        ),
        row(
            "SQL statements per lookup (auth; resolve; plan setting + open/audit/card in one round trip)",
            str(queries),
            "fixed, small",
        ),
    ]
    if http_open is not None:
        for rate, result in http_open.items():
            lines.append(
                row(
                    f"HTTP open loop at {rate}/s for {args.open_seconds:g} s, "
                    f"gunicorn gthread {args.workers}x{args.threads}",
                    ms(result)
                    + f", max {result['max']:.1f} ms, errors {result['errors']}, unanswered {result['late']}",
                    "p99 <= 15 ms at 500/s",
                )
            )
        lines.append(
            row(
                f"HTTP closed-loop capacity ({closed['tool']})",
                f"{closed['rps']:,.0f} lookups/s, errors {closed['errors']}",
                ">= 1,500/s",
            )
        )
    print("\n".join(lines))
    if statistics.mean([server["p50"], floor["p50"]]) <= 0:  # pragma: no cover - sanity
        raise SystemExit("no samples")


if __name__ == "__main__":
    main()
