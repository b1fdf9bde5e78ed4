"""The first task look-ups of a fresh web process, from several threads at once, all find the task.

crm.queue imports the task modules on first use. A thread that came second used to see
crm.tasks half imported and its task "never registered": under gthread workers the first
concurrent submissions after a start failed to publish and tripped the broker breaker (issue 14).
A fresh interpreter per attempt: the import happens once per process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = """
import threading, django
django.setup()
from crm.queue import task_get
barrier, missing = threading.Barrier(16), []
def look_up():
    barrier.wait()
    try:
        task_get("crm.feedback_process")
    except Exception as exc:
        missing.append(repr(exc))
threads = [threading.Thread(target=look_up) for _ in range(16)]
[t.start() for t in threads]
[t.join() for t in threads]
print(len(missing))
"""


def test_concurrent_first_look_ups_all_find_the_task():
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(DJANGO_SETTINGS_MODULE="crm.settings", LOG_LEVEL="WARNING")
    for _ in range(3):
        result = subprocess.run(
            [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout.strip().splitlines()[-1] == "0", result.stdout
