"""Issue 17 in one process: request ids, JSON log lines, /metrics and its access rule, the Sentry scrubber.

The same behaviour across gunicorn worker processes and a real Celery worker is in
tests/integration/test_operations.py.
"""

from __future__ import annotations

import io
import json
import logging
from contextlib import contextmanager

from prometheus_client.parser import text_string_to_metric_families

from crm import observability
from crm.models import Notification
from crm.observability import JsonFormatter, sentry_scrub
from tests.factories import FeedbackFactory, UserFactory

LOOKUP = "/api/v1/context/lookup"


@contextmanager
def json_log_lines():
    """Every log line written meanwhile, through the formatter LOGGING names, parsed."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    lines: list[dict] = []
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        lines.extend(json.loads(line) for line in stream.getvalue().splitlines())


def scrape(client, **extra) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


# --- request ids ---------------------------------------------------------------------------------


def test_every_response_carries_a_request_id_the_callers_when_it_sent_one(client, agent_api, jim):
    generated = client.get("/healthz")
    assert len(generated["X-Request-ID"]) == 32

    mine = agent_api.post(LOOKUP, {"phone": "+12125550100"}, format="json", HTTP_X_REQUEST_ID="call-42.abc")
    assert mine.status_code == 200
    assert mine["X-Request-ID"] == "call-42.abc"

    refused = agent_api.post(LOOKUP, {"phone": "x"}, format="json", HTTP_X_REQUEST_ID="call-43")
    assert refused.status_code == 400
    assert refused["X-Request-ID"] == "call-43"

    missing = client.get("/nowhere", HTTP_X_REQUEST_ID="call-44")
    assert (missing.status_code, missing["X-Request-ID"]) == (404, "call-44")


def test_a_request_id_that_is_not_a_plain_token_is_replaced():
    assert observability.request_id_accept("jim@example.com rm -rf") != "jim@example.com rm -rf"
    assert observability.request_id_accept("a" * 129) != "a" * 129
    assert observability.request_id_accept("") != ""
    assert observability.request_id_accept("f0e1-d2c3") == "f0e1-d2c3"


def test_each_request_writes_one_json_access_line_with_ids_route_status_and_duration(agent_api, alice, jim):
    with json_log_lines() as lines:
        response = agent_api.post(LOOKUP, {"phone": "+12125550100"}, format="json", HTTP_X_REQUEST_ID="req-1")
    assert response.status_code == 200
    access = [line for line in lines if line["logger"] == "goldfish.access"]
    assert len(access) == 1
    (line,) = access
    assert line["event"] == "request"
    assert line["level"] == "INFO"
    assert line["request_id"] == "req-1"
    assert line["user_id"] == alice.pk
    assert (line["method"], line["route"], line["status"]) == ("POST", "context-lookup", 200)
    assert 0 < line["duration_ms"] < 10_000
    assert line["timestamp"].endswith("+00:00")


def test_log_lines_inside_a_request_carry_its_request_id(db):
    with json_log_lines() as lines:
        tokens = observability.request_bind("req-inside")
        try:
            logging.getLogger("crm.feedback").info("feedback %s received", "some-id")
        finally:
            observability.request_unbind(tokens)
        logging.getLogger("crm.feedback").info("outside")
    assert lines[0]["request_id"] == "req-inside"
    assert lines[0]["event"] == "feedback some-id received"
    assert "request_id" not in lines[1]


def test_a_task_run_in_process_logs_with_the_requests_id_its_name_and_id_and_moves_the_task_counters(client, db):
    """Without a broker (REDIS_URL unset) tasks run inside the request; the worker path is the integration test."""
    from crm.tasks import feedback_process_task

    before = scrape(client)
    with json_log_lines() as lines:
        tokens = observability.request_bind("req-feedback")
        try:
            ok = feedback_process_task.apply(args=[str(FeedbackFactory().pk)])
            failed = feedback_process_task.apply(args=["not-a-feedback-id"])
        finally:
            observability.request_unbind(tokens)
    assert ok.successful() and failed.failed()
    processed = [line for line in lines if line["logger"] == "crm.feedback" and "processed" in line["event"]]
    assert len(processed) == 1, lines
    assert processed[0]["request_id"] == "req-feedback"
    assert (processed[0]["task_name"], processed[0]["task_id"]) == ("crm.feedback_process", ok.id)
    failure = [line for line in lines if line["event"].startswith("task crm.feedback_process failed")]
    assert failure and failure[0]["task_id"] == failed.id
    assert "not-a-feedback-id" not in failure[0]["event"]
    after = scrape(client)
    for name, moved in (("started", 2), ("succeeded", 1), ("failed", 1)):
        metric = f"goldfish_tasks_{name}_total"
        assert (
            value(after, metric, task="crm.feedback_process") - value(before, metric, task="crm.feedback_process")
            == moved
        )
    assert value(after, "goldfish_task_runtime_seconds_count", task="crm.feedback_process") >= 2


# --- /metrics ------------------------------------------------------------------------------------


def test_metrics_count_requests_and_lookups_by_match_kind(client, agent_api, jim):
    before = scrape(client)
    for _ in range(3):
        agent_api.post(LOOKUP, {"phone": "+12125550100"}, format="json")
    agent_api.post(LOOKUP, {"phone": "+12125550999"}, format="json")
    agent_api.post(LOOKUP, {"phone": "x"}, format="json")
    after = scrape(client)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("goldfish_lookup_duration_seconds_count", match="unique") == 3
    assert moved("goldfish_lookup_duration_seconds_count", match="none") == 1
    assert moved("goldfish_http_requests_total", route="context-lookup", method="POST", status="2xx") == 4
    assert moved("goldfish_http_requests_total", route="context-lookup", method="POST", status="4xx") == 1
    # The finest bucket is half a millisecond: the lookup's milliseconds are visible.
    assert ("goldfish_lookup_duration_seconds_bucket", (("le", "0.0005"), ("match", "unique"))) in after


def test_metrics_read_the_workflow_state_at_scrape_time(client, db):
    FeedbackFactory.create_batch(2)
    UserFactory(username="sofia", email="sofia@example.com")
    samples = scrape(client)
    assert (
        value(samples, "goldfish_outbox_backlog", state="unsent")
        + value(samples, "goldfish_outbox_backlog", state="queued")
        == Notification.objects.none().count() + 2
    )
    assert value(samples, "goldfish_outbox_oldest_age_seconds") >= 0
    assert value(samples, "goldfish_dependency_up", dependency="database") == 1
    assert value(samples, "goldfish_ready") == 1
    assert ("goldfish_notifications_pending", ()) in samples
    assert ("goldfish_dead_letters", (("kind", "email"),)) in samples
    assert ("goldfish_dead_letters", (("kind", "feedback_workflow"),)) in samples


def test_metrics_refuse_other_addresses_and_admit_the_bearer_token(client, settings):
    settings.CRM_METRICS_ALLOW = ["10.1.0.0/16"]
    settings.CRM_METRICS_TOKEN = "s3cret-scraper-token"
    assert client.get("/metrics").status_code == 403  # loopback is no longer listed
    assert client.get("/metrics", REMOTE_ADDR="10.2.0.5").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="10.1.3.4").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.1", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert (
        client.get("/metrics", REMOTE_ADDR="192.0.2.1", HTTP_AUTHORIZATION="Bearer s3cret-scraper-token").status_code
        == 200
    )


def test_metrics_through_a_proxy_need_the_token_even_from_loopback(client, settings):
    settings.CRM_METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 200
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 403


def test_a_logged_database_error_keeps_its_constraint_and_not_the_rows_values():
    """PostgreSQL's DETAIL line quotes the key's values (an external ref, an account) or the whole row."""
    details = [
        'duplicate key value violates unique constraint "customer_external_ref_once"\n'
        "DETAIL:  Key (external_ref)=(CRM-Ada (old)) already exists.",
        'new row for relation "crm_interaction" violates check constraint "interaction_summary_bounded"\n'
        "DETAIL:  Failing row contains (0190a, Ada called about her router, AC-1001).",
        'new row for relation "crm_interaction" violates check constraint "interaction_summary_bounded"\n'
        "DETAIL:  Failing row contains (0190b, Ada rang back:\nthe router (Hub 6) again, AC-1002).\n"
        "The next line of the traceback",
        'duplicate key value violates unique constraint "customer_external_ref_once"\n'
        "DETAIL:  Key (external_ref)=(Ada\nLovelace) already exists.",
    ]
    with json_log_lines() as lines:
        for detail in details:
            try:
                raise RuntimeError(detail)
            except RuntimeError:
                logging.getLogger("crm.imports").exception("import failed")

    text = json.dumps(lines)
    for personal in ("CRM-Ada", "(old)", "Ada called", "AC-1001", "Ada rang", "Hub 6", "AC-1002", "Lovelace"):
        assert personal not in text, personal
    assert "The next line of the traceback" in text
    assert "customer_external_ref_once" in text and "Key (external_ref)=([redacted]) already exists" in text
    assert "Failing row contains ([redacted])" in text


# --- Sentry's scrubber -----------------------------------------------------------------------------


def test_the_sentry_scrubber_drops_personal_data_and_keeps_what_locates_the_bug():
    event = {
        "message": "lookup failed for jim@example.com",
        "user": {"id": 7, "email": "sam@example.com", "username": "sam", "ip_address": "198.51.100.4"},
        "request": {
            "method": "POST",
            "url": "https://crm.example/api/v1/customers?search=James+Okafor",
            "data": {"phone": "+1 212 555 0100", "display_name": "James Okafor"},
            "cookies": {"sessionid": "abc"},
            "query_string": "search=James+Okafor",
            "headers": {"Authorization": "Token t0k3n", "X-Request-ID": "req-9", "Cookie": "sessionid=abc"},
        },
        "exception": {
            "values": [
                {
                    "type": "IntegrityError",
                    "value": 'duplicate key: Key (normalized)=(+12125550100) already exists; "Jim@Example.com"',
                    "stacktrace": {
                        "frames": [
                            {"function": "customer_create", "vars": {"display_name": "James Okafor"}, "lineno": 12}
                        ]
                    },
                }
            ]
        },
        "breadcrumbs": {"values": [{"message": "SELECT ... WHERE normalized = '2125550100'"}]},
    }
    scrubbed = sentry_scrub(event, {})
    text = json.dumps(scrubbed)
    for personal in ("jim@example.com", "Jim@Example.com", "sam@example.com", "James", "Okafor", "2125550100",
                     "212 555 0100", "t0k3n", "sessionid", "198.51.100.4"):  # fmt: skip
        assert personal not in text, personal
    assert scrubbed["user"] == {"id": 7}
    assert scrubbed["request"]["url"] == "https://crm.example/api/v1/customers"
    assert scrubbed["request"]["headers"] == {"X-Request-ID": "req-9"}
    frame = scrubbed["exception"]["values"][0]["stacktrace"]["frames"][0]
    assert (frame["function"], frame["lineno"]) == ("customer_create", 12)
    assert scrubbed["exception"]["values"][0]["type"] == "IntegrityError"


# --- the operator's docs name real metrics -----------------------------------------------------------


def test_every_metric_the_dashboard_and_alert_rules_use_is_exported(client, db):
    """docs/grafana-dashboard.json and docs/operations.md stay true to /metrics."""
    import re
    from pathlib import Path

    docs = Path(__file__).resolve().parents[3] / "docs"
    dashboard = json.loads((docs / "grafana-dashboard.json").read_text())
    exprs = " ".join(target["expr"] for panel in dashboard["panels"] for target in panel["targets"])
    not_metrics = {"goldfish_sent_at", "goldfish_request_id", "goldfish_restored"}  # headers, a database name
    used = set(re.findall(r"goldfish_[a-z_]+", exprs + (docs / "operations.md").read_text())) - not_metrics
    # Every family is declared ("# TYPE"), labelled ones before their first sample too.
    declared = set(re.findall(r"^# TYPE (goldfish_[a-z_]+)", client.get("/metrics").content.decode(), re.M))
    assert {name for name in used if re.sub(r"_(bucket|count|sum)$", "", name) not in declared} == set()
    assert len(used) >= 15


# --- the agent desk --------------------------------------------------------------------------------


def test_agent_streams_pops_and_event_to_push_latency_are_counted(client, alice, settings):
    from django.test import Client

    from context import events

    settings.AGENT_EVENTS_KEEPALIVE = 0.2
    page = Client()
    page.force_login(alice)
    before = scrape(client)
    response = page.get("/agent/events")
    chunks = iter(response.streaming_content)
    assert next(chunks).decode().startswith("retry: ")
    assert value(scrape(client), "goldfish_agent_streams") == value(before, "goldfish_agent_streams") + 1
    events.publish(alice.pk, {"type": "call", "interaction_id": "i-9", "card": {"match": "none"}}, remember=False)
    body = ""
    for _ in range(10):
        body += next(chunks).decode()
        if "event: call" in body:
            break
    assert "event: call" in body, body
    assert "_event_at" not in body  # the timing rides along with the push, not into the page
    response.close()
    after = scrape(client)
    assert value(after, "goldfish_agent_pops_pushed_total") == value(before, "goldfish_agent_pops_pushed_total") + 1
    latency = "goldfish_agent_event_to_push_seconds_count"
    assert value(after, latency) == value(before, latency) + 1
    assert value(after, "goldfish_agent_streams") == value(before, "goldfish_agent_streams")


def test_the_access_line_can_be_switched_off_without_losing_the_request_id_or_metrics(settings, db):
    from django.test import Client

    settings.CRM_ACCESS_LOG = False
    client = Client()  # its handler reads the setting when it loads the middleware
    before = scrape(client)
    with json_log_lines() as lines:
        response = client.get("/healthz", HTTP_X_REQUEST_ID="quiet-1")
    assert response["X-Request-ID"] == "quiet-1"
    assert [line for line in lines if line["logger"] == "goldfish.access"] == []
    after = scrape(client)
    key = {"route": "healthz", "method": "GET", "status": "2xx"}
    assert (
        value(after, "goldfish_http_requests_total", **key) == value(before, "goldfish_http_requests_total", **key) + 1
    )
