"""Screenshots of the supervisor desk for docs/screens/ (issue 13): admin-home, admin-queue,
admin-merge-preview, admin-reports.

They are taken by the browser tests in tests/browser/test_desk_browser.py (real PostgreSQL,
Redis and Chromium, as in `make test`), told to write into docs/screens/ as well:

    DATABASE_URL=... REDIS_URL=... python scripts/screenshots_admin.py
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    env = {**os.environ, "GOLDFISH_SCREENS": str(ROOT / "docs" / "screens")}
    command = [
        str(ROOT / ".venv" / "bin" / "pytest"),
        "-q",
        "-p",
        "no:cacheprovider",
        str(ROOT / "tests" / "browser" / "test_desk_browser.py"),
    ]
    return subprocess.call(command, cwd=ROOT, env=env)  # noqa: S603 - a fixed command, no user input


if __name__ == "__main__":
    sys.exit(main())
