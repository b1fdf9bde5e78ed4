"""CPU instructions per screen-pop lookup, in-process, counted by callgrind: the same figure whatever else runs.

Issue 14. CPU time per lookup moves by ±20 % on a shared 2-vCPU machine; the number of
instructions the Django process executes does not (valgrind counts them, the kernel's
share aside). So each change to the lookup's Python side is judged by this figure, for
the working tree and for any git refs given (each checked out into a temporary worktree
and run against the same database), in one run:

    DATABASE_URL=postgres://…/goldfish_bench_smoke python -m bench.lookup_instructions c741209 HEAD

The database must hold a benchmark data set (make bench-lookup-smoke loads one).
Only the measured lookups are counted (callgrind_control turns counting on and off
around them); start-up, warm-up and the sample queries are not.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(lookups: int, warm: int) -> None:
    """Inside valgrind: warm up, then count `lookups` WSGI requests (the bench's own bodies and token)."""
    sys.path.insert(0, os.getcwd())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
    import django

    django.setup()
    from django.core.wsgi import get_wsgi_application

    from bench import lookup_run

    try:
        from bench.inprocess import wsgi_environ
    except ImportError:  # a tree from before issue 14's bench tooling (c741209)
        wsgi_environ = lookup_run.wsgi_environ  # type: ignore[attr-defined]

    dsn = os.environ["DATABASE_URL"]
    bodies = lookup_run.sample_bodies(dsn, warm + lookups, 11)
    token = lookup_run.bench_token(dsn)
    app = get_wsgi_application()
    statuses: list[str] = []
    run = uuid.uuid4().hex[:8]
    payloads = [json.dumps({**b, "call_id": f"instr-{run}-{n}"}).encode() for n, b in enumerate(bodies)]

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    def call(payload: bytes) -> None:
        b"".join(app(wsgi_environ(payload, token), start_response))

    for payload in payloads[:warm]:
        call(payload)
    subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())], check=True, capture_output=True)
    for payload in payloads[warm:]:
        call(payload)
    subprocess.run(["callgrind_control", "-i", "off", str(os.getpid())], check=True, capture_output=True)
    bad = [s for s in statuses if not s.startswith("200")]
    if bad:
        raise SystemExit(f"lookups failed: {bad[:3]}")


def instructions_per_lookup(tree: Path, lookups: int, warm: int) -> float:
    """Run the child in `tree` under callgrind; instructions counted, per lookup."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "CRM_HTTPS": "false", "DEBUG": "false", "CRM_ACCESS_LOG": "false"}
        env.pop("REDIS_URL", None)
        result = subprocess.run(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={tmp}/out",
             sys.executable, str(Path(__file__).resolve()), "--child", str(lookups), "--warm", str(warm)],
            cwd=tree, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        found = re.search(r"Collected : (\d+)", result.stderr)
        if result.returncode != 0 or not found:
            raise SystemExit(f"callgrind run in {tree} failed:\n{result.stderr[-2000:]}")
        return int(found.group(1)) / lookups


def worktree(ref: str, into: Path) -> Path:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(into), ref], check=True,
                   capture_output=True)  # fmt: skip
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("refs", nargs="*", help="git refs to measure as well as the working tree")
    parser.add_argument("--lookups", type=int, default=300)
    parser.add_argument("--warm", type=int, default=200, help="unmeasured lookups first (caches, prepared statements)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.warm)
        return
    if not shutil.which("valgrind"):
        raise SystemExit("valgrind is needed: apt-get install -y valgrind")
    started = time.strftime("%Y-%m-%d %H:%M UTC")
    print(f"{args.lookups} in-process lookups each, after {args.warm} unmeasured ({started})")
    print("| code | instructions per lookup |\n| --- | ---: |")
    with tempfile.TemporaryDirectory() as tmp:
        trees = [(ref, worktree(ref, Path(tmp) / f"ref{n}")) for n, ref in enumerate(args.refs)]
        try:
            for label, tree in [*trees, ("working tree", ROOT)]:
                per_lookup = instructions_per_lookup(tree, args.lookups, args.warm)
                print(f"| {label} | {per_lookup / 1e6:.3f} M |", flush=True)
        finally:
            for _, tree in trees:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)


if __name__ == "__main__":
    main()
