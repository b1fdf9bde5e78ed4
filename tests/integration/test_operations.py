"""Issue 17 on the real stack: gunicorn with two worker processes and a Celery worker, sharing
one PROMETHEUS_MULTIPROC_DIR, on the test database and the suite's Redis.

The module starts its own web and worker processes on a queue of its own (so the
workflow tests' worker, if running, never takes these tasks) and reads their logs.
It asserts what an operator sees: /metrics adding up across processes, the
request id from the HTTP response in the worker's log line, and no customer's
name, phone or e-mail anywhere in either log after the main journeys.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import pytest
from django.db import connection
from prometheus_client.parser import text_string_to_metric_families

from crm import tokens
from crm.celery import app
from crm.models import Feedback, FeedbackStatus
from tests.factories import CustomerFactory, IdentityFactory, UserFactory

pytestmark = [pytest.mark.worker, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]
QUEUE = f"goldfish-ops-{uuid.uuid4().hex[:8]}"
WAIT_SECONDS = 30


@dataclass
class Stack:
    base: str
    web_log: Path
    worker_log: Path

    def call(self, method: str, path: str, body=None, token: str | None = None, request_id: str | None = None):
        """(status, headers, parsed body) over a fresh connection, as a separate client would."""
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Token {token}"
        if request_id:
            headers["X-Request-ID"] = request_id
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310 - our own test server
                raw, status, got = response.read(), response.status, response.headers
        except urllib.error.HTTPError as error:
            raw, status, got = error.read(), error.code, error.headers
        parsed = json.loads(raw) if raw and got.get("Content-Type", "").startswith("application/json") else raw
        return status, got, parsed

    def scrape(self) -> dict[tuple[str, tuple], float]:
        status, _, raw = self.call("GET", "/metrics")
        assert status == 200, raw
        samples = {}
        for family in text_string_to_metric_families(raw.decode()):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition: Callable[[], object], what: str, seconds: float = WAIT_SECONDS):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def json_lines(path: Path) -> list[dict]:
    """Every line of a log, each of which must be one JSON object."""
    lines = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            lines.append(json.loads(line))
        except ValueError:
            pytest.fail(f"{path.name} line {number} is not JSON: {line[:300]}")
    return lines


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def stack(django_db_setup, django_db_blocker, tmp_path_factory):
    base = tmp_path_factory.mktemp("operations")
    metrics_dir, mail_dir = base / "prometheus", base / "mail"
    metrics_dir.mkdir()
    mail_dir.mkdir()
    database_url = urlunparse(
        urlparse(os.environ["DATABASE_URL"])._replace(path="/" + connection.settings_dict["NAME"])
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "crm.settings",
        "DATABASE_URL": database_url,
        "CRM_HTTPS": "false",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "CELERY_TASK_DEFAULT_QUEUE": QUEUE,
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(mail_dir),
        "CRM_FEEDBACK_THROTTLE": "",
        "LOG_LEVEL": "INFO",
    }
    port = free_port()
    web_log, worker_log = base / "web.log", base / "worker.log"
    with web_log.open("w") as web_out, worker_log.open("w") as worker_out:
        web = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "crm.wsgi", "-w", "2", "-b", f"127.0.0.1:{port}", "--timeout", "60"],
            cwd=ROOT, env=env, stdout=web_out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "crm", "-q", "worker", "--concurrency", "1", "-l", "info",
             "-n", f"ops-{uuid.uuid4().hex[:8]}@%h", "--without-mingle", "--without-gossip"],
            cwd=ROOT, env=env, stdout=worker_out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    stack = Stack(f"http://127.0.0.1:{port}", web_log, worker_log)
    try:

        def web_up():
            if web.poll() is not None:
                pytest.fail(f"gunicorn exited:\n{web_log.read_text()[-3000:]}")
            try:
                return stack.call("GET", "/healthz")[0] == 200
            except OSError:
                return False

        wait_for(web_up, "gunicorn to answer", 60)
        wait_for(lambda: worker.poll() is None and "ready." in worker_log.read_text(), "the Celery worker", 60)
        yield stack
    finally:
        stop(web)
        stop(worker)


@pytest.fixture
def people(transactional_db):
    """Sam supervises (and takes calls); Jim is a known caller."""
    sam = UserFactory(username="sam", first_name="Sam", role="supervisor", is_staff=True, email="sam@staff.test")
    jim = CustomerFactory(display_name="James Okafor")
    IdentityFactory(customer=jim, kind="phone", value="+12125550100", normalized="+12125550100")
    return {"token": tokens.issue(sam)[0], "jim": jim}


def test_metrics_add_up_across_two_gunicorn_workers_and_the_celery_worker(stack, people):
    token = people["token"]
    before = stack.scrape()

    def lookup(_):
        status, headers, body = stack.call("POST", "/api/v1/context/lookup", {"phone": "+12125550100"}, token)
        assert (status, body["match"]) == (200, "unique")
        return headers["X-Request-ID"]

    with ThreadPoolExecutor(4) as pool:
        lookup_ids = set(pool.map(lookup, range(40)))
    status, _, received = stack.call("POST", "/api/v1/feedback", {"rating": 5, "text": "Quick and kind."})
    assert status == 202
    wait_for(
        lambda: Feedback.objects.filter(pk=received["id"], status=FeedbackStatus.PROCESSED).exists(),
        "the worker to process the feedback",
    )
    app.send_task("crm.feedback_process", args=["not-a-feedback-id"], queue=QUEUE)  # fails: not an id

    def failed_counted():
        samples = stack.scrape()
        moved = value(samples, "goldfish_tasks_failed_total", task="crm.feedback_process") - value(
            before, "goldfish_tasks_failed_total", task="crm.feedback_process"
        )
        return samples if moved >= 1 else None

    after = wait_for(failed_counted, "the failed task in /metrics")

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    # Each scrape is answered by one of the two web processes, yet counts both.
    served_by = {line["pid"] for line in json_lines(stack.web_log) if line.get("request_id") in lookup_ids}
    assert len(served_by) == 2, "the lookups should have been served by both gunicorn workers"
    assert moved("goldfish_lookup_duration_seconds_count", match="unique") == 40
    assert moved("goldfish_http_requests_total", route="context-lookup", method="POST", status="2xx") == 40
    assert moved("goldfish_http_requests_total", route="feedback-list", method="POST", status="2xx") == 1
    # The worker's task metrics, in the same answer.
    assert moved("goldfish_tasks_started_total", task="crm.feedback_process") == 2
    assert moved("goldfish_tasks_succeeded_total", task="crm.feedback_process") == 1
    assert moved("goldfish_tasks_failed_total", task="crm.feedback_process") == 1
    assert moved("goldfish_task_queue_wait_seconds_count", task="crm.feedback_process") == 2
    assert moved("goldfish_task_runtime_seconds_count", task="crm.feedback_process") == 2
    # State read at scrape time.
    assert value(after, "goldfish_dependency_up", dependency="database") == 1
    assert value(after, "goldfish_dependency_up", dependency="broker") == 1
    assert value(after, "goldfish_queue_depth", queue=QUEUE) == 0
    assert value(after, "goldfish_outbox_backlog", state="unsent") == 0


def test_the_request_id_of_a_feedback_reaches_the_workers_log_line(stack, people):
    request_id = f"ops-{uuid.uuid4().hex}"
    status, headers, received = stack.call(
        "POST", "/api/v1/feedback", {"rating": 4, "text": "Fine."}, request_id=request_id
    )
    assert (status, headers["X-Request-ID"]) == (202, request_id)

    def processed_line():
        for line in json_lines(stack.worker_log):
            if line.get("logger") == "crm.feedback" and line["event"].startswith(
                f"feedback {received['id']} processed"
            ):
                return line
        return None

    line = wait_for(processed_line, "the worker's log line")
    assert line["request_id"] == request_id
    assert line["task_name"] == "crm.feedback_process"
    assert line["task_id"]
    assert line["level"] == "INFO" and line["timestamp"]
    web = [line for line in json_lines(stack.web_log) if line.get("request_id") == request_id]
    assert [(w["route"], w["status"]) for w in web if w["logger"] == "goldfish.access"] == [("feedback-list", 202)]


def test_the_main_journeys_leave_no_name_phone_or_email_in_the_web_or_worker_logs(stack, people):
    """Lookup, wrap-up, feedback, merge and erasure through HTTP; then search both logs."""
    token = people["token"]
    name, preferred, phone, email = "Marguerite Quaresma", "Maggie", "+44 20 7946 0958", "maggie.q@example.org"
    other_phone, other_email = "+1 415 555 0142", "m.quaresma@example.net"
    request_ids = []

    def call(method, path, body=None, expect=200, auth=True):
        request_id = f"journey-{uuid.uuid4().hex[:12]}"
        request_ids.append(request_id)
        status, _, parsed = stack.call(method, path, body, token if auth else None, request_id)
        assert status == expect, parsed
        return parsed

    identities = [{"kind": "phone", "value": phone}, {"kind": "email", "value": email}]
    maggie = call("POST", "/api/v1/customers", {"display_name": name, "preferred_name": preferred,
                                                "identities": identities}, expect=201)  # fmt: skip
    duplicate = call("POST", "/api/v1/customers", {"display_name": "M. Quaresma", "identities": [
        {"kind": "phone", "value": other_phone}, {"kind": "email", "value": other_email}]}, expect=201)  # fmt: skip
    card = call("POST", "/api/v1/context/lookup", {"phone": phone, "email": email})
    assert card["match"] == "unique"
    call("GET", f"/api/v1/customers?search={preferred}")
    reason = call("GET", "/api/v1/reasons")[0]["code"]
    call("PATCH", f"/api/v1/interactions/{card['interaction_id']}", {
        "reason": reason, "outcome": "resolved", "summary": f"{preferred} asked us to write to {email}",
        "preferences": {"callback_number": phone}})  # fmt: skip
    feedback = call("POST", "/api/v1/feedback", {
        "interaction_id": card["interaction_id"], "email": email, "phone": phone, "rating": 1, "contact_consent": True,
        "text": f"Awful. This is {name}, call me on {phone} or write to {email}."}, expect=202, auth=False)  # fmt: skip
    wait_for(
        lambda: Feedback.objects.filter(pk=feedback["id"], status=FeedbackStatus.PROCESSED).exists(),
        "the worker to process the complaint",
    )
    call("POST", f"/api/v1/customers/{maggie['id']}/merge", {"duplicate_id": duplicate["id"]})
    call("GET", f"/api/v1/customers/{maggie['id']}/export")
    call("DELETE", f"/api/v1/customers/{maggie['id']}", expect=204)
    call("POST", "/api/v1/context/lookup", {"email": other_email})  # after erasure: no match
    time.sleep(1)  # the worker's last lines (recurring-problem check after the wrap-up)

    web, worker = stack.web_log.read_text(), stack.worker_log.read_text()
    json_lines(stack.web_log), json_lines(stack.worker_log)  # every line is JSON
    personal = [name, preferred, "Marguerite", "Quaresma", email, other_email, "maggie.q", "m.quaresma", phone,
                other_phone, "+442079460958", "2079460958", "79460958", "+14155550142", "4155550142"]  # fmt: skip
    for log_name, text in (("web", web), ("worker", worker)):
        hits = [item for item in personal if item.lower() in text.lower()]
        assert hits == [], f"{log_name} log contains personal data: {hits}"
    # The logs did record the journeys, by id.
    assert all(request_id in web for request_id in request_ids)
    assert feedback["id"] in worker
