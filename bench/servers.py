"""The HTTP servers the lookup benchmark compares, and the CPU they (and PostgreSQL) spend.

Each server runs `workers` processes, so the comparison is at the same CPU:

- gunicorn-sync: one request at a time per process, no keep-alive (a connection per request);
- gunicorn-gthread: `threads` threads per process, keep-alive (the README's server until issue 14);
- granian: Rust HTTP (hyper) in front of the WSGI app, `threads` blocking threads per process.

A server runs in its own session, so the CPU of all its processes (master and workers)
is read from /proc by session id, whatever the server's process layout.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psycopg

SERVERS = ("granian", "gunicorn-gthread", "gunicorn-sync")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def server_command(server: str, port: int, workers: int, threads: int) -> list[str]:
    """The command line, as a deployment would write it (docs/deployment.md)."""
    bindir = Path(sys.executable).parent
    gunicorn = [str(bindir / "gunicorn"), "crm.wsgi", "-w", str(workers), "-b", f"127.0.0.1:{port}"]
    gunicorn += ["--backlog", "2048", "--log-level", "warning"]
    if server == "gunicorn-sync":
        return [*gunicorn, "-k", "sync"]
    if server == "gunicorn-gthread":
        return [*gunicorn, "-k", "gthread", "--threads", str(threads), "--keep-alive", "60"]
    if server == "granian":
        return [
            str(bindir / "granian"), "--interface", "wsgi", "crm.wsgi:application",
            "--workers", str(workers), "--blocking-threads", str(threads),
            "--host", "127.0.0.1", "--port", str(port), "--backlog", "2048", "--no-ws", "--log-level", "warning",
        ]  # fmt: skip
    raise ValueError(f"unknown server {server!r} (one of {', '.join(SERVERS)})")


def start_server(
    server: str, tree: Path, env: dict, port: int, workers: int, threads: int, log: Path
) -> subprocess.Popen:
    """Start `server` serving the code in `tree` (its own interpreter path: PYTHONPATH=tree).

    Its output (one JSON access line per request) goes to `log`, a file as in production:
    a terminal would be slower and drown the progress lines."""
    env = {**env, "PYTHONPATH": str(tree), "DJANGO_SETTINGS_MODULE": "crm.settings"}
    command = server_command(server, port, workers, threads)
    with log.open("ab") as out:
        process = subprocess.Popen(command, cwd=tree, env=env, start_new_session=True, stdout=out, stderr=out)
    for _ in range(150):
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise SystemExit(f"{server} exited with {process.returncode}: {' '.join(command)}\n{tail}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                if response.status == 200:
                    return process
        except OSError:
            time.sleep(0.2)
    stop_server(process)
    raise SystemExit(f"{server} did not come up: {' '.join(command)}")


def stop_server(process: subprocess.Popen) -> None:
    """SIGTERM the server's whole session (only what start_server started), SIGKILL after 15 s."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None  # exited meanwhile


def cpu_by_pid(pids) -> dict[int, float]:
    """user + system CPU seconds of each process still alive."""
    result = {}
    for pid in pids:
        fields = _stat(pid)
        if fields:
            result[pid] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return result


def session_pids(sid: int) -> list[int]:
    """Every process of session `sid` (a server started with start_new_session)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields and int(fields[3]) == sid:
                pids.append(int(entry))
    return pids


def postgres_pids(dsn: str, whole_cluster: bool) -> list[int]:
    """PostgreSQL processes to charge: every one when the cluster is the benchmark's own (WAL
    writer and checkpointer work for the lookups too), else only this database's backends."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND (%s OR datname = current_database())",
            (whole_cluster,),
        ).fetchall()
    return [pid for (pid,) in rows]


class TreeCpu:
    """CPU spent between start and per_request() by a server's processes and by PostgreSQL's."""

    def __init__(self, server_sid: int, dsn: str, whole_cluster: bool):
        self.sid, self.dsn, self.whole_cluster = server_sid, dsn, whole_cluster
        self.server0 = cpu_by_pid(session_pids(self.sid))
        self.db0 = cpu_by_pid(postgres_pids(dsn, whole_cluster))

    @staticmethod
    def _delta(before: dict[int, float], after: dict[int, float]) -> float:
        return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())

    def per_request_ms(self, requests: int) -> tuple[float, float]:
        server = self._delta(self.server0, cpu_by_pid(session_pids(self.sid)))
        db = self._delta(self.db0, cpu_by_pid(postgres_pids(self.dsn, self.whole_cluster)))
        return server * 1000 / max(requests, 1), db * 1000 / max(requests, 1)
