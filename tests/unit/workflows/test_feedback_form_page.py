"""The public form's fields (issue 13): one type per input, NPS as a 0-10 scale, and what a complaint hears next."""

import re

import pytest

pytestmark = pytest.mark.django_db


def test_email_and_phone_inputs_have_one_type_each_and_nps_is_a_scale_not_a_dropdown(client):
    page = client.get("/feedback/").content.decode()

    email = re.search(r"<input[^>]*name=\"email\"[^>]*>", page).group(0)
    phone = re.search(r"<input[^>]*name=\"phone\"[^>]*>", page).group(0)
    assert email.count("type=") == 1 and 'type="email"' in email
    assert phone.count("type=") == 1 and 'type="tel"' in phone
    assert "<select" not in page
    assert len(re.findall(r'<input type="radio" name="nps"', page)) == 11


def test_a_complaint_is_told_what_happens_next_and_praise_is_not(client):
    sorry = client.post("/feedback/", {"rating": "1", "text": "Still no engineer."}, follow=True)
    praise = client.post("/feedback/", {"rating": "5", "text": "Lovely."}, follow=True)

    assert "team leader" in sorry.content.decode() and "within 24 hours" in sorry.content.decode()
    assert "team leader" not in praise.content.decode()
