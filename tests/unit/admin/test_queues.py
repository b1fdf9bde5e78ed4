import datetime as dt

import pytest
from django.utils import timezone

from crm import models
from tests.factories import CustomerFactory, FeedbackFactory, InteractionFactory, UserFactory, reason

pytestmark = pytest.mark.django_db


@pytest.fixture
def teams(db):
    """Jane works in North, Li in South."""
    north, south = models.Team.objects.create(name="North"), models.Team.objects.create(name="South")
    jane, li = UserFactory(username="jane", role="agent"), UserFactory(username="li", role="agent")
    models.StaffProfile.objects.create(user=jane, team=north)
    models.StaffProfile.objects.create(user=li, team=south)
    return {"north": north, "south": south, "jane": jane, "li": li}


def follow_up(owner, *, due_in_hours: float, status="open", customer=None):
    return models.FollowUp.objects.create(
        kind="callback",
        owner=owner,
        status=status,
        customer=customer,
        due_at=timezone.now() + dt.timedelta(hours=due_in_hours),
    )


def rows(response) -> list:
    return list(response.context["cl"].result_list)


def test_follow_ups_filter_by_overdue_escalated_and_team(supervisor_client, teams):
    overdue = follow_up(teams["jane"], due_in_hours=-2)
    soon = follow_up(teams["jane"], due_in_hours=3)
    escalated = follow_up(teams["li"], due_in_hours=-30, status="escalated")
    follow_up(teams["li"], due_in_hours=-5, status="done")

    assert rows(supervisor_client.get("/admin/crm/followup/", {"due": "overdue"})) == [overdue]
    assert rows(supervisor_client.get("/admin/crm/followup/", {"due": "today"})) == [soon]
    assert rows(supervisor_client.get("/admin/crm/followup/", {"due": "escalated"})) == [escalated]
    north = rows(supervisor_client.get("/admin/crm/followup/", {"team": teams["north"].pk}))
    assert north == [overdue, soon]  # by deadline, earliest first


def test_one_click_completes_a_follow_up_and_a_second_click_changes_nothing(supervisor_client, sam, teams):
    customer = CustomerFactory()
    item = follow_up(teams["jane"], due_in_hours=-1, customer=customer)
    page = supervisor_client.get("/admin/crm/followup/").content.decode()
    url = f"/admin/crm/followup/{item.pk}/complete/"
    assert url in page

    response = supervisor_client.post(url, {"next": "/admin/crm/followup/?due=overdue"})

    assert response.status_code == 302 and response.url == "/admin/crm/followup/?due=overdue"
    item.refresh_from_db()
    assert item.status == "done" and item.completed_at is not None
    completed_at = item.completed_at
    supervisor_client.post(url)
    item.refresh_from_db()
    assert item.completed_at == completed_at
    assert models.AccessAudit.objects.filter(customer=customer, actor=sam, action="update").count() == 1


def test_completion_needs_a_post(supervisor_client, teams):
    item = follow_up(teams["jane"], due_in_hours=1)

    assert supervisor_client.get(f"/admin/crm/followup/{item.pk}/complete/").status_code == 405
    item.refresh_from_db()
    assert item.status == "open"


def test_the_recognition_board_counts_praise_per_agent_newest_first_and_by_team(supervisor_client, teams):
    customer = CustomerFactory()
    made = []
    for staff in (teams["jane"], teams["li"], teams["jane"]):
        feedback = FeedbackFactory(customer=customer, rating=5, text="Great help")
        made.append(models.Recognition.objects.create(feedback=feedback, staff=staff, quote="Great help"))

    response = supervisor_client.get("/admin/crm/recognition/")

    assert rows(response) == list(reversed(made))
    assert [(b["name"], b["count"]) for b in response.context_data["board"]] == [("jane", 2), ("li", 1)]
    south = supervisor_client.get("/admin/crm/recognition/", {"team": teams["south"].pk})
    assert rows(south) == [made[1]]
    assert [b["count"] for b in south.context_data["board"]] == [1]


def test_feedback_to_review_lists_unhappy_unhandled_feedback(supervisor_client):
    unhappy = FeedbackFactory(rating=1, sentiment="negative", status="processed", text="Awful")
    FeedbackFactory(rating=5, sentiment="positive", status="processed", text="Lovely")
    handled = FeedbackFactory(rating=1, sentiment="negative", status="processed")
    handled.case = models.Case.objects.create(subject="Recovery", opened_at=timezone.now())
    handled.save()

    response = supervisor_client.get("/admin/crm/feedback/", {"review": "yes"})

    assert rows(response) == [unhappy]


def test_queues_filter_by_date(supervisor_client):
    old = models.Case.objects.create(subject="Old", opened_at=timezone.now() - dt.timedelta(days=400))
    new = models.Case.objects.create(subject="New", opened_at=timezone.now(), kind="service_recovery")

    this_year = supervisor_client.get("/admin/crm/case/", {"opened_at__year": new.opened_at.year})
    recovery = supervisor_client.get("/admin/crm/case/", {"queue": "recovery"})

    assert old not in rows(this_year) and new in rows(this_year)
    assert rows(recovery) == [new]


def test_recurring_problems_filter_by_team_without_duplicate_rows(supervisor_client, teams):
    customer = CustomerFactory()
    contacts = [InteractionFactory(customer=customer, agent=teams["jane"]) for _ in range(3)]
    problem = models.RecurringProblem.objects.create(
        customer=customer,
        reason=reason("billing"),
        contact_count=3,
        first_contact_at=contacts[0].started_at,
        last_contact_at=contacts[-1].started_at,
    )
    problem.interactions.add(*contacts)

    assert rows(supervisor_client.get("/admin/crm/recurringproblem/", {"team": teams["north"].pk})) == [problem]
    assert rows(supervisor_client.get("/admin/crm/recurringproblem/", {"team": teams["south"].pk})) == []
