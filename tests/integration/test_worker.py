"""The feedback workflows end to end on a real Celery worker and a real Redis broker.

The suite starts the worker itself (`celery -A crm worker` as a subprocess) on the
test database; the worker writes e-mail into a temporary directory, one file per
message, where the tests read it. Tests commit for real (transactional_db), so
after-commit enqueueing happens exactly as in production.
"""

from __future__ import annotations

import datetime as dt
import smtplib
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings
from django.core.mail.backends.filebased import EmailBackend as FileEmailBackend
from django.db import connection
from django.utils import timezone

from crm import feedback as workflows
from crm import outbox
from crm.celery import app
from crm.models import (
    Case,
    Feedback,
    FollowUp,
    Notification,
    OutboundEmail,
    Preference,
    Recognition,
    RecurringProblem,
    StaffProfile,
    Team,
)
from crm.tasks import emails_send_pending_task, feedback_process_task, follow_ups_escalate_task
from tests.conftest import client_for
from tests.factories import CustomerFactory, IdentityFactory, InteractionFactory, UserFactory
from tests.fixtures.workers import worker_start, worker_stop

pytestmark = [pytest.mark.worker, pytest.mark.postgres]

WAIT_SECONDS = 30
FAIL_NEXT = "fail-next-send"


class FlakyFileBackend(FileEmailBackend):
    """The worker's mail server: files in a directory; "down" once when the test leaves a marker file.

    The marker stands for an SMTP outage, the one thing outside the system these tests fake.
    """

    def send_messages(self, email_messages):
        marker = Path(settings.EMAIL_FILE_PATH) / FAIL_NEXT
        try:
            marker.unlink()
        except FileNotFoundError:
            return super().send_messages(email_messages)
        raise smtplib.SMTPServerDisconnected("mail server unavailable (test)")


@pytest.fixture(scope="session")
def mail_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("worker-mail")


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker, mail_dir, tmp_path_factory):
    """A real worker on the test database and the suite's Redis, stopped at the end of the session."""
    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        pytest.fail("The worker tests need PostgreSQL (DATABASE_URL) and Redis (REDIS_URL): the worker shares them.")
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    env = {
        "EMAIL_BACKEND": "tests.integration.test_worker.FlakyFileBackend",
        "EMAIL_FILE_PATH": str(mail_dir),
        "CRM_RECOVERY_DEADLINE_HOURS": "24",
    }
    worker = worker_start(log, "--purge", "--concurrency", "1", env=env)
    try:
        yield log
    finally:
        worker_stop(worker)


def install_roles_and_reasons() -> None:
    """What migration 0002 installs; transactional tests flush it away after each test."""
    from django.apps import apps as django_apps

    __import__("crm.migrations.0002_roles_and_reasons", fromlist=["install"]).install(django_apps, None)


@pytest.fixture(scope="module", autouse=True)
def _reinstall_migration_data(django_db_blocker):
    """Leave the groups and reasons in place for tests that run after this module."""
    yield
    with django_db_blocker.unblock():
        install_roles_and_reasons()


@pytest.fixture
def world(transactional_db, celery_worker_process, mail_dir):
    """Sofia supervises team North; Jane is an agent in it; Jim is a customer with an e-mail address."""
    for path in mail_dir.iterdir():
        path.unlink()
    outbox.broker_breaker.reset()
    install_roles_and_reasons()
    sofia = UserFactory(username="sofia", first_name="Sofia", role="supervisor", is_staff=True)
    north = Team.objects.create(name="North", supervisor=sofia)
    jane = UserFactory(username="jane", first_name="Jane", last_name="Doyle", role="agent")
    StaffProfile.objects.create(user=jane, team=north, supervisor=sofia)
    jim = CustomerFactory(display_name="James Okafor", preferred_name="Jim")
    IdentityFactory(customer=jim, kind="email", value="jim@example.com", normalized="jim@example.com")
    return {"sofia": sofia, "jane": jane, "jim": jim, "api": client_for(sofia), "log": celery_worker_process}


def wait_for(condition: Callable[[], object], what: str, seconds: float = WAIT_SECONDS):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.1)
    pytest.fail(f"Timed out after {seconds}s waiting for {what}")


def poll_processed(api, feedback_id: str) -> dict:
    def processed():
        body = api.get(f"/api/v1/feedback/{feedback_id}").json()
        return body if body["status"] == "processed" else None

    return wait_for(processed, f"feedback {feedback_id} to be processed")


def mails(mail_dir: Path) -> list[str]:
    return sorted(p.read_text() for p in mail_dir.iterdir() if p.name != FAIL_NEXT)


def mail_recipients(mail_dir: Path) -> list[str]:
    return sorted(
        line.removeprefix("To: ").strip()
        for text in mails(mail_dir)
        for line in text.splitlines()
        if line.startswith("To: ")
    )


# --- end to end -----------------------------------------------------------------------------------


def test_praise_posted_to_the_api_reaches_the_agent_and_supervisor_through_the_worker(world, mail_dir):
    # given Jim, who agreed to e-mail, was helped by Jane
    Preference.objects.create(customer=world["jim"], key="contact_consent", value="true", recorded_at=timezone.now())
    interaction = InteractionFactory(customer=world["jim"], agent=world["jane"])

    # when he praises her through the public API
    response = client_for(None).post(
        "/api/v1/feedback",
        {"interaction_id": str(interaction.pk), "rating": 5, "text": "Jane sorted it in minutes!"},
        format="json",
    )
    assert response.status_code == 202
    feedback_id = response.json()["id"]
    assert Feedback.objects.filter(pk=feedback_id).exists()  # stored before the answer

    # then, within seconds, the worker has recognized her and told her, her supervisor and Jim
    poll_processed(world["api"], feedback_id)
    wait_for(lambda: len(mail_recipients(mail_dir)) == 3, "the three e-mails")
    body = world["api"].get(f"/api/v1/feedback/{feedback_id}").json()

    recognition = Recognition.objects.get()
    assert body["sentiment"] == "positive"
    assert body["recognitions"] == [{"id": str(recognition.pk), "staff": "jane"}]
    assert [(f["kind"], f["status"]) for f in body["follow_ups"]] == [("thank_you_email", "done")]
    assert body["case_id"] is None
    assert Feedback.objects.get().dispatched_at is not None
    assert set(Notification.objects.values_list("recipient__username", flat=True)) == {"jane", "sofia"}
    assert not Notification.objects.filter(emailed_at__isnull=True).exists()
    assert mail_recipients(mail_dir) == ["jane@goldfish.example", "jim@example.com", "sofia@goldfish.example"]


def test_a_complaint_posted_to_the_api_opens_a_case_and_a_follow_up_for_the_supervisor(world, mail_dir):
    interaction = InteractionFactory(customer=world["jim"], agent=world["jane"])

    response = client_for(None).post(
        "/api/v1/feedback",
        {"interaction_id": str(interaction.pk), "rating": 1, "text": "Still broken and nobody called back."},
        format="json",
    )
    body = poll_processed(world["api"], response.json()["id"])

    case = Case.objects.get()
    follow_up = FollowUp.objects.get()
    assert (body["sentiment"], body["case_id"]) == ("negative", str(case.pk))
    assert [(f["id"], f["kind"], f["status"]) for f in body["follow_ups"]] == [
        (str(follow_up.pk), "service_recovery", "open")
    ]
    assert (case.kind, case.owner, follow_up.owner) == ("service_recovery", world["sofia"], world["sofia"])
    assert follow_up.due_at - Feedback.objects.get().received_at == pytest.approx(
        dt.timedelta(hours=24), abs=dt.timedelta(seconds=30)
    )
    assert wait_for(lambda: mail_recipients(mail_dir), "the e-mail") == ["sofia@goldfish.example"]


def test_the_same_task_delivered_twice_recognizes_follows_up_and_emails_once(world, mail_dir):
    InteractionFactory(customer=world["jim"], agent=world["jane"])  # staff named must have served the customer
    feedback = workflows.feedback_submit(rating=5, text="Jane was lovely", staff=["jane"], email="jim@example.com")
    poll_processed(world["api"], str(feedback.pk))

    # A redelivery (as after a worker crash before the ack): reset the status and send it again, twice.
    Feedback.objects.filter(pk=feedback.pk).update(status="received", processed_at=None)
    feedback_process_task.delay(str(feedback.pk))
    feedback_process_task.delay(str(feedback.pk))
    poll_processed(world["api"], str(feedback.pk))
    time.sleep(1)  # let the second delivery finish too

    assert Recognition.objects.count() == 1
    assert FollowUp.objects.count() == 1
    assert Notification.objects.filter(recipient=world["jane"]).count() == 1
    assert mail_recipients(mail_dir).count("jane@goldfish.example") == 1


def worker_backends() -> set[int]:
    """PostgreSQL backends on the test database other than this test's own connection."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return {row[0] for row in cursor.fetchall()}


def test_the_worker_keeps_its_database_connection_from_one_task_to_the_next(world):
    # Celery's Django fix-up closed it around every task: a new PostgreSQL backend per workflow (issue 14).
    anonymous = client_for(None)
    first = anonymous.post("/api/v1/feedback", {"rating": 3, "text": "fine"}, format="json").json()["id"]
    poll_processed(world["api"], first)
    after_first = worker_backends()
    second = anonymous.post("/api/v1/feedback", {"rating": 3, "text": "fine again"}, format="json").json()["id"]
    poll_processed(world["api"], second)

    assert after_first, "the worker closed its connection after the task"
    assert after_first & worker_backends(), "the second task ran on a new connection"


def test_a_transient_mail_failure_on_the_first_attempt_is_sent_by_the_email_sweep(world, mail_dir):
    (mail_dir / FAIL_NEXT).touch()

    interaction = InteractionFactory(customer=world["jim"], agent=world["jane"])
    response = client_for(None).post(
        "/api/v1/feedback", {"interaction_id": str(interaction.pk), "rating": 5}, format="json"
    )
    body = poll_processed(world["api"], response.json()["id"])
    wait_for(lambda: mail_recipients(mail_dir), "the e-mail that went through")

    assert not (mail_dir / FAIL_NEXT).exists()  # the first attempt met the outage
    failed = OutboundEmail.objects.get(status="pending")
    assert (failed.attempts, failed.last_error) == (1, "SMTPServerDisconnected: mail server unavailable (test)")
    assert body["recognitions"][0]["staff"] == "jane"

    # when its back-off has passed and beat runs the e-mail sweep on the worker
    OutboundEmail.objects.filter(pk=failed.pk).update(
        claimed_until=None, created_at=timezone.now() - dt.timedelta(minutes=1)
    )
    emails_send_pending_task.delay()

    wait_for(lambda: len(mail_recipients(mail_dir)) == 2, "the retried e-mail")
    assert mail_recipients(mail_dir) == ["jane@goldfish.example", "sofia@goldfish.example"]
    wait_for(lambda: not Notification.objects.filter(emailed_at__isnull=True).exists(), "both marked sent")


def test_escalation_through_the_worker_escalates_an_overdue_follow_up_once(world, mail_dir):
    admin = UserFactory(username="ada", is_superuser=True, is_staff=True)
    follow_up = FollowUp.objects.create(
        kind="service_recovery", owner=world["sofia"], due_at=timezone.now() - dt.timedelta(hours=2)
    )

    for _ in range(3):
        follow_ups_escalate_task.delay()
    wait_for(lambda: FollowUp.objects.filter(pk=follow_up.pk, status="escalated").exists(), "the escalation")
    wait_for(lambda: mail_recipients(mail_dir), "the escalation e-mail")
    time.sleep(1.5)  # the other two runs

    follow_up.refresh_from_db()
    assert follow_up.escalation_level == 1
    assert list(Notification.objects.values_list("recipient", "kind")) == [(admin.pk, "escalation")]
    assert mail_recipients(mail_dir) == ["ada@goldfish.example"]


def test_feedback_sent_while_the_broker_is_down_is_stored_and_processed_once_it_is_back(world, mail_dir):
    # given the broker is unreachable (a closed port) when feedback about two of Jane's contacts arrives
    # (one feedback per contact: issue 10)
    with broker_at("redis://127.0.0.1:9/0"):
        timings, responses = [], []
        for _ in range(2):
            contact = InteractionFactory(customer=world["jim"], agent=world["jane"])
            body = {"interaction_id": str(contact.pk), "rating": 5}
            started = time.monotonic()
            responses.append(client_for(None).post("/api/v1/feedback", body, format="json"))
            timings.append(time.monotonic() - started)

    # then both are stored and answered; only the first pays the connect timeouts
    assert [r.status_code for r in responses] == [202, 202]
    assert timings[0] < 5
    assert timings[1] < 0.5
    assert list(Feedback.objects.values_list("status", "dispatched_at")) == [("received", None)] * 2

    # when the broker is back and the periodic sweep runs (beat would run it every 30 s)
    Feedback.objects.update(received_at=timezone.now() - dt.timedelta(seconds=10))
    sent, _ = outbox.feedback_outbox_sweep()

    # then the workflows run on the worker
    assert sent == 2
    for response in responses:
        body = poll_processed(world["api"], response.json()["id"])
        assert body["recognitions"][0]["staff"] == "jane"
    assert not Feedback.objects.filter(dispatched_at__isnull=True).exists()


def test_contacts_recorded_through_the_api_surface_one_recurring_problem_on_the_worker(world):
    agent = client_for(world["jane"])

    def record(n: int) -> None:
        response = agent.post(
            "/api/v1/interactions",
            {"channel": "phone", "customer_id": str(world["jim"].pk), "reason": "outage", "external_id": f"c-{n}"},
            format="json",
        )
        assert response.status_code == 201

    def problem_with(count: int):
        return RecurringProblem.objects.filter(
            customer=world["jim"], reason__code="outage", contact_count=count
        ).first()

    record(1)
    record(2)
    record(3)
    problem = wait_for(lambda: problem_with(3), "the recurring problem after the third contact")
    record(4)
    wait_for(lambda: problem_with(4), "the fourth contact to join it")

    assert RecurringProblem.objects.count() == 1
    assert problem.interactions.count() == 4


class broker_at:
    """Point this process's Celery producer at another broker URL, then back."""

    def __init__(self, url: str):
        self.url = url

    def _reset_pools(self):
        # kombu keeps one pool per broker URL; forgetting the app's reference is enough.
        app._pool = None
        app.amqp._producer_pool = None

    def __enter__(self):
        self.previous = app.conf.broker_url
        self._reset_pools()
        app.conf.broker_url = self.url
        return self

    def __exit__(self, *exc):
        self._reset_pools()
        app.conf.broker_url = self.previous
        return False
