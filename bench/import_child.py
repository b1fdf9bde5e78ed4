"""One import as bench/import_run.py measures it: the real command, then the CPU it and its backend used.

    python -m bench.import_child import_customers FILE

Runs `manage.py <command> FILE --no-progress` in this process, then prints one JSON line:
the command's own CPU seconds and its PostgreSQL backend's (read from /proc, so PostgreSQL
must run on this machine; elsewhere the backend's figure is null). CPU, unlike wall time,
does not move with what else the shared machine is doing.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def backend_cpu_seconds() -> float | None:
    """The CPU the current connection's PostgreSQL backend has used (user + system), if it is local."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
    import django
    from django.core.management import call_command

    django.setup()
    command, path = sys.argv[1], sys.argv[2]
    backend_before = backend_cpu_seconds() or 0.0
    cpu_before = time.process_time()
    call_command(command, path, "--no-progress")
    cpu = time.process_time() - cpu_before
    backend = backend_cpu_seconds()
    sys.stdout.flush()
    print(json.dumps({"cpu": cpu, "backend_cpu": None if backend is None else backend - backend_before}))


if __name__ == "__main__":
    main()
