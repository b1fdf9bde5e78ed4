"""Recurring problems: a customer back about the same reason, and the reasons that bring people back."""

import datetime as dt

import pytest
from django.utils import timezone

from crm import feedback_selectors, recurring, services
from crm.models import Interaction, RecurringProblem
from tests.factories import CustomerFactory, InteractionFactory, reason


def contact(customer, code="billing", days_ago=1) -> Interaction:
    return InteractionFactory(
        customer=customer, reason=reason(code), started_at=timezone.now() - dt.timedelta(days=days_ago)
    )


def test_the_third_same_reason_contact_in_the_window_creates_a_recurring_problem(jim):
    first, second = contact(jim, days_ago=20), contact(jim, days_ago=10)
    assert recurring.recurring_problem_check(second.pk) is None

    third = contact(jim, days_ago=1)
    problem = recurring.recurring_problem_check(third.pk)

    assert problem is not None
    assert (problem.customer, problem.reason.code, problem.contact_count) == (jim, "billing", 3)
    assert set(problem.interactions.all()) == {first, second, third}
    assert problem.first_contact_at == first.started_at
    assert problem.last_contact_at == third.started_at


def test_the_fourth_contact_joins_the_same_record_rather_than_creating_another(jim):
    for days in (20, 10, 5):
        last = contact(jim, days_ago=days)
    recurring.recurring_problem_check(last.pk)

    fourth = contact(jim, days_ago=1)
    problem = recurring.recurring_problem_check(fourth.pk)
    recurring.recurring_problem_check(fourth.pk)  # a redelivered check changes nothing

    assert RecurringProblem.objects.count() == 1
    assert problem.contact_count == 4
    assert fourth in problem.interactions.all()


def test_contacts_outside_the_window_or_about_other_reasons_do_not_count(jim):
    contact(jim, days_ago=45)
    contact(jim, code="outage", days_ago=3)
    contact(jim, days_ago=2)
    latest = contact(jim, days_ago=1)

    assert recurring.recurring_problem_check(latest.pk) is None
    assert not RecurringProblem.objects.exists()


def test_recording_a_contact_with_a_reason_checks_for_recurring_problems_after_commit(
    alice, jim, eager_tasks, django_capture_on_commit_callbacks
):
    contact(jim, days_ago=9)
    contact(jim, days_ago=8)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.interaction_record(actor=alice, channel="chat", customer_id=jim.pk, reason="billing")

    assert len(callbacks) == 1
    assert RecurringProblem.objects.get().contact_count == 3


def test_wrapping_up_a_contact_with_its_reason_checks_for_recurring_problems(
    alice, jim, eager_tasks, django_capture_on_commit_callbacks
):
    contact(jim, days_ago=9)
    contact(jim, days_ago=8)
    interaction = InteractionFactory(customer=jim, agent=alice, started_at=timezone.now())

    with django_capture_on_commit_callbacks(execute=True):
        services.interaction_wrap_up(actor=alice, interaction=interaction, reason="billing", outcome="unresolved")

    assert set(RecurringProblem.objects.get().interactions.values_list("pk", flat=True)) >= {interaction.pk}


def test_a_wrap_up_without_a_reason_enqueues_nothing(alice, jim, django_capture_on_commit_callbacks):
    interaction = InteractionFactory(customer=jim, agent=alice)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.interaction_wrap_up(actor=alice, interaction=interaction, summary="Chat about nothing")

    assert callbacks == []


@pytest.mark.django_db
def test_reasons_that_bring_customers_back_are_ranked_by_repeat_contacts():
    # given two customers back about outages (2 extra contacts each), one about billing (1 extra)
    for customer in (CustomerFactory(), CustomerFactory()):
        for days in (3, 2, 1):
            contact(customer, code="outage", days_ago=days)
    billing = CustomerFactory()
    contact(billing, days_ago=2)
    contact(billing, days_ago=1)
    contact(CustomerFactory(), code="payment")  # one contact is not a repeat

    ranking = feedback_selectors.repeat_reasons_ranking()

    assert [(r["reason"], r["customers"], r["repeat_contacts"]) for r in ranking] == [
        ("outage", 2, 4),
        ("billing", 1, 1),
    ]


def test_supervisors_see_recurring_problems_and_the_ranking(supervisor_api, agent_api, jim):
    for days in (3, 2, 1):
        last = contact(jim, days_ago=days)
    recurring.recurring_problem_check(last.pk)

    response = supervisor_api.get("/api/v1/recurring-problems")

    assert response.status_code == 200
    body = response.json()
    assert [(p["customer_id"], p["reason"], p["contact_count"]) for p in body["results"]] == [
        (str(jim.pk), "billing", 3)
    ]
    assert body["top_reasons"][0]["reason"] == "billing"
    assert agent_api.get("/api/v1/recurring-problems").status_code == 403
