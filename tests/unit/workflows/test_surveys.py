"""Survey fatigue (issue 13): no survey link within CRM_SURVEY_SUPPRESSION_DAYS of the last feedback."""

import datetime as dt

import pytest
from django.utils import timezone

from crm import surveys
from tests.factories import FeedbackFactory, InteractionFactory

pytestmark = pytest.mark.django_db


def test_a_customer_who_gave_feedback_last_week_gets_no_survey_link_until_the_window_ends(jim, jane, settings):
    settings.CRM_SURVEY_SUPPRESSION_DAYS = 30
    contact = InteractionFactory(customer=jim, agent=jane)
    asked = surveys.after_contact_message(contact)
    assert f"/feedback/?interaction={contact.pk}&staff=jane" in asked

    given = timezone.now() - dt.timedelta(days=7)
    FeedbackFactory(customer=jim, rating=4, received_at=given)

    assert "/feedback/" not in surveys.after_contact_message(contact)
    assert surveys.survey_suppressed_until(jim.pk) == given + dt.timedelta(days=30)
    assert surveys.survey_link(contact, now=given + dt.timedelta(days=31)) is not None


def test_the_360_shows_the_suppression(supervisor_client, jim, settings):
    settings.CRM_SURVEY_SUPPRESSION_DAYS = 30
    page = supervisor_client.get(f"/admin/crm/customer/{jim.pk}/360/").content.decode()
    assert "may be asked for feedback" in page

    FeedbackFactory(customer=jim, rating=2, received_at=timezone.now() - dt.timedelta(days=2))

    page = supervisor_client.get(f"/admin/crm/customer/{jim.pk}/360/").content.decode()
    assert "no survey until" in page


def test_zero_days_means_always_ask(jim, settings):
    settings.CRM_SURVEY_SUPPRESSION_DAYS = 0
    FeedbackFactory(customer=jim, rating=2, received_at=timezone.now())
    assert surveys.survey_suppressed_until(jim.pk) is None
