"""Bodies of any size get a JSON answer and change nothing (issue 11, CONTRACT.md "Errors")."""

import pytest
from django.test import Client

from crm.models import AccessAudit, Feedback, Interaction

pytestmark = pytest.mark.django_db

TEN_MB = 10 * 1024 * 1024


def nothing_written():
    return (Feedback.objects.count(), Interaction.objects.count(), AccessAudit.objects.count()) == (0, 0, 0)


@pytest.mark.parametrize("url", ["/api/v1/context/lookup", "/api/v1/feedback"])
def test_a_ten_megabyte_json_body_is_a_json_413(agent_api, url):
    body = '{"phone": "' + "1" * TEN_MB + '", "rating": 5}'

    response = agent_api.generic("POST", url, body, content_type="application/json")

    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert "larger than" in response.json()["detail"]
    assert nothing_written()


def test_a_ten_megabyte_multipart_feedback_form_is_a_413_not_an_html_400():
    # multipart: Django's own limit fires while reading the fields (handler400)
    response = Client().post("/feedback/", {"rating": "5", "text": "x" * TEN_MB})

    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert nothing_written()


def test_a_ten_megabyte_urlencoded_feedback_form_is_a_413_before_it_is_read():
    body = "rating=5&text=" + "x" * TEN_MB
    response = Client().generic("POST", "/feedback/", body, content_type="application/x-www-form-urlencoded")

    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert nothing_written()


def test_a_json_body_over_the_parsers_cap_is_a_json_400(anon_api):
    body = '{"rating": 5, "text": "' + "x" * (300 * 1024) + '"}'

    response = anon_api.generic("POST", "/api/v1/feedback", body, content_type="application/json")

    assert response.status_code == 400
    assert "larger than" in response.json()["detail"]
    assert nothing_written()
