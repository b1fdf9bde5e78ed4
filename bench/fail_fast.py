"""Fail fast under dependency faults (issue 11, part B): Redis frozen, PostgreSQL stopped, under load.

    .venv/bin/python -m bench.fail_fast [--freeze-seconds 15] [--stop-seconds 20] [--rate 20]

Starts its own PostgreSQL cluster, redis-server and gunicorn (1 process x 4 threads;
tests/own_services.py), never the machine's shared services. Then, with lookups sent
open-loop at --rate per second (each request starts on schedule, whatever the others do):

1. Redis frozen (SIGSTOP) for --freeze-seconds, with /readyz probed every second;
2. PostgreSQL stopped for --stop-seconds, then started again.

Prints a Markdown table per experiment: answers by status, latency p50/p99/max, and
the server log's warnings, errors and tracebacks during the window.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.own_services import OwnPostgres, OwnRedis, OwnServer

CREATE_AGENT = """
from django.contrib.auth.models import Group, User
from crm import tokens
agent = User.objects.create_user("bench", password="x")
agent.groups.add(Group.objects.get(name="agent"))
print(tokens.issue(agent)[0])
"""

_local = threading.local()


def _session() -> requests.Session:
    if not hasattr(_local, "session"):
        _local.session = requests.Session()
    return _local.session


def timed(method: str, url: str, **kwargs) -> tuple[int, float]:
    started = time.monotonic()
    try:
        status = _session().request(method, url, timeout=30, **kwargs).status_code
    except requests.RequestException:
        status = 0
    return status, time.monotonic() - started


def open_loop(send, rate: float, seconds: float, during=None) -> list[tuple[int, float]]:
    """send() started every 1/rate s for `seconds`; during(elapsed) is called each second (fault control)."""
    results: list = []
    with ThreadPoolExecutor(max_workers=256) as pool:
        start = time.monotonic()
        n, next_tick = 0, 0
        while (elapsed := time.monotonic() - start) < seconds:
            if during and elapsed >= next_tick:
                during(next_tick)
                next_tick += 1
            due = start + n / rate
            if time.monotonic() < due:
                time.sleep(min(due - time.monotonic(), 0.01))
                continue
            results.append(pool.submit(send))
            n += 1
        return [f.result() for f in results]


def summary(title: str, answers: list[tuple[int, float]], log: str, extra: dict[str, str]) -> str:
    statuses: dict[int, int] = {}
    for status, _ in answers:
        statuses[status] = statuses.get(status, 0) + 1
    latencies = sorted(s for _, s in answers)
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    rows = {
        "requests": str(len(answers)),
        "answers by status": ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items())),
        "latency p50 / p99 / max (ms)": f"{p(0.5):.0f} / {p(0.99):.0f} / {latencies[-1] * 1000:.0f}",
        "mean (ms)": f"{statistics.mean(latencies) * 1000:.0f}",
        "server log: WARNING / ERROR lines / tracebacks": (
            f"{log.count(' WARNING ')} / {log.count(' ERROR ')} / {log.count('Traceback')}"
        ),
        **extra,
    }
    lines = [f"### {title}", "", "| measure | value |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in rows.items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--freeze-seconds", type=float, default=15)
    parser.add_argument("--stop-seconds", type=float, default=20)
    parser.add_argument("--rate", type=float, default=20, help="lookups per second")
    args = parser.parse_args()

    postgres, redis = OwnPostgres(), OwnRedis()
    server = None
    try:
        server = OwnServer(postgres.url, redis.url)
        token = server.manage("shell", "-c", CREATE_AGENT).strip().splitlines()[-1]
        auth = {"Authorization": f"Token {token}"}
        lookup_url = f"{server.base}/api/v1/context/lookup"

        def lookup():
            body = {"phone": "+44 20 7946 0018", "call_id": str(uuid.uuid4())}
            return timed("POST", lookup_url, headers=auth, json=body)

        open_loop(lookup, args.rate, 2)  # warm up

        # 1. Redis frozen
        readyz: list[float] = []

        def probe(second):
            threading.Thread(target=lambda: readyz.append(timed("GET", f"{server.base}/readyz")[1])).start()

        mark = len(server.log())
        redis.freeze()
        try:
            answers = open_loop(lookup, args.rate, args.freeze_seconds, during=probe)
        finally:
            redis.thaw()
        time.sleep(1)
        print(
            summary(
                f"Redis frozen (SIGSTOP) {args.freeze_seconds:.0f} s, lookups at {args.rate:.0f}/s",
                answers,
                server.log()[mark:],
                {"/readyz during the freeze, max (ms)": f"{max(readyz) * 1000:.0f} ({len(readyz)} probes)"},
            )
        )

        # 2. PostgreSQL stopped
        mark = len(server.log())
        stopped_at: list[float] = []

        def stop_then_start(second):
            if second == 0:
                postgres.stop()
                stopped_at.append(time.monotonic())
            elif second == int(args.stop_seconds):
                postgres.start()

        answers = open_loop(lookup, args.rate, args.stop_seconds + 5, during=stop_then_start)
        print(
            summary(
                f"PostgreSQL stopped {args.stop_seconds:.0f} s then started, lookups at {args.rate:.0f}/s "
                f"(window {args.stop_seconds + 5:.0f} s)",
                answers,
                server.log()[mark:],
                {"server process restarted": "no"},
            )
        )
    finally:
        if server is not None:
            server.close()
        redis.stop()
        postgres.close()


if __name__ == "__main__":
    main()
