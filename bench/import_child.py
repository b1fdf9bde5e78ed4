"""One import as bench/import_run.py measures it: the real command, then the CPU it and the PostgreSQL server used.

    python -m bench.import_child import_customers FILE

Runs `manage.py <command> FILE --no-progress` in this process, then prints one JSON line:
the command's own CPU seconds (all its threads) and the PostgreSQL server's (read from /proc,
so PostgreSQL must run on this machine; elsewhere that figure is null). CPU, unlike wall time,
does not move with what else the shared machine is doing.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def _ticks(pid: int, children: bool = False) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # utime, stime (fields 14, 15 of stat); with children: also cutime, cstime (the reaped ones)
    return sum(int(f) for f in fields[11 : 15 if children else 13])


def server_cpu_seconds() -> float | None:
    """The CPU the whole PostgreSQL server has used (user + system): its postmaster, every live
    process under it and every one it has reaped. The import's lanes each have a backend of
    their own that ends with the import, and the WAL writer and checkpointer work for it too."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
        for _ in range(100):  # the lanes' backends have ended and been reaped: their CPU is the postmaster's
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0] == 0:
                break
            time.sleep(0.05)
        time.sleep(0.5)
    try:
        postmaster = int(Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()[1])
        ticks = _ticks(postmaster, children=True)
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                        ticks += _ticks(int(entry.name))
                except (OSError, ValueError):
                    continue
    except OSError:
        return None
    return ticks / os.sysconf("SC_CLK_TCK")


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
    import django
    from django.core.management import call_command

    django.setup()
    command, path = sys.argv[1], sys.argv[2]
    server_before = server_cpu_seconds() or 0.0
    cpu_before = time.process_time()
    call_command(command, path, "--no-progress")
    cpu = time.process_time() - cpu_before
    server = server_cpu_seconds()
    sys.stdout.flush()
    print(json.dumps({"cpu": cpu, "server_cpu": None if server is None else server - server_before}))


if __name__ == "__main__":
    main()
