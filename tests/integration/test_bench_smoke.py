"""The lookup benchmark still runs end to end (tiny data, untimed): loader, floor, in-process, HTTP."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def bench_dsn(db):
    """A throwaway database beside the test database (the loader rebuilds its schema)."""
    assert connection.vendor == "postgresql", "The benchmark needs PostgreSQL; run with DATABASE_URL=postgres://..."
    params = connection.get_connection_params()
    name = f"{connection.settings_dict['NAME']}_bench"
    server = psycopg.conninfo.make_conninfo(
        host=params.get("host") or "", port=params.get("port") or "", user=params.get("user") or "",
        password=params.get("password") or "", dbname="postgres",
    )  # fmt: skip
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield psycopg.conninfo.make_conninfo(server, dbname=name).replace(" ", " ")
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.postgres
def test_the_lookup_benchmark_runs_at_tiny_scale_and_prints_its_table(bench_dsn):
    info = psycopg.conninfo.conninfo_to_dict(bench_dsn)
    url = f"postgres://{info.get('user', '')}@{info.get('host', '127.0.0.1')}:{info.get('port', 5432)}/{info['dbname']}"
    if info.get("password"):
        url = url.replace("@", f":{info['password']}@", 1)
    env = {**os.environ, "DATABASE_URL": url}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(
        [sys.executable, "-m", "bench.lookup_run", "--customers", "300", "--lookups", "60", "--rate", "20", "30",
         "--open-seconds", "1", "--closed-seconds", "1", "--connections", "2", "--python-client",
         "--port", str(free_port())],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr[-3000:]
    table = result.stdout
    assert "| floor: the same statements" in table
    assert "| server side, in-process" in table

    # Issue 14: the instruction count (callgrind) on the data set just loaded.
    counted = subprocess.run(
        [sys.executable, "-m", "bench.lookup_instructions", "--warm", "20", "--lookups", "10"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert counted.returncode == 0, counted.stderr[-3000:]
    per_lookup = float(counted.stdout.split("| working tree |")[1].split("M")[0])
    assert 0.5 < per_lookup < 20, counted.stdout  # millions of instructions: a lookup ran, and was counted
    assert (
        "| SQL statements per lookup (auth; resolve; plan setting + open/audit/card in one round trip) | 4 |" in table
    )
    assert "| HTTP open loop at 20/s" in table and "| HTTP open loop at 30/s" in table
    assert "errors 0, unanswered 0" in table
    assert "300 customers" in table


def on_own_cluster(module: str, *args: str, files: bool = False) -> tuple[subprocess.CompletedProcess, bool]:
    """A benchmark run with --own-postgres in a throwaway data directory (with `files`, the files it
    generates go there too, --dir); and whether it left the cluster it started running."""
    pgdata = Path(tempfile.mkdtemp(prefix="goldfish-bench-test-")) / "data"
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL")}
    extra = ["--dir", str(pgdata.parent / "files")] if files else []
    try:
        result = subprocess.run(
            [sys.executable, "-m", module, "--own-postgres", "--pgdata", str(pgdata), *extra, *args],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        return result, (pgdata / "postmaster.pid").exists()
    finally:
        shutil.rmtree(pgdata.parent, ignore_errors=True)


@pytest.mark.postgres
def test_the_benchmark_on_its_own_cluster_compares_settings_servers_and_an_older_commit():
    """--own-postgres (initdb as postgres, both settings profiles on one data directory),
    two servers (one without keep-alive) and --before HEAD in a temporary worktree."""
    result, still_running = on_own_cluster(
        "bench.lookup_run", "--pg-settings", "tuned", "default", "--server", "granian", "gunicorn-sync",
        "--before", "HEAD", "--customers", "300", "--lookups", "60", "--rate", "20", "--open-seconds", "1",
        "--closed-seconds", "1", "--connections", "2", "--python-client", "--port", str(free_port()),
    )  # fmt: skip

    assert result.returncode == 0, result.stderr[-3000:]
    header = result.stdout.splitlines()[0]
    assert "| after, PG tuned, granian | after, PG default, granian | after, PG tuned, gunicorn-sync |" in header
    assert "| before HEAD (" in header
    assert "errors 0, unanswered 0" in result.stdout and "failed:" not in result.stdout
    assert "| shared_buffers | " in result.stdout and "| jit | off | on |" in result.stdout
    assert "same migrations as this tree" in result.stdout
    assert not still_running  # it stopped the cluster it started


@pytest.mark.postgres
def test_the_import_benchmark_runs_on_its_own_cluster_and_prints_its_table():
    """make bench-import at tiny scale: both files imported twice, every line accounted for, the
    server's CPU read (its lanes' backends included), and the cluster it started stopped again."""
    result, still_running = on_own_cluster(
        "bench.import_run", "--customers", "300", "--interactions", "3000", files=True
    )

    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.split(" | ") for line in result.stdout.splitlines() if line.startswith(("| customers", "| inter"))]
    assert [row[0] for row in rows] == [
        "| customers, first run", "| customers, same file again", "| customers, every row changed (its tier)",
        "| interactions, first run", "| interactions, same file again",
    ]  # fmt: skip
    assert "300 were created" in rows[0][-1] and "300 unchanged" in rows[1][-1]
    assert "300 updated" in rows[2][-1]
    assert "3000 were created" in rows[3][-1] and "3000 unchanged" in rows[4][-1]
    assert int(rows[3][5]) > 0  # the server's CPU was read (3,000 contacts: ~0.1 s of it)
    assert "shared_buffers=" in result.stdout
    assert not still_running
