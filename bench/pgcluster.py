"""The lookup benchmark's own PostgreSQL cluster: persistent, on a free port, two settings profiles.

The data directory survives the run (var/bench-pg/data in the repository, git-ignored,
or $BENCH_PGDATA), so the 1M-customer data set (~5.6 GB, ~7 minutes) is loaded once
and reused. The same data directory is started either with the postgresql.conf initdb
wrote (the Debian defaults: initdb and Debian's pg_createcluster agree on every setting
below) or with TUNED on the command line, so both are measured on the same data without
a second load. Only the postmaster this object started is ever stopped.

The reasons for each tuned value are in docs/deployment.md; they are for this size of
data (database ~6 GB, hot set: the identity and interaction indexes) on a 2 vCPU / 24 GB
machine with SSD-backed storage.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg

from tests.own_services import as_postgres, free_port, pg_bin

ROOT = Path(__file__).resolve().parent.parent


def ram_share(fraction: float) -> str:
    """A fraction of this machine's RAM as a PostgreSQL size (24 GB: 0.25 -> 6GB), so the
    tuned profile also starts on a smaller CI runner."""
    total_mb = int(Path("/proc/meminfo").read_text().split()[1]) // 1024
    share_mb = total_mb * fraction
    return f"{round(share_mb / 1024)}GB" if share_mb >= 4096 else f"{int(share_mb // 128 * 128) or 128}MB"


# One place for the recommended values: docs/deployment.md explains each.
TUNED: dict[str, str] = {
    "shared_buffers": ram_share(0.25),  # 6GB here: the hot set (indexes + recent pages) stays in PostgreSQL's cache
    "effective_cache_size": ram_share(0.67),  # 16GB here: shared_buffers + the OS page cache; for the planner only
    "work_mem": "16MB",  # per sort/hash; the lookup needs none, supervisors' reports sort in memory
    "maintenance_work_mem": "1GB",  # index builds (bulk load, import) and vacuum in fewer passes
    "wal_compression": "lz4",  # full-page images ~3x smaller; lz4 is the cheapest CPU of the methods
    "max_wal_size": "8GB",  # checkpoints by time, not by WAL volume: fewer full-page images per insert
    "min_wal_size": "1GB",  # recycle segments instead of creating them during bursts
    "checkpoint_timeout": "15min",  # fewer checkpoints, fewer full-page writes; recovery stays ~a minute
    "checkpoint_completion_target": "0.9",  # spread checkpoint writes (the PostgreSQL 15 default, stated)
    "random_page_cost": "1.1",  # SSD: an index probe costs about a sequential read
    "effective_io_concurrency": "200",  # SSD: prefetch for bitmap heap scans (reports)
    "jit": "off",  # JIT compiles for ms on a big estimate: a heavy customer's card must not pay it
    "max_connections": "200",  # one connection per server thread (CONN_MAX_AGE) + workers + admin
}
# Shown beside the tuned ones: the values that decide a lookup's durability.
SHOWN_TOO = ["synchronous_commit", "fsync", "full_page_writes", "huge_pages"]
PROFILES = ("tuned", "default")


def default_data_dir() -> Path:
    return Path(os.environ.get("BENCH_PGDATA") or ROOT / "var" / "bench-pg" / "data")


class BenchPostgres:
    """initdb once (as the postgres user: initdb refuses root), then start/stop with a profile."""

    def __init__(self, data: Path | None = None, port: int | None = None):
        self.data = Path(data or default_data_dir()).resolve()
        self.port = port or free_port()
        self.log = self.data.parent / "server.log"
        self.socket_dir = Path(tempfile.mkdtemp(prefix="goldfish-bench-pg-"))  # short path: sockets max 107 bytes
        self.profile: str | None = None
        self.started = False
        for path in (self.socket_dir, self.data.parent):
            path.mkdir(parents=True, exist_ok=True)
            if os.geteuid() == 0:
                shutil.chown(path, "postgres", "postgres")

    def url(self, dbname: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{dbname}"

    def initdb_if_missing(self) -> bool:
        """True when the cluster was created now (an empty cluster: the data set is loaded next)."""
        if (self.data / "PG_VERSION").exists():
            return False
        command = [pg_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8"]
        subprocess.run(as_postgres(command), check=True, capture_output=True, timeout=120)
        return True

    def running(self) -> bool:
        status = subprocess.run(as_postgres([pg_bin("pg_ctl"), "-D", str(self.data), "status"]), capture_output=True)
        return status.returncode == 0

    def start(self, profile: str) -> None:
        """Start with `profile`: "default" is postgresql.conf as initdb wrote it, "tuned" adds TUNED."""
        if self.running():
            raise SystemExit(
                f"A PostgreSQL server already runs on {self.data} (a previous run killed?); not touching it. "
                f"Stop it with: runuser -u postgres -- {pg_bin('pg_ctl')} -D {self.data} -m fast stop"
            )
        options = [f"-p {self.port}", f"-k {self.socket_dir}", "-c listen_addresses=127.0.0.1"]
        options += [f"-c {name}={value}" for name, value in TUNED.items()] if profile == "tuned" else []
        command = [pg_bin("pg_ctl"), "-D", str(self.data), "-o", " ".join(options), "-l", str(self.log)]
        done = subprocess.run(as_postgres([*command, "-w", "-t", "300", "start"]), capture_output=True, timeout=330)
        if done.returncode != 0:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise SystemExit(f"PostgreSQL did not start ({profile} settings): {done.stderr.decode()}\n{tail}")
        self.profile, self.started = profile, True

    def stop(self) -> None:
        """Stop the server this object started (a fast shutdown: a checkpoint, no crash recovery next time)."""
        if self.started:
            command = [pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "600", "stop"]
            subprocess.run(as_postgres(command), check=True, capture_output=True, timeout=630)
            self.started = False

    def restart(self, profile: str) -> None:
        self.stop()
        self.start(profile)

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.socket_dir, ignore_errors=True)


def settings_in_effect(dsn: str) -> dict[str, str]:
    """What the running server actually uses, for the report (not what we asked for)."""
    with psycopg.connect(dsn) as conn:
        return {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in [*TUNED, *SHOWN_TOO]}
