"""Full-size fault experiments (issue 11), figures for docs/reliability.md.

    DATABASE_URL=postgres://.../goldfish_faults .venv/bin/python -m bench.faults outage [--n 1000 --outage 30]
    DATABASE_URL=postgres://.../goldfish_faults .venv/bin/python -m bench.faults kill [--n 300]

Each run uses the given (throwaway) database, migrated here, and starts its own
redis-server (no persistence: a crash loses what it held), SMTP server (counts
what it accepted by Message-ID) and Celery workers with embedded beat, all on
free ports; the machine's shared Redis is never touched.

outage: gunicorn (2 workers) takes N feedback posts paced over time from 4
  clients; Redis is SIGKILLed 5 s in and started again (empty) after --outage
  seconds. Prints request latency (all, during the outage), how long after Redis
  returned the last workflow finished, and anything made twice.
kill: N praise feedback from customers who agreed to e-mail (3 e-mails each: them,
  Jane, Sofia) to an SMTP server that takes --delay s per message; the whole
  worker is SIGKILLed when a third of the e-mails are in, then a second worker
  starts. Prints e-mails lost and doubled (by Message-ID), and the recovery time.
Production settings by default (CRM_SWEEP_SECONDS 15, CRM_OUTBOX_RESEND_SECONDS 30,
CRM_EMAIL_LEASE_SECONDS 120); override them in the environment.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.faultkit import (  # noqa: E402
    RedisServer,
    SlowSmtpServer,
    Worker,
    broker_at,
    free_port,
    percentile,
    wait_until,
)


def setup_django() -> None:
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        raise SystemExit("Set DATABASE_URL to a throwaway PostgreSQL database: the experiments write to it.")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
    os.environ["CRM_HTTPS"] = "false"
    os.environ.pop("REDIS_URL", None)  # this process only reads the database
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from crm.celery import app

    app.conf.task_always_eager = False  # this process publishes to the experiment's Redis (broker_at)


def floor(customers: int, consent: bool):
    """Sofia supervises North, where Jane works; `customers` customers each with one contact with Jane."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.utils import timezone

    from crm.models import Customer, Identity, Interaction, Preference, StaffProfile, Team

    User = get_user_model()

    sofia, _ = User.objects.get_or_create(username="sofia", defaults={"email": "sofia@goldfish.example"})
    sofia.groups.add(Group.objects.get(name="supervisor"))
    jane, _ = User.objects.get_or_create(username="jane", defaults={"email": "jane@goldfish.example"})
    jane.groups.add(Group.objects.get(name="agent"))
    north, _ = Team.objects.get_or_create(name="North", defaults={"supervisor": sofia})
    StaffProfile.objects.get_or_create(user=jane, defaults={"team": north, "supervisor": sofia})
    run = int(time.time())
    contacts = []
    for n in range(customers):
        person = Customer.objects.create(display_name=f"Bench {run}-{n}")
        address = f"bench{run}-{n}@example.com"
        Identity.objects.create(customer=person, kind="email", value=address, normalized=address)
        if consent:
            Preference.objects.create(customer=person, key="contact_consent", value="true", recorded_at=timezone.now())
        contacts.append(
            str(Interaction.objects.create(customer=person, agent=jane, channel="phone", started_at=timezone.now()).pk)
        )
    return contacts


def worker_env(smtp: SlowSmtpServer, redis: RedisServer) -> dict[str, str]:
    return {**smtp.env(), "DATABASE_URL": os.environ["DATABASE_URL"], "REDIS_URL": redis.url(), "LOG_LEVEL": "INFO"}


def outage(args, tmp: Path) -> None:
    from django.utils import timezone

    from crm import emails
    from crm.models import Case, Feedback, OutboundEmail, Recognition

    contacts = floor(args.n, consent=False)
    smtp, redis = SlowSmtpServer(delay=0).start(), RedisServer(tmp / "redis").start()
    env = {**worker_env(smtp, redis), "CRM_FEEDBACK_THROTTLE": ""}
    worker = Worker(env, tmp / "worker.log", concurrency=args.concurrency).start()
    port = free_port()
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "crm.wsgi", "-w", "2", "--threads", "4", "-b", f"127.0.0.1:{port}"],
        cwd=ROOT, env={**os.environ, **env, "DEBUG": "false", "CRM_HTTPS": "false", "LOG_LEVEL": "WARNING"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    clients = 4
    timings: list[tuple[float, float]] = []  # (started, seconds)
    statuses: list[int] = []
    try:
        wait_until(lambda: _healthy(port), "gunicorn", 60, 0.3)
        started = time.monotonic()
        window = {"down": started + 5, "up": started + 5 + args.outage}

        def post(k: int) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            for i in range(k, args.n, clients):
                time.sleep(max(0.0, started + i / args.rate - time.monotonic()))
                body = {"interaction_id": contacts[i], "rating": 5 if i % 2 == 0 else 1, "text": "Jane"}
                began = time.monotonic()
                conn.request("POST", "/api/v1/feedback", json.dumps(body), {"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
                timings.append((began, time.monotonic() - began))
                statuses.append(response.status)

        with ThreadPoolExecutor(clients + 1) as pool:
            posting = [pool.submit(post, k) for k in range(clients)]
            time.sleep(max(0.0, window["down"] - time.monotonic()))
            redis.stop(crash=True)
            time.sleep(max(0.0, window["up"] - time.monotonic()))
            redis.start()
            back_at = timezone.now()
            for job in posting:
                job.result()
        wait_until(
            lambda: Feedback.objects.filter(interaction_id__in=contacts, status="processed").count() == args.n,
            "every feedback to be processed",
            600,
            1,
        )
        last = max(Feedback.objects.filter(interaction_id__in=contacts).values_list("processed_at", flat=True))
        rows = list(OutboundEmail.objects.filter(notification__feedback__interaction_id__in=contacts))
        wait_until(lambda: len(smtp.received()) >= len(rows), "every e-mail", 120, 1)
    finally:
        web.terminate()
        worker.stop()
        redis.stop()
        smtp.stop()
    during = [s for began, s in timings if window["down"] <= began < window["up"]]
    every = [s for _, s in timings]
    stored = Feedback.objects.filter(interaction_id__in=contacts).count()
    print(
        f"posts: {args.n} at {args.rate:g}/s from {clients} clients; Redis crashed 5 s in for {args.outage} s; "
        f"worker concurrency {args.concurrency}"
    )
    print(f"answers: {sorted(set(statuses))}; stored {stored} of {args.n}")
    print(f"latency all: p50 {percentile(every, 50) * 1000:.0f} ms, p99 {percentile(every, 99) * 1000:.0f} ms, "
          f"max {max(every) * 1000:.0f} ms")  # fmt: skip
    if during:
        print(f"latency during outage ({len(during)} posts): p50 {percentile(during, 50) * 1000:.0f} ms, "
              f"p99 {percentile(during, 99) * 1000:.0f} ms, max {max(during) * 1000:.0f} ms")  # fmt: skip
    requeued = max(
        Feedback.objects.filter(interaction_id__in=contacts, received_at__lt=back_at).values_list(
            "dispatched_at", flat=True
        )
    )
    print(
        f"everything received before Redis returned was (re)queued {(requeued - back_at).total_seconds():.1f} s after"
    )
    print(f"last workflow done {(last - back_at).total_seconds():.1f} s after Redis was back")
    contacts_set = Feedback.objects.filter(interaction_id__in=contacts)
    print(
        f"recognitions {Recognition.objects.filter(feedback__in=contacts_set).count()} (praise {args.n - args.n // 2}),"
        f" cases {Case.objects.filter(feedback__in=contacts_set).count()} (complaints {args.n // 2})"
    )
    expected = {emails.message_id(row) for row in rows}
    print(
        f"e-mails: {len(rows)} queued, {len(expected & set(smtp.message_ids()))} received, "
        f"{len(smtp.duplicates())} Message-IDs received twice"
    )
    print(
        f"duplicate deliveries of workflows ('already'): {(tmp / 'worker.log').read_text().count(chr(39) + 'already')}"
    )


def _healthy(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except OSError:
        return False


def kill(args, tmp: Path) -> None:
    from django.utils import timezone

    from crm import emails
    from crm import feedback as workflows
    from crm.models import OutboundEmail

    contacts = floor(args.n, consent=True)
    smtp, redis = SlowSmtpServer(delay=args.delay).start(), RedisServer(tmp / "redis").start()
    env = worker_env(smtp, redis)
    first = Worker(env, tmp / "first.log", concurrency=args.concurrency).start()
    second = Worker(env, tmp / "second.log", concurrency=args.concurrency)
    expected = 3 * args.n
    began = timezone.now()
    try:
        with broker_at(redis.url()):
            ids = [
                str(workflows.feedback_submit(interaction_id=contact, rating=5, text="Jane was great").pk)
                for contact in contacts
            ]
        wait_until(lambda: len(smtp.received()) >= expected // 3 and smtp.mid_delay(), "e-mails in flight", 900, 0.01)
        in_flight = smtp.in_flight
        first.kill()
        before = len(smtp.received())
        killed = time.monotonic()
        second.start()
        rows = lambda: OutboundEmail.objects.filter(created_at__gte=began)  # noqa: E731
        wait_until(lambda: rows().filter(status="sent").count() == expected, "every e-mail to be sent", 1800, 1)
        done = time.monotonic() - killed
    finally:
        first.kill()
        second.stop()
        redis.stop()
        smtp.stop()
    received = smtp.message_ids()
    wanted = {emails.message_id(row) for row in rows()}
    print(
        f"workflows: {len(ids)}, e-mails expected {expected} (SMTP {args.delay} s each, concurrency {args.concurrency})"
    )
    print(f"killed the whole worker with {before} e-mails in, {in_flight} in flight; second worker started")
    print(
        f"e-mails lost: {len(wanted - set(received))}; received twice (same Message-ID): {len(smtp.duplicates())}; "
        f"extra: {len(set(received) - wanted)}"
    )
    print(
        f"all sent {done:.1f} s after the kill "
        f"(lease CRM_EMAIL_LEASE_SECONDS={os.environ.get('CRM_EMAIL_LEASE_SECONDS', 120)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="experiment", required=True)
    run_outage = sub.add_parser("outage")
    run_outage.add_argument("--n", type=int, default=1000)
    run_outage.add_argument("--outage", type=float, default=30)
    run_outage.add_argument("--rate", type=float, default=10, help="posts per second")
    run_outage.add_argument("--concurrency", type=int, default=2, help="worker processes")
    run_kill = sub.add_parser("kill")
    run_kill.add_argument("--n", type=int, default=300)
    run_kill.add_argument("--delay", type=float, default=0.5)
    run_kill.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    setup_django()
    tmp = Path(tempfile.mkdtemp(prefix=f"bench-faults-{args.experiment}-"))
    print(f"logs in {tmp}")
    {"outage": outage, "kill": kill}[args.experiment](args, tmp)


if __name__ == "__main__":
    main()
