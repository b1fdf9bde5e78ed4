"""Parts for fault experiments (issue 11): a slow SMTP server, a private Redis, Celery workers to kill.

Used by the fault tests (tests/integration/faults) and the full-size runs
(bench/faults.py). Everything here starts its own process or thread on a free
port and stops only that: the machine's shared Redis and PostgreSQL are never
touched.
"""

from __future__ import annotations

import asyncio
import collections
import email
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition, what: str, seconds: float, interval: float = 0.1):
    """Poll `condition` until it is truthy; TimeoutError naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    raise TimeoutError(f"timed out after {seconds}s waiting for {what}")


class SlowSmtpServer:
    """An SMTP server that takes `delay` seconds per message before it answers, and counts by Message-ID.

    A message is accepted when the server answers the end of DATA: a client that
    disconnects during the delay (its worker was killed) cancels the handler
    (aiosmtpd does), so that message was not accepted and is not counted. A
    re-send of a message whose "250" the client did see is counted again, under
    the same Message-ID: that is what `duplicates()` shows.
    """

    def __init__(self, delay: float = 0.5):
        self.delay = delay
        self.port = free_port()
        self.in_flight = 0
        self.last_started = 0.0  # time.monotonic() when the latest message's DATA ended (its delay began)
        self._lock = threading.Lock()
        self._received: list[tuple[str, tuple[str, ...]]] = []
        self._controller = None

    async def handle_DATA(self, server, session, envelope):
        self.in_flight += 1
        self.last_started = time.monotonic()
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        message = email.message_from_bytes(envelope.content)
        with self._lock:
            self._received.append((message["Message-ID"] or "", tuple(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"

    def start(self) -> SlowSmtpServer:
        import logging

        from aiosmtpd.controller import Controller

        logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command at INFO
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port, ready_timeout=10)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()

    def mid_delay(self) -> bool:
        """A message is on the wire with at least half its delay to go: a kill now lands before its "250"."""
        return bool(self.in_flight) and time.monotonic() - self.last_started < self.delay / 2

    def received(self) -> list[tuple[str, tuple[str, ...]]]:
        with self._lock:
            return list(self._received)

    def message_ids(self) -> collections.Counter:
        return collections.Counter(message_id for message_id, _ in self.received())

    def duplicates(self) -> dict[str, int]:
        return {message_id: n for message_id, n in self.message_ids().items() if n > 1}

    def env(self) -> dict[str, str]:
        """What a worker needs to send to this server by real SMTP."""
        return {
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(self.port),
            "EMAIL_TIMEOUT": "5",
        }


class RedisServer:
    """A private redis-server on a free port, without persistence unless asked: stop() loses what it held."""

    def __init__(self, workdir: Path, *, appendonly: bool = False):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.appendonly = appendonly
        self.process: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> RedisServer:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--dir", str(self.workdir), "--appendonly", "yes" if self.appendonly else "no"]
        args += ["--appendfsync", "everysec"]
        log = (self.workdir / "redis.log").open("a")
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        wait_until(self.ping, f"redis-server on port {self.port}", 10, 0.05)
        return self

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, *, crash: bool = True) -> None:
        """Stop it: SIGKILL (a crash: without AOF everything queued is lost) or SIGTERM."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if crash else signal.SIGTERM)
            self.process.wait(timeout=10)
        self.process = None


class Worker:
    """`celery -A crm worker` (optionally with embedded beat) in its own process group, so kill() takes it all."""

    def __init__(self, env: dict[str, str], log: Path, *, concurrency: int = 1, beat: bool = True):
        self.env = {**os.environ, "DJANGO_SETTINGS_MODULE": "crm.settings", "CRM_HTTPS": "false", **env}
        self.log = Path(log)
        self.concurrency = concurrency
        self.beat = beat
        self.process: subprocess.Popen | None = None

    def start(self, *, ready_seconds: float = 60) -> Worker:
        name = f"fault-{uuid.uuid4().hex[:8]}@%h"
        args = [sys.executable, "-m", "celery", "-A", "crm", "worker", "--concurrency", str(self.concurrency)]
        args += ["-l", "info", "-n", name, "--without-mingle", "--without-gossip"]
        if self.beat:
            args += ["-B", "-s", str(self.log.with_suffix(".beat-schedule"))]
        self.log.parent.mkdir(parents=True, exist_ok=True)
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("a") as out:
            self.process = subprocess.Popen(
                args, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

        def ready() -> bool:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"the worker exited:\n{self.log.read_text()[-3000:]}")
            return "ready." in self.log.read_text()[offset:]

        wait_until(ready, "the Celery worker", ready_seconds, 0.2)
        return self

    def kill(self) -> None:
        """SIGKILL the whole worker (main process, pool children, embedded beat): nothing gets to clean up."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()


class broker_at:
    """Point this process's Celery producer at another broker URL, then back."""

    def __init__(self, url: str):
        self.url = url

    def _reset_pools(self) -> None:
        from crm.celery import app

        # kombu keeps one pool per broker URL; forgetting the app's reference is enough.
        app._pool = None
        app.amqp._producer_pool = None

    def __enter__(self):
        from crm.celery import app

        self.previous = app.conf.broker_url
        self._reset_pools()
        app.conf.broker_url = self.url
        return self

    def __exit__(self, *exc):
        from crm.celery import app

        self._reset_pools()
        app.conf.broker_url = self.previous
        return False


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]
