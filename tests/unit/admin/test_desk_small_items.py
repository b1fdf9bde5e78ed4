"""Small items from issue 13's finding 7: `/` routes each role, a way back for agents, favicon, labels, plurals."""

import pytest
from django.test import Client

from tests.factories import CustomerFactory, IdentityFactory, InteractionFactory, reason

pytestmark = pytest.mark.django_db


def test_the_root_sends_supervisors_to_the_admin_agents_to_their_page_and_others_to_a_menu(sam, alice):
    anonymous = Client().get("/")
    assert anonymous.status_code == 200
    assert 'href="/agent/"' in anonymous.content.decode() and 'href="/admin/"' in anonymous.content.decode()
    for user, desk in ((sam, "/admin/"), (alice, "/agent/")):
        client = Client()
        client.force_login(user)
        response = client.get("/")
        assert response.status_code == 302 and response.url == desk


def test_an_agent_who_opens_the_admin_is_offered_the_way_back_to_the_agent_page(alice):
    client = Client()
    client.force_login(alice)

    page = client.get("/admin/", follow=True).content.decode()

    assert 'id="back-to-agent"' in page and 'href="/agent/"' in page


def test_the_favicon_is_served():
    response = Client().get("/favicon.ico")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert response.content.startswith(b"\x89PNG")


def test_the_360_shows_labels_not_codes(supervisor_client):
    customer = CustomerFactory(tier="vip")
    IdentityFactory(customer=customer, kind="email", value="a@example.com", normalized="a@example.com")
    InteractionFactory(customer=customer, reason=reason("technical_fault"))

    page = supervisor_client.get(f"/admin/crm/customer/{customer.pk}/360/").content.decode()

    assert "VIP" in page and "Vip" not in page
    assert ">technical_fault<" not in page


def test_the_duplicates_page_says_1_contact_not_1_contacts(supervisor_client):
    a, b = CustomerFactory(display_name="Ann Lee"), CustomerFactory(display_name="Ann Lee")
    for c in (a, b):
        IdentityFactory(customer=c, kind="phone", value="+12125550999", normalized="+12125550999")
    InteractionFactory(customer=a)

    page = supervisor_client.get("/admin/crm/customer/duplicates/").content.decode()

    assert "1 contact<" in page and "1 contacts" not in page
