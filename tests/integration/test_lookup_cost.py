"""The lookup's cost does not grow with history: fixed query count, every path on an index."""

import datetime as dt
import json
import uuid

import pytest
from django.db import connection
from django.utils import timezone

from context import selectors
from crm import card
from crm.models import Interaction
from tests.factories import CaseFactory, FeedbackFactory, reason

URL = "/api/v1/context/lookup"
# Token + user + roles (one query), identity resolution, then SET LOCAL plan_cache_mode and
# open-audit-and-card sent together in one pipeline: four statements, three round trips.
QUERIES_PER_LOOKUP = 4


@pytest.fixture
def on_postgres(db):
    assert connection.vendor == "postgresql", (
        "This test measures the PostgreSQL path; run it with DATABASE_URL=postgres://... (CI does)."
    )


def give_history(customer, n):
    now = timezone.now()
    billing = reason("billing")
    case = CaseFactory(customer=customer)
    Interaction.objects.bulk_create(
        Interaction(
            customer=customer,
            started_at=now - dt.timedelta(hours=i),
            reason=billing,
            case=case if i % 3 == 0 else None,
            summary=f"contact {i}",
            source="test",
        )
        for i in range(n)
    )
    for days in range(3):
        FeedbackFactory(customer=customer, rating=2, sentiment="negative", received_at=now - dt.timedelta(days=days))


@pytest.mark.postgres
@pytest.mark.parametrize("history", [1, 1000])
def test_a_lookup_costs_four_statements_whatever_the_history(
    on_postgres, agent_api, jim, history, django_assert_num_queries
):
    give_history(jim, history)
    agent_api.post(URL, {"phone": "+12125550100"}, format="json")  # warm: the first call loads content types

    with django_assert_num_queries(QUERIES_PER_LOOKUP):
        response = agent_api.post(
            URL, {"phone": "+12125550100", "call_id": f"q-{history}", "ivr": {"intent": "billing"}}, format="json"
        )

    body = response.json()
    assert response.status_code == 200
    # The warm-up lookup was never wrapped up: not a contact (issue 12).
    assert len(body["recent_interactions"]) == min(history, 5)
    assert "repeat_contact" in body["flags"] or history == 1


@pytest.mark.postgres
def test_an_ambiguous_lookup_costs_the_same_queries(on_postgres, agent_api, django_assert_num_queries):
    from tests.factories import CustomerFactory, IdentityFactory

    for name in ("Ann", "Ben", "Cat"):
        IdentityFactory(customer=CustomerFactory(display_name=name), value="+12125550199")
    with django_assert_num_queries(QUERIES_PER_LOOKUP):
        response = agent_api.post(URL, {"phone": "+12125550199"}, format="json")
    assert len(response.json()["candidates"]) == 3


@pytest.fixture
def crowd(on_postgres, jim):
    """Enough rows, analyzed, for the planner to choose as it would on a real table."""
    from crm.models import Customer, Fact, Feedback, Identity, Preference

    now = timezone.now()
    people = Customer.objects.bulk_create(Customer(display_name=f"P{n}") for n in range(1000))
    Identity.objects.bulk_create(
        Identity(customer=p, kind="phone", value=f"+1212556{n:04d}", normalized=f"+1212556{n:04d}")
        for n, p in enumerate(people)
    )
    Interaction.objects.bulk_create(
        Interaction(customer=p, started_at=now - dt.timedelta(days=k * 7), source="test")
        for p in people
        for k in range(8)
    )
    Feedback.objects.bulk_create(Feedback(customer=p, received_at=now) for p in people[::3])
    # Facts and preferences with history: per key, the current value and three it replaced.
    for model in (Fact, Preference):
        model.objects.bulk_create(
            model(customer=p, key=key, value=f"v{n}", is_current=n == 0, recorded_at=now - dt.timedelta(days=n))
            for p in people
            for key in ("router", "contact_channel")
            for n in range(4)
        )
    with connection.cursor() as cursor:
        for table in (
            "crm_customer", "crm_identity", "crm_interaction", "crm_feedback", "crm_case", "crm_fact", "crm_preference"
        ):  # fmt: skip
            cursor.execute(f"ANALYZE {table}")


def plan_nodes(plan):
    yield plan
    for child in plan.get("Plans", []):
        yield from plan_nodes(child)


def explain(sql, params, *, generic=False):
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        if generic:
            cursor.execute(card._GENERIC_PLAN_SQL)
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        raw = cursor.fetchone()[0]
    plan = raw if isinstance(raw, list) else json.loads(raw)
    return list(plan_nodes(plan[0]["Plan"]))


def assert_indexed(nodes):
    """With sequential scans priced out, any Seq Scan left means no index can serve that read."""
    seq = [n.get("Relation Name") for n in nodes if n["Node Type"] == "Seq Scan"]
    assert seq == [], f"sequential scans on {seq}"


@pytest.mark.postgres
def test_identity_resolution_is_served_by_indexes(crowd, jim):
    nodes = explain(
        selectors._IDENTITY_SQL,
        {"customer_id": uuid.uuid4(), "phone": "+12125550100", "email": "jim@example.com", "account": "AC12345678"},
    )
    assert_indexed(nodes)
    assert "identity_lookup_idx" in {n.get("Index Name") for n in nodes}


# The indexes crm/card.py names for the card's reads (issue 15: the current facts and preferences
# are read through the unique constraints' indexes, which replaced duplicates of them).
CARD_INDEXES = (
    "identity_once_per_customer",
    "one_current_preference_per_key",
    "one_current_fact_per_key",
    "interaction_recent_idx",
    "feedback_recent_idx",
    "case_open_by_customer_idx",
)


@pytest.mark.postgres
def test_opening_the_contact_and_reading_the_card_is_served_by_indexes(crowd, jim):
    now = timezone.now()
    params = {
        "id": uuid.uuid4(),
        "cid": jim.pk,
        "channel": "phone",
        "call_id": "explain-1",
        "erased_call_id": "erased:explain-1",  # issue 10: an erased customer's call, found by its hash
        "agent_id": None,
        "actor_id": None,
        "identifiers": "{}",
        "verified": "[]",
        "ivr": "{}",
        "detail": "{}",
        "now": now,
        "window": now - dt.timedelta(days=30),
        "intent": "billing",
        "async_commit": True,
    }
    for generic in (False, True):  # the service runs it with the generic plan
        nodes = explain(card._CONTACT_SQL, params, generic=generic)
        assert_indexed(nodes)
        used = {n.get("Index Name") for n in nodes}
        for index in CARD_INDEXES:
            assert index in used, f"{index} not used (generic={generic}): {sorted(i for i in used if i)}"


@pytest.mark.postgres
def test_a_reports_period_is_served_by_the_brin_on_started_at(crowd):
    """Issue 14: the B-tree on started_at became a BRIN (no write per lookup); the reports still use an index."""
    from crm import reports

    Interaction.objects.update(reason=reason("billing"))  # every contact coded, as the reports read them
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE crm_interaction")
    now = timezone.now()
    period = reports.Period(start=now - dt.timedelta(days=28), end=now)
    sql, params = reports._contacts(period).query.sql_with_params()

    nodes = explain(sql, params)

    assert_indexed(nodes)
    assert "interaction_started_brin" in {n.get("Index Name") for n in nodes}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT amname FROM pg_class c JOIN pg_am a ON a.oid = c.relam WHERE relname = %s",
            ["interaction_started_brin"],
        )
        assert cursor.fetchone() == ("brin",)


@pytest.mark.postgres
def test_a_new_contact_writes_no_entry_in_the_reason_and_case_indexes_which_still_serve_their_reads(crowd, jim):
    """Issue 14: those indexes leave out NULL (a new contact has no reason or case yet), and a read that
    names a reason or a case still uses them, with the generic plan too (a bound value implies NOT NULL)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'crm_interaction'")
        definitions = dict(cursor.fetchall())
    assert "WHERE (reason_id IS NOT NULL)" in definitions["interaction_reason_idx"]
    assert "WHERE (reason_id IS NOT NULL)" in definitions["interaction_coded_idx"]
    assert "WHERE (case_id IS NOT NULL)" in definitions["interaction_case_idx"]
    assert not any(d.endswith("(reason_id)") for d in definitions.values()), "an index still holds every NULL reason"

    Interaction.objects.update(reason=reason("billing"))
    now = timezone.now()
    repeat = Interaction.objects.filter(customer=jim, reason=reason("billing"), started_at__gte=now - dt.timedelta(30))
    by_case = Interaction.objects.filter(case_id=uuid.uuid4(), started_at__gte=now - dt.timedelta(30))
    for queryset, index in ((repeat, "interaction_reason_idx"), (by_case, "interaction_case_idx")):
        sql, params = queryset.values_list("pk").query.sql_with_params()
        for generic in (False, True):
            assert index in {n.get("Index Name") for n in explain(sql, params, generic=generic)}, (index, generic)
