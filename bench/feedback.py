"""Feedback path (issue 14): intake rate, steady-state latency, and a burst drained exactly once.

    DATABASE_URL=postgres://... REDIS_URL=redis://... .venv/bin/python bench/feedback.py [--n 1000]

Starts gunicorn and Celery workers on the given database and Redis and measures the
issue's three targets separately:

(a) intake: N submissions posted flat out by concurrent clients while the workers are
    up but not consuming the queue (they listen on an idle queue), so the web side has
    both cores. Submissions/s answered 202, and server CPU per submission (gunicorn
    processes, the PostgreSQL backends and redis-server, from /proc), with the rate that
    CPU allows on idle cores (the machine is shared: wall-clock rates move with its load).
(c) burst: the N messages (a) left queued are then drained: the workers are told to
    consume the queue (one broadcast) and the clock runs until the last workflow and
    its e-mails are done. Drain time, workflows/s, CPU per workflow (Celery processes
    + PostgreSQL backends), and an exactly-once check: every feedback processed, one
    recognition per praise, one case and follow-up per complaint, every e-mail row sent
    and written once by the file backend (counted by Message-ID), nothing else.
(b) steady: open-loop submissions at --steady-rate per second for --steady-seconds
    with the workers consuming; enqueue-to-processed (received_at, stamped in the
    request before the commit that enqueues, to processed_at, stamped in the workflow's
    transaction) p50 / p99 / max.

Every phase posts against fresh rows (contacts of Jane's, customers with an e-mail on
file, made by the benchmark), so runs on the same database measure the same work. The
mix: half praise through the survey link of a contact Jane handled (recognition + 2
e-mails), a third complaints from known customers' addresses (case + follow-up +
e-mails to the supervisors), the rest neutral.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TICK = os.sysconf("SC_CLK_TCK")
TARGETS = {"intake": 600.0, "p99_ms": 200.0, "drain_s": 15.0}


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


# --- process CPU from /proc ------------------------------------------------------------------


def proc_cpu(pid: int, *, reaped_children: bool = False) -> float:
    """utime + stime of one process in seconds (0 when it is gone); or of its exited, reaped children."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    first = 13 if reaped_children else 11
    return (int(fields[first]) + int(fields[first + 1])) / TICK


def descendants(root: int) -> list[int]:
    """root and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def pg_backends() -> list[int]:
    """PostgreSQL backends on this database, except the benchmark's own connection."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return [row[0] for row in cursor.fetchall()]


def pg_exited_cpu() -> dict[int, float]:
    """CPU of PostgreSQL backends that exited (a connection per task), as the postmaster's reaped children.

    Shared server: this also counts other sessions' backends that ended meanwhile.
    """
    backends = pg_backends()
    if not backends:
        return {}
    stat = Path(f"/proc/{backends[0]}/stat").read_text().rpartition(")")[2].split()
    postmaster = int(stat[1])
    return {postmaster: proc_cpu(postmaster, reaped_children=True)}


def cpu_of(pids: list[int]) -> dict[int, float]:
    return {pid: proc_cpu(pid) for pid in pids}


class CpuMeter:
    """CPU seconds used by groups of processes between start() and stop(); new processes count from zero."""

    def __init__(self, groups: dict):
        self.groups = groups  # name -> callable returning {pid: cpu seconds}

    def _sample(self) -> dict[str, dict[int, float]]:
        return {name: sample() for name, sample in self.groups.items()}

    def start(self) -> None:
        self.before = self._sample()
        self.self_before = time.process_time()

    def stop(self) -> dict[str, float]:
        after = self._sample()
        used = {
            name: sum(cpu - self.before[name].get(pid, 0.0) for pid, cpu in samples.items())
            for name, samples in after.items()
        }
        used["bench client"] = time.process_time() - self.self_before
        return used


# --- start-up ---------------------------------------------------------------------------------


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


def wait_workers(app, names: list[str], procs: list[subprocess.Popen], logs: list[Path], seconds: float = 90) -> None:
    """Until every worker answers a ping (the log line "ready." is not printed at LOG_LEVEL=WARNING)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            break
        answered = {name for reply in app.control.ping(destination=names, timeout=1.0) for name in reply}
        if answered >= set(names):
            return
    raise SystemExit("workers did not start:\n" + "\n".join(log.read_text()[-2000:] for log in logs))


# --- the rows each phase posts against ------------------------------------------------------------


@dataclass
class World:
    contacts: list[str]  # Jane's contacts, one per praise
    emails: list[str]  # known customers' addresses, for complaints


def world_make(n: int) -> World:
    """Fresh contacts of Jane's with live customers and fresh customers with an e-mail on file.

    Fresh each phase: a contact takes one feedback, and a customer is linked to at most
    CRM_UNVERIFIED_FEEDBACK_PER_DAY complaints a day, so reused rows would change the work.
    """
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from crm.models import Customer, Identity, Interaction

    jane = get_user_model().objects.get(username="jane")
    now = timezone.now()
    customers = list(Customer.objects.live().filter(display_name__regex=r"^[A-Z]").values_list("pk", flat=True)[:300])
    praise = (n + 5) // 6 * 3
    contacts = Interaction.objects.bulk_create(
        Interaction(customer_id=customers[i % len(customers)], agent=jane, started_at=now, source="bench")
        for i in range(praise)
    )
    nonce = uuid.uuid4().hex[:8]
    complainers = Customer.objects.bulk_create(
        Customer(display_name=f"Bench {nonce} {i}") for i in range(max(1, n // 6 + 1))
    )
    emails = [f"bench-{nonce}-{i}@example.com" for i in range(len(complainers))]
    Identity.objects.bulk_create(
        Identity(customer=c, kind="email", value=e, normalized=e, source="bench")
        for c, e in zip(complainers, emails, strict=True)
    )
    return World(contacts=[str(c.pk) for c in contacts], emails=emails)


def payloads(n: int, world: World) -> list[dict]:
    """Half praise through a survey link of a contact Jane handled (recognition + 2 e-mails), a
    third complaints from known customers' addresses, the rest neutral."""
    out = []
    for i in range(n):
        kind = i % 6
        if kind < 3:
            out.append(
                {
                    "interaction_id": world.contacts[(i // 6) * 3 + kind],
                    "rating": 5,
                    "staff": ["jane"],
                    "text": "Jane sorted it in minutes, thanks!",
                }
            )
        elif kind < 5:
            email = world.emails[(i // 6) % len(world.emails)]
            out.append({"rating": 1, "email": email, "text": "Still broken, nobody called back."})
        else:
            out.append({"rating": 3, "text": "It was fine."})
    return out


# --- posting ----------------------------------------------------------------------------------------


class Client:
    """One keep-alive HTTP connection per thread."""

    local = threading.local()

    def __init__(self, port: int):
        self.port = port

    def post(self, body: dict) -> tuple[str, float]:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        started = time.perf_counter()
        conn.request("POST", "/api/v1/feedback", json.dumps(body), {"Content-Type": "application/json"})
        response = conn.getresponse()
        data = response.read()
        took = time.perf_counter() - started
        if response.status != 202:
            raise SystemExit(f"unexpected {response.status}: {data[:200]!r}")
        return json.loads(data)["id"], took


def post_flat_out(client: Client, bodies: list[dict], clients: int) -> tuple[list[str], float]:
    def run(k: int) -> list[str]:
        return [client.post(body)[0] for body in bodies[k::clients]]

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        ids = [fid for part in pool.map(run, range(clients)) for fid in part]
    return ids, time.perf_counter() - started


def post_open_loop(client: Client, bodies: list[dict], rate: float) -> tuple[list[str], list[float], float]:
    """Submission i is sent at start + i / rate whatever the answers before it (open loop)."""
    ids: list[str] = []
    http_ms: list[float] = []
    late = 0.0
    lock = threading.Lock()

    def send(body: dict) -> None:
        fid, took = client.post(body)
        with lock:
            ids.append(fid)
            http_ms.append(took * 1000)

    with ThreadPoolExecutor(32) as pool:
        start = time.perf_counter()
        for i, body in enumerate(bodies):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            else:
                late = max(late, -delay)
            pool.submit(send, body)
    return ids, http_ms, late


# --- checks -------------------------------------------------------------------------------------


def wait_processed(ids: list[str], workers: list[subprocess.Popen], seconds: float = 600) -> None:
    """Until every feedback is processed and every e-mail it queued is no longer pending."""
    from crm.models import EmailStatus, Feedback

    deadline = time.monotonic() + seconds
    unsent_check = time.monotonic() + 10
    while True:
        done = Feedback.objects.filter(pk__in=ids, status="processed").count() == len(ids)
        if done and not _emails_of(ids).filter(status=EmailStatus.PENDING).exists():
            return
        if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
            raise SystemExit("the workers did not process every submission in time")
        if time.monotonic() > unsent_check:
            unsent = Feedback.objects.filter(pk__in=ids, dispatched_at__isnull=True).count()
            if unsent:
                # No beat here, so no outbox sweep: these would wait forever.
                raise SystemExit(f"{unsent} submissions were stored but never published (see the web log)")
        time.sleep(0.05)


def _emails_of(ids: list[str]):
    from django.db.models import Q

    from crm.models import OutboundEmail

    return OutboundEmail.objects.filter(
        Q(notification__feedback_id__in=ids)
        | Q(follow_up__feedback_id__in=ids)
        | Q(notification__recognition__feedback_id__in=ids)
    )


def finished_at(ids: list[str]) -> float:
    """When the last workflow of these feedback and the last of their e-mails were done (epoch seconds)."""
    from django.db.models import Max

    from crm.models import Feedback

    last_processed = Feedback.objects.filter(pk__in=ids).aggregate(m=Max("processed_at"))["m"]
    last_sent = _emails_of(ids).aggregate(m=Max("sent_at"))["m"]
    return max(t for t in (last_processed, last_sent) if t is not None).timestamp()


MESSAGE_ID = re.compile(r"^Message-ID: <([^@>]+)@", re.MULTILINE)


def mail_written(mail_dir: Path) -> Counter:
    """Messages the file backend wrote, by outbox row id (the stable Message-ID)."""
    written: Counter = Counter()
    if mail_dir.exists():
        for path in mail_dir.iterdir():
            written.update(MESSAGE_ID.findall(path.read_text()))
    return written


def exactly_once(ids: list[str], bodies: list[dict], mail_dir: Path) -> tuple[bool, str]:
    """Every feedback processed once, its side effects made once: the burst's nothing-lost, nothing-doubled check."""
    from django.db.models import Min

    from crm.models import Case, EmailStatus, Feedback, FollowUp, Recognition

    praise = sum(1 for b in bodies if b.get("rating") == 5)
    complaints = sum(1 for b in bodies if b.get("rating") == 1)
    feedback = Feedback.objects.filter(pk__in=ids)
    processed = feedback.filter(status="processed").count()
    reruns = feedback.filter(attempts__gt=1).count()
    recognitions = Recognition.objects.filter(feedback_id__in=ids).count()
    case_ids = set(feedback.exclude(case=None).values_list("case_id", flat=True))
    # A doubled run would open a second case for the feedback that no feedback points at: count by subject time too.
    first = feedback.aggregate(m=Min("received_at"))["m"]
    cases_opened = Case.objects.filter(
        kind="service_recovery", opened_at__gte=first, subject__contains="Still broken"
    ).count()
    recoveries = FollowUp.objects.filter(feedback_id__in=ids, kind="service_recovery").count()
    rows = {str(pk): s for pk, s in _emails_of(ids).values_list("pk", "status")}
    written = mail_written(mail_dir)
    sent = sum(1 for s in rows.values() if s == EmailStatus.SENT)
    mails_once = sum(1 for pk in rows if written.get(pk) == 1)
    mails_doubled = sum(1 for pk in rows if written.get(pk, 0) > 1)
    problems = []
    if processed != len(ids) or len(ids) != len(bodies):
        problems.append(f"processed {processed}/{len(bodies)}")
    if recognitions != praise:
        problems.append(f"recognitions {recognitions} != praise {praise}")
    if len(case_ids) != complaints or cases_opened != complaints or recoveries != complaints:
        problems.append(f"cases {len(case_ids)}/{cases_opened} opened, follow-ups {recoveries} != {complaints}")
    if sent != len(rows) or mails_once != len(rows):
        problems.append(f"e-mails: {len(rows)} rows, {sent} sent, {mails_once} written once, {mails_doubled} twice+")
    summary = (
        f"{processed} processed ({reruns} run more than once), {recognitions} recognitions / {praise} praise, "
        f"{len(case_ids)} cases + {recoveries} follow-ups / {complaints} complaints, "
        f"{mails_once} e-mails written once / {len(rows)} rows, {mails_doubled} doubled"
    )
    return not problems, summary + ("" if not problems else "  PROBLEMS: " + "; ".join(problems))


# --- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="submissions posted in the intake phase (the burst)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("BENCH_PORT", "8000")))
    parser.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients in the intake phase")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--web-class", default="sync", help="gunicorn worker class (sync, gthread)")
    parser.add_argument("--web-threads", type=int, default=1, help="threads per gunicorn worker (gthread)")
    parser.add_argument("--celery-workers", type=int, default=1, help="Celery worker instances")
    parser.add_argument("--concurrency", type=int, default=2, help="pool size of each Celery worker")
    parser.add_argument("--pool", default="prefork", help="Celery pool (prefork, threads, solo)")
    parser.add_argument("--prefetch", type=int, default=0, help="worker prefetch multiplier (0: the settings')")
    parser.add_argument("--steady-rate", type=float, default=20.0, help="open-loop submissions/s in phase (b)")
    parser.add_argument("--steady-seconds", type=float, default=30.0)
    parser.add_argument("--skip-steady", action="store_true")
    args = parser.parse_args()
    # Stopped from outside: still run the `finally` that stops gunicorn and the workers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not os.environ.get("DATABASE_URL", "").startswith("postgres") or not os.environ.get("REDIS_URL"):
        raise SystemExit("Set DATABASE_URL (PostgreSQL) and REDIS_URL: the benchmark runs on real services.")

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
    os.environ["CRM_HTTPS"] = "false"
    import django

    django.setup()
    from django.core.management import call_command

    from crm.celery import app

    call_command("migrate", verbosity=0)
    call_command("seed_demo", stdout=io.StringIO())
    queue = app.conf.task_default_queue
    idle_queue = f"{queue}-bench-idle"

    tmp = Path(tempfile.mkdtemp(prefix="bench-feedback-"))
    mail_dir = tmp / "mail"
    env = {
        **os.environ,
        "DEBUG": "false",
        "CRM_HTTPS": "false",
        "CRM_FEEDBACK_THROTTLE": "",  # all clients share one address here
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(mail_dir),
        "LOG_LEVEL": "WARNING",
    }
    host = socket.gethostname()
    names = [f"bench{i}@{host}" for i in range(args.celery_workers)]
    worker_logs = [tmp / f"worker{i}.log" for i in range(args.celery_workers)]
    workers = []
    for i, log_path in enumerate(worker_logs):
        options = ["--concurrency", str(args.concurrency), "--pool", args.pool]
        if args.prefetch:
            options += ["--prefetch-multiplier", str(args.prefetch)]
        with log_path.open("w") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "crm", "worker", *options, "-Q", idle_queue,
                 "-n", f"bench{i}@%h", "--without-mingle", "--without-gossip"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
            workers.append(worker)
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "crm.wsgi", "-w", str(args.web_workers), "-k", args.web_class,
         "--threads", str(args.web_threads), "-b", f"127.0.0.1:{args.port}", "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        with app.connection_for_write() as conn:  # nothing left over from an earlier, interrupted run
            conn.default_channel.queue_purge(queue)
        wait_workers(app, names, workers, worker_logs)
        wait_http(args.port)
        client = Client(args.port)
        client.post({"rating": 3, "text": "warm-up"})  # loads the URLconf, the task registry, a connection
        import redis

        redis_pid = int(redis.Redis.from_url(os.environ["REDIS_URL"]).info("server")["process_id"])  # shared
        meter = CpuMeter(
            {
                "gunicorn": lambda: cpu_of(descendants(web.pid)),
                "celery": lambda: cpu_of([pid for w in workers for pid in descendants(w.pid)]),
                "postgres": lambda: cpu_of(pg_backends()),
                "postgres exited": pg_exited_cpu,
                "redis": lambda: cpu_of([redis_pid]),
            }
        )

        # (a) intake, nobody consuming.
        world = world_make(args.n)
        bodies = payloads(args.n, world)
        meter.start()
        ids, posting = post_flat_out(client, bodies, args.clients)
        intake_cpu = meter.stop()

        # (c) the burst those left queued, drained by the workers.
        meter.start()
        drain_start = time.time()
        app.control.add_consumer(queue, destination=names, reply=True, timeout=5)
        wait_processed(ids, workers)
        drain = finished_at(ids) - drain_start
        drain_cpu = meter.stop()
        once, once_summary = exactly_once(ids, bodies, mail_dir)

        # (b) steady, open loop, workers consuming.
        steady = None
        if not args.skip_steady:
            count = int(args.steady_rate * args.steady_seconds)
            world = world_make(count)
            steady_bodies = payloads(count, world)
            meter.start()
            steady_ids, http_ms, late = post_open_loop(client, steady_bodies, args.steady_rate)
            wait_processed(steady_ids, workers)
            steady_cpu = meter.stop()
            from crm.models import Feedback

            rows = Feedback.objects.filter(pk__in=steady_ids).values_list("received_at", "processed_at")
            latencies = [(done - received).total_seconds() * 1000 for received, done in rows]
            steady_once, steady_summary = exactly_once(steady_ids, steady_bodies, mail_dir)
            steady = (latencies, http_ms, late, steady_cpu, steady_once, steady_summary, count)
    finally:
        for proc in (web, *workers):
            proc.terminate()
        for proc in (web, *workers):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()

    n = len(ids)
    web_desc = f"gunicorn {args.web_workers} x {args.web_class}" + (
        f" ({args.web_threads} threads)" if args.web_threads > 1 else ""
    )
    celery_desc = f"Celery {args.celery_workers} x {args.pool} concurrency {args.concurrency}" + (
        f" prefetch {args.prefetch}" if args.prefetch else ""
    )
    load = os.getloadavg()
    print(f"\n{web_desc}; {celery_desc}; {args.clients} clients; {os.cpu_count()} CPUs, load {load[0]:.1f}")

    def cpu_ms(cpu: dict[str, float], names: tuple[str, ...], per: int) -> str:
        return ", ".join(f"{name} {cpu[name] / per * 1000:.2f}" for name in names)

    rate = n / posting
    workflows = n / drain
    rows_out = [
        ("(a) intake, submissions/s (202)", f"{rate:.0f}", f"≥ {TARGETS['intake']:.0f}", rate >= TARGETS["intake"]),
        (f"(c) burst of {n} drained in", f"{drain:.2f} s ({workflows:.0f}/s)", f"≤ {TARGETS['drain_s']:.0f} s",
         drain <= TARGETS["drain_s"]),
        ("(c) processed exactly once", "yes" if once else "NO", "yes", once),
    ]  # fmt: skip
    if steady is not None:
        latencies, http_ms, late, steady_cpu, steady_once, steady_summary, count = steady
        p99 = percentile(latencies, 99)
        rows_out.append(
            (
                f"(b) enqueue→processed at {args.steady_rate:g}/s, p99",
                f"{p99:.0f} ms (p50 {statistics.median(latencies):.0f}, max {max(latencies):.0f})",
                f"≤ {TARGETS['p99_ms']:.0f} ms",
                p99 <= TARGETS["p99_ms"],
            )
        )
    print(f"\n| {'target':<42} | {'measured':<36} | {'goal':<8} | met |")
    print(f"| {'-' * 42} | {'-' * 36} | {'-' * 8} | --- |")
    for label, measured, goal, met in rows_out:
        print(f"| {label:<42} | {measured:<36} | {goal:<8} | {'yes' if met else 'NO'} |")
    cores = os.cpu_count() or 1

    def capacity(cpu: dict[str, float], names: tuple[str, ...]) -> str:
        """Items/s the server side could do on `cores` idle cores: its CPU per item, nothing else running."""
        per_item = sum(cpu[name] for name in names) / n
        return f"{cores / per_item:.0f}/s" if per_item else "-"

    web_side = ("gunicorn", "postgres", "redis")
    print(
        f"\n(a) {n} in {posting:.2f} s; CPU ms per submission: "
        f"{cpu_ms(intake_cpu, (*web_side, 'postgres exited', 'bench client'), n)}; "
        f"CPU-bound capacity on {cores} idle cores {capacity(intake_cpu, web_side)}"
    )
    work_side = ("celery", "postgres", "redis")
    print(
        f"(c) CPU ms per workflow: {cpu_ms(drain_cpu, (*work_side, 'postgres exited'), n)}; "
        f"CPU-bound capacity on {cores} idle cores {capacity(drain_cpu, work_side)}"
    )
    print(f"(c) {once_summary}")
    if steady is not None:
        print(
            f"(b) {count} over {args.steady_seconds:g} s; HTTP p50 {statistics.median(http_ms):.0f} ms, "
            f"p99 {percentile(http_ms, 99):.0f} ms; sender at most {late * 1000:.0f} ms late; CPU ms per feedback: "
            f"{cpu_ms(steady_cpu, ('gunicorn', 'celery', 'postgres', 'redis', 'postgres exited'), count)}"
        )
        print(f"(b) {steady_summary}")


if __name__ == "__main__":
    main()
