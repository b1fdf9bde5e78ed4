"""Feedback throughput: N submissions through the HTTP API, one Celery worker on Redis.

    DATABASE_URL=postgres://... REDIS_URL=redis://... .venv/bin/python bench/feedback.py [--n 1000]

Starts gunicorn and one Celery worker (prefork, concurrency 1) on the given
database and Redis, posts N feedback submissions (half praise naming an agent,
a third complaints from known customers, the rest neutral) from concurrent
clients, then waits until the worker has processed all of them. Prints
submissions/s (HTTP 202 answers per second of wall time) and the
enqueue-to-processed latency per feedback (received_at, stamped in the request
just before the commit that enqueues, to processed_at, stamped by the worker when
the workflow and its e-mails are done): p50, p95, max.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


def wait_http(port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"gunicorn did not answer on port {port}")


def wait_log(path: Path, needle: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while needle not in path.read_text():
        if time.monotonic() > deadline:
            raise SystemExit(f"worker did not start:\n{path.read_text()[-2000:]}")
        time.sleep(0.3)


def payloads(n: int, emails: list[str], jane_contacts: list[str]) -> list[dict]:
    """Half praise through a survey link of a contact Jane handled (recognition + 2 e-mails), a
    third complaints from known customers' addresses, the rest neutral."""
    out = []
    for i in range(n):
        kind = i % 6
        if kind < 3:
            contact = jane_contacts[i % len(jane_contacts)]
            out.append(
                {
                    "interaction_id": contact,
                    "rating": 5,
                    "staff": ["jane"],
                    "text": "Jane sorted it in minutes, thanks!",
                }
            )
        elif kind < 5:
            out.append({"rating": 1, "email": emails[i % len(emails)], "text": "Still broken, nobody called back."})
        else:
            out.append({"rating": 3, "text": "It was fine."})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--port", type=int, default=int(os.environ.get("BENCH_PORT", "8000")))
    parser.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--rate", type=float, default=0, help="pace submissions to this many per second (0: flat out)")
    args = parser.parse_args()
    # Stopped from outside: still run the `finally` that stops gunicorn and the worker.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not os.environ.get("DATABASE_URL", "").startswith("postgres") or not os.environ.get("REDIS_URL"):
        raise SystemExit("Set DATABASE_URL (PostgreSQL) and REDIS_URL: the benchmark runs on real services.")

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
    os.environ["CRM_HTTPS"] = "false"
    import django

    django.setup()
    from django.core.management import call_command

    from crm.models import Feedback, Identity, Interaction

    call_command("migrate", verbosity=0)
    call_command("seed_demo", stdout=io.StringIO())
    emails = list(Identity.objects.filter(kind="email").values_list("normalized", flat=True)[:200])
    jane_contacts = [
        str(pk)
        for pk in Interaction.objects.filter(agent__username="jane", customer__isnull=False).values_list(
            "pk", flat=True
        )[:500]
    ]

    tmp = Path(tempfile.mkdtemp(prefix="bench-feedback-"))
    env = {
        **os.environ,
        "DEBUG": "false",
        "CRM_HTTPS": "false",
        "CRM_FEEDBACK_THROTTLE": "",  # all clients share one address here
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(tmp / "mail"),
        "LOG_LEVEL": "WARNING",
    }
    worker_log = tmp / "worker.log"
    with worker_log.open("w") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "crm", "worker", "--purge", "--concurrency", "1", "-l", "info",
             "-n", "bench@%h", "--without-mingle", "--without-gossip"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "crm.wsgi", "-w", str(args.web_workers), "-b", f"127.0.0.1:{args.port}",
         "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_log(worker_log, "ready.")
        wait_http(args.port)
        bodies = payloads(args.n, emails, jane_contacts)

        def post_many(client: int) -> list[str]:
            conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=30)
            ids = []
            for k, body in enumerate(bodies[client :: args.clients]):
                if args.rate:
                    # Submission number k * clients + client is due at that many 1/rate ticks after the start.
                    time.sleep(max(0.0, started + (k * args.clients + client) / args.rate - time.perf_counter()))
                conn.request("POST", "/api/v1/feedback", json.dumps(body), {"Content-Type": "application/json"})
                response = conn.getresponse()
                data = response.read()
                if response.status != 202:
                    raise SystemExit(f"unexpected {response.status}: {data[:200]!r}")
                ids.append(json.loads(data)["id"])
            return ids

        started = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            ids = [fid for client_ids in pool.map(post_many, range(args.clients)) for fid in client_ids]
        posting = time.perf_counter() - started

        deadline = time.monotonic() + 600
        while Feedback.objects.filter(pk__in=ids, status="processed").count() < len(ids):
            if time.monotonic() > deadline or worker.poll() is not None:
                raise SystemExit("the worker did not process every submission in time")
            time.sleep(0.5)
        drained = time.perf_counter() - started

        rows = Feedback.objects.filter(pk__in=ids).values_list("received_at", "processed_at")
        latencies = [(done - received).total_seconds() * 1000 for received, done in rows]
        sentiments = {
            s: Feedback.objects.filter(pk__in=ids, sentiment=s).count() for s in ("positive", "neutral", "negative")
        }
        # The file backend may append several messages to one file: count the messages, not the files.
        mail_dir = tmp / "mail"
        mails = sum(p.read_text().count("\nSubject: ") for p in mail_dir.iterdir()) if mail_dir.exists() else 0
        print(f"submissions:          {len(ids)} ({sentiments})")
        pace = f"paced at {args.rate:g}/s" if args.rate else "flat out"
        print(
            f"clients / web / work: {args.clients} HTTP clients ({pace}), {args.web_workers} gunicorn workers, "
            "1 Celery worker (concurrency 1)"
        )
        print(f"submissions/s:        {len(ids) / posting:.0f}  (all answered 202 in {posting:.2f} s)")
        print(f"all processed after:  {drained:.2f} s  ({len(ids) / drained:.0f} workflows/s, {mails} e-mails)")
        print(
            "enqueue-to-processed: "
            f"p50 {statistics.median(latencies):.0f} ms, p95 {percentile(latencies, 95):.0f} ms, "
            f"max {max(latencies):.0f} ms"
        )
    finally:
        for proc in (web, worker):
            proc.terminate()
        for proc in (web, worker):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
