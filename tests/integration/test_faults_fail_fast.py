"""Fail fast when a dependency is down or hanging (issue 11, part B).

A real gunicorn server on its own PostgreSQL cluster and its own redis-server,
which these tests stop and freeze; the machine's shared services are not touched.
"""

from __future__ import annotations

import re
import time
import uuid

import psycopg
import pytest
import requests

from tests.own_services import OwnPostgres, OwnRedis, OwnServer

CREATE_AGENT = """
from django.contrib.auth.models import Group, User
from crm import tokens
agent = User.objects.create_user("faulty", password="x")
agent.groups.add(Group.objects.get(name="agent"))
print(tokens.issue(agent)[0])
"""


@pytest.fixture(scope="module")
def stack():
    postgres = OwnPostgres()
    redis = OwnRedis()
    try:
        server = OwnServer(postgres.url, redis.url)
        try:
            token = server.manage("shell", "-c", CREATE_AGENT).strip().splitlines()[-1]
            yield postgres, redis, server, {"Authorization": f"Token {token}"}
        finally:
            server.close()
    finally:
        redis.stop()
        postgres.close()


def timed(method: str, url: str, **kwargs) -> tuple[requests.Response, float]:
    started = time.monotonic()
    response = requests.request(method, url, timeout=10, **kwargs)
    return response, time.monotonic() - started


def lookup(server, auth, call_id: str):
    return timed("POST", f"{server.base}/api/v1/context/lookup", headers=auth,
                 json={"phone": "+44 20 7946 0018", "call_id": call_id})  # fmt: skip


def feedback(server):
    return timed("POST", f"{server.base}/api/v1/feedback", json={"email": "pat@example.com", "rating": 4})


def feedback_form(server):
    """The public feedback page: fetch the form (its CSRF cookie and token), then return a function that posts it."""
    session = requests.Session()
    page = session.get(f"{server.base}/feedback/", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)

    def post():
        started = time.monotonic()
        form = {"csrfmiddlewaretoken": token, "rating": "5", "text": "Thanks"}
        response = session.post(f"{server.base}/feedback/", data=form, headers={"Referer": page.url}, timeout=10)
        return response, time.monotonic() - started

    return post


def rows(postgres, sql: str) -> int:
    with psycopg.connect(postgres.url.replace("postgres://", "postgresql://"), connect_timeout=5) as conn:
        return conn.execute(sql).fetchone()[0]


def test_a_stopped_database_is_a_fast_503_with_retry_after_and_one_warning_each_way(stack):
    postgres, _redis, server, auth = stack
    assert lookup(server, auth, "before")[0].status_code == 200
    assert feedback(server)[0].status_code == 202
    post_form = feedback_form(server)
    log_before = len(server.log())

    # when the database stops during requests
    postgres.stop()
    answers = [lookup(server, auth, f"down-{i}") for i in range(15)]
    answers += [feedback(server) for _ in range(10)]
    answers += [post_form() for _ in range(5)]  # a page, not the API

    # then every one is a fast 503 JSON that says when to retry
    for response, seconds in answers:
        assert response.status_code == 503, (response.status_code, response.text[:300])
        assert response.headers["Content-Type"] == "application/json"
        assert int(response.headers["Retry-After"]) > 0
        assert "unavailable" in response.json()["detail"]
        assert seconds < 1.0, f"a 503 took {seconds:.2f} s"

    # when it comes back, the same server process serves again (no restart)
    postgres.start()
    deadline = time.monotonic() + 20
    while (recovered := lookup(server, auth, "after")[0]).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert recovered.status_code == 200, recovered.text[:300]
    assert feedback(server)[0].status_code == 202

    # one warning when the outage began and one when it ended, no traceback per request
    log = server.log()[log_before:]
    # The logs are JSON lines (issue 17): one warning as the outage starts, one as it ends.
    warnings = r'"level": "WARNING", "logger": "crm\.resilience", "event": "database '
    assert len(re.findall(warnings + "unavailable", log)) == 1, log[-3000:]
    assert len(re.findall(warnings + "available again", log)) == 1, log[-3000:]
    assert "Traceback" not in log and '"level": "ERROR"' not in log, log[-3000:]

    # nothing half-written: the contacts and feedback are the ones answered 200/202, each with its audit row
    assert rows(postgres, "SELECT count(*) FROM crm_interaction") == 2
    assert rows(postgres, "SELECT count(*) FROM crm_feedback") == 2
    orphans = rows(
        postgres,
        "SELECT count(*) FROM crm_interaction i WHERE NOT EXISTS "
        "(SELECT 1 FROM crm_accessaudit a WHERE a.interaction_id = i.id)",
    )
    assert orphans == 0


def test_a_frozen_redis_does_not_slow_what_postgresql_serves_and_readyz_answers_within_half_a_second(stack):
    _postgres, redis, server, auth = stack
    assert requests.get(f"{server.base}/readyz", timeout=5).status_code == 200

    redis.freeze()
    try:
        ready, ready_seconds = timed("GET", f"{server.base}/readyz")
        lookups = [lookup(server, auth, f"frozen-{uuid.uuid4()}") for _ in range(20)]
        posts = [feedback(server) for _ in range(10)]
        ready_again, ready_again_seconds = timed("GET", f"{server.base}/readyz")
    finally:
        redis.thaw()

    # readiness says Redis is down, fast
    assert ready.status_code == 503 and ready_again.status_code == 503
    assert ready.json()["cache"].startswith("down") and ready.json()["database"] == "ok"
    assert max(ready_seconds, ready_again_seconds) <= 0.5, (ready_seconds, ready_again_seconds)
    # screen pops need only PostgreSQL: all served, fast
    assert [r.status_code for r, _ in lookups] == [200] * 20
    assert max(s for _, s in lookups) < 0.5, sorted(s for _, s in lookups)
    # feedback is stored (the outbox sends the workflow later); the first request pays the
    # Redis timeouts once, the breakers spare the rest
    assert [r.status_code for r, _ in posts] == [202] * 10
    assert max(s for _, s in posts) < 1.0, [round(s, 3) for _, s in posts]
    assert sorted(s for _, s in posts)[len(posts) // 2] < 0.2, [round(s, 3) for _, s in posts]

    # thawed: ready again without a restart
    deadline = time.monotonic() + 10
    while requests.get(f"{server.base}/readyz", timeout=5).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert requests.get(f"{server.base}/readyz", timeout=5).status_code == 200


def test_a_stopped_redis_costs_feedback_no_wait_and_readyz_answers_fast(stack):
    postgres, redis, server, _auth = stack
    feedback_before = rows(postgres, "SELECT count(*) FROM crm_feedback")

    redis.stop()
    try:
        ready, ready_seconds = timed("GET", f"{server.base}/readyz")
        posts = [feedback(server) for _ in range(20)]
    finally:
        redis.start()

    assert ready.status_code == 503 and ready_seconds <= 0.5, ready_seconds
    # every post stored (the outbox sends the workflow once the broker is back), none waited on kombu's retries
    assert [r.status_code for r, _ in posts] == [202] * 20
    assert max(s for _, s in posts) < 0.5, [round(s, 3) for _, s in posts]
    assert rows(postgres, "SELECT count(*) FROM crm_feedback") == feedback_before + 20
    assert rows(postgres, "SELECT count(*) FROM crm_feedback WHERE dispatched_at IS NULL") >= 20
