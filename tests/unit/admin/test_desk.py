"""The supervisor desk (issue 13): queues by urgency, tiles with counts, owners, complaints in the customer's words."""

import datetime as dt
import re

import pytest
from django.utils import timezone

from crm import desk, models
from crm import feedback as workflows
from tests.factories import CustomerFactory, FeedbackFactory, InteractionFactory, UserFactory

pytestmark = pytest.mark.django_db


def follow_up(*, hours: float, status="open", owner=None):
    return models.FollowUp.objects.create(
        kind="callback", status=status, owner=owner, due_at=timezone.now() + dt.timedelta(hours=hours)
    )


def case(*, hours: float | None, status="open", kind="service_recovery"):
    now = timezone.now()
    due = None if hours is None else now + dt.timedelta(hours=hours)
    return models.Case.objects.create(subject="s", kind=kind, status=status, opened_at=now, due_at=due)


def rows(response) -> list:
    return list(response.context["cl"].result_list)


def test_follow_ups_list_overdue_first_then_due_soonest_then_finished(supervisor_client):
    done_long_ago = follow_up(hours=-500, status="done")
    later = follow_up(hours=30)
    overdue_2d = follow_up(hours=-49)
    soon = follow_up(hours=2)
    overdue_1h = follow_up(hours=-1.5)

    listed = rows(supervisor_client.get("/admin/crm/followup/"))

    assert listed == [overdue_2d, overdue_1h, soon, later, done_long_ago]


def test_overdue_rows_say_how_late_and_are_marked_for_highlighting(supervisor_client):
    follow_up(hours=-49)
    follow_up(hours=3)

    page = supervisor_client.get("/admin/crm/followup/").content.decode()

    assert page.count("gf-overdue") == 1
    assert re.search(r'gf-overdue">2 d [01] h late<', page)


def test_recovery_cases_list_overdue_first_with_how_late(supervisor_client):
    closed = case(hours=-100, status="closed")
    fresh = case(hours=20)
    late = case(hours=-3.5)

    response = supervisor_client.get("/admin/crm/case/", {"queue": "recovery"})
    assert rows(response) == [late, fresh]
    assert closed not in rows(supervisor_client.get("/admin/crm/case/"))[:2]
    assert "3 h 30 min late" in response.content.decode() or "3 h 29 min late" in response.content.decode()


def test_admin_home_tiles_count_what_the_linked_queue_lists(supervisor_client, jim):
    case(hours=-1)
    case(hours=5)
    case(hours=5, status="resolved")
    case(hours=-1, kind="general")
    follow_up(hours=-2)
    follow_up(hours=-2, status="done")
    follow_up(hours=2)
    FeedbackFactory(customer=jim, sentiment="negative", status="processed")
    FeedbackFactory(customer=jim, sentiment="neutral", status="processed", rating=3, nps=6)  # not a complaint
    FeedbackFactory(customer=jim, sentiment="", status="received")

    page = supervisor_client.get("/admin/").content.decode()

    tiles = dict(re.findall(r'data-tile="(\w+)">\s*<b class="gf-tile-count">(\d+)</b>', page))
    assert tiles == {"recovery": "2", "overdue": "1", "review": "2", "recurring": "0"}
    for tile in desk.desk_tiles():
        listed = supervisor_client.get(tile["url"]).context["cl"].result_count
        assert listed == tile["count"], tile["key"]


def test_case_and_follow_up_owners_are_staff_with_a_desk_role(supervisor_client, sam):
    jane = UserFactory(username="jane", role="agent")
    UserFactory(username="admin", is_superuser=True, is_staff=True)
    UserFactory(username="cti", role="integration")
    UserFactory(username="gone", role="agent", is_active=False)
    item = follow_up(hours=1)

    form = supervisor_client.get(f"/admin/crm/followup/{item.pk}/change/").context["adminform"].form

    assert set(form.fields["owner"].queryset) == {jane, sam}


def test_a_complaints_case_and_follow_up_carry_the_customers_words_linked_both_ways(
    supervisor_client, jane, sofia, jim
):
    contact = InteractionFactory(customer=jim, agent=jane)
    feedback = workflows.feedback_submit(
        interaction_id=contact.pk, rating=3, nps=6, text="Waited 40 minutes and nothing was fixed."
    )
    workflows.feedback_process(str(feedback.pk))
    feedback.refresh_from_db()
    recovery = feedback.case
    follow = models.FollowUp.objects.get(feedback=feedback)

    assert recovery.subject == 'Service recovery: rating 3/5, NPS 6 — "Waited 40 minutes and nothing was fixed."'
    assert 'The customer said: "Waited 40 minutes and nothing was fixed."' in follow.note
    assert "with Jane Doyle" in follow.note and follow.case == recovery
    case_page = supervisor_client.get(f"/admin/crm/case/{recovery.pk}/change/").content.decode()
    follow_page = supervisor_client.get(f"/admin/crm/followup/{follow.pk}/change/").content.decode()
    for page in (case_page, follow_page):
        assert "“Waited 40 minutes and nothing was fixed.”" in page
        assert f"/admin/crm/feedback/{feedback.pk}/change/" in page
        assert "agent: Jane Doyle" in page
    feedback_page = supervisor_client.get(f"/admin/crm/feedback/{feedback.pk}/change/").content.decode()
    assert str(recovery.pk) in feedback_page


def test_reclassify_action_in_the_feedback_list(supervisor_client, sam, eager_tasks):
    customer = CustomerFactory()
    item = FeedbackFactory(customer=customer, rating=3, text="fine", sentiment="neutral", status="processed")

    supervisor_client.post(
        "/admin/crm/feedback/", {"action": "reclassify_negative", "_selected_action": [str(item.pk)]}, follow=True
    )

    item.refresh_from_db()
    assert (item.sentiment, item.sentiment_set_by) == ("negative", sam)
