"""Server side of the lookup, in-process: the Django WSGI app from a parsed request to the response bytes.

    PYTHONPATH=<a tree> python bench/inprocess.py BODIES.json   (prints one JSON object)

A standalone script on purpose: bench/lookup_run.py runs it in a fresh interpreter
for the current tree and for an older commit checked out in a git worktree
(--before), with PYTHONPATH pointing at that tree. It imports nothing from `bench`,
so the older tree's application code is measured by this measuring code.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
from pathlib import Path

PATH = "/api/v1/context/lookup"


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


def wsgi_environ(body: bytes, token: str) -> dict:
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


def wal_position(connection) -> int:
    """Bytes of WAL the server has written so far (on the bench's own cluster, only this run writes)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn")
        return int(cursor.fetchone()[0])


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
    meter, wal_start = None, 0
    for k, payload in enumerate(payloads):
        if k == warm:
            meter = CpuMeter(connection.connection.info.backend_pid)
            wal_start = wal_position(connection)
        environ = wsgi_environ(payload, token)
        started = time.perf_counter_ns()
        out = b"".join(app(environ, start_response))
        samples.append((time.perf_counter_ns() - started) / 1e6)
        if not statuses[-1].startswith("200"):
            raise SystemExit(f"lookup failed: {statuses[-1]} {out[:300]!r}")
        mix[json.loads(out)["match"]] += 1
    result = percentiles(samples[warm:])
    result["cpu_client"], result["cpu_db"] = meter.per_lookup_ms(len(payloads) - warm)
    result["wal_bytes"] = (wal_position(connection) - wal_start) / (len(payloads) - warm)
    with CaptureQueriesContext(connection) as queries:
        b"".join(app(wsgi_environ(payloads[0].replace(b"inproc-", b"count-"), token), start_response))
    return result, len(queries), mix


def main() -> None:
    """Reads {"bodies", "token", "run_id"} from the file named on the command line; prints the result."""
    spec = json.loads(Path(sys.argv[1]).read_text())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
    import django

    django.setup()
    result, queries, mix = measure_in_process(spec["bodies"], spec["token"], spec["run_id"])
    print(json.dumps({"server": result, "queries": queries, "mix": mix}))


if __name__ == "__main__":
    main()
