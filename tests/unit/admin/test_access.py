import pytest
from django.contrib.auth.models import Group
from django.test import Client

from crm import models
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

TOOL_PAGES = [
    "/admin/crm/customer/duplicates/",
    "/admin/crm/interaction/reports/",
    "/admin/crm/customer/{jim}/360/",
    "/admin/crm/customer/{jim}/export/",
    "/admin/crm/customer/{jim}/erase/",
    "/admin/crm/customer/{jim}/change/",
]
QUEUES = [
    "/admin/crm/feedback/",
    "/admin/crm/recognition/",
    "/admin/crm/followup/",
    "/admin/crm/case/",
    "/admin/crm/recurringproblem/",
    "/admin/crm/customer/",
    "/admin/crm/accessaudit/",
    "/admin/crm/mergerecord/",
    "/admin/crm/interaction/",
]


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("page", TOOL_PAGES + QUEUES)
def test_an_agent_is_sent_to_the_login_page(alice, jim, page):
    response = client_of(alice).get(page.format(jim=jim.pk))

    assert response.status_code == 302 and response.url.startswith("/admin/login/")


@pytest.mark.parametrize("page", TOOL_PAGES + QUEUES)
def test_a_staff_agent_without_the_supervisor_role_is_refused(staff_agent, jim, page):
    staff_agent.user_permissions.set(Group.objects.get(name="supervisor").permissions.all())

    response = client_of(staff_agent).get(page.format(jim=jim.pk))

    assert response.status_code == 403
    assert not models.AccessAudit.objects.filter(actor=staff_agent).exists()


@pytest.mark.parametrize("page", TOOL_PAGES + QUEUES)
def test_supervisors_and_superusers_reach_every_page(supervisor_client, jim, page):
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    for client in (supervisor_client, client_of(admin)):
        assert client.get(page.format(jim=jim.pk)).status_code == 200


def test_a_supervisor_by_group_alone_logs_in_and_reaches_the_tools(jim):
    # given: a user made as the contract says, only added to the supervisor group
    UserFactory(username="gina", role="supervisor", is_staff=False)
    client = Client()

    # when
    login = client.post("/admin/login/", {"username": "gina", "password": "pw-for-tests", "next": "/admin/"})

    # then
    assert login.status_code == 302 and login.url == "/admin/"
    for page in TOOL_PAGES + QUEUES:
        assert client.get(page.format(jim=jim.pk)).status_code == 200, page


def test_an_agent_cannot_log_in_to_the_admin(alice):
    login = Client().post("/admin/login/", {"username": "alice", "password": "pw-for-tests", "next": "/admin/"})
    assert login.status_code == 200 and "_auth_user_id" not in login.client.session


def test_the_supervisor_group_has_the_model_permissions_its_pages_need():
    codenames = set(Group.objects.get(name="supervisor").permissions.values_list("codename", flat=True))

    assert {"view_accessaudit", "change_customer", "change_followup", "view_recognition"} <= codenames
    assert not {"add_accessaudit", "change_accessaudit", "delete_accessaudit", "delete_customer"} & codenames


def test_the_access_audit_cannot_be_added_changed_or_deleted_in_the_admin(supervisor_client, sam, jim):
    row = models.AccessAudit.objects.create(actor=sam, action="view", customer=jim)
    superuser = client_of(UserFactory(username="root", is_staff=True, is_superuser=True))

    for client in (supervisor_client, superuser):
        assert client.get("/admin/crm/accessaudit/add/").status_code == 403
        assert client.post(f"/admin/crm/accessaudit/{row.pk}/delete/").status_code == 403
        change = client.post(f"/admin/crm/accessaudit/{row.pk}/change/", {"action": "erase"})
        assert change.status_code == 403
        page = client.get(f"/admin/crm/accessaudit/{row.pk}/change/").content.decode()
        assert 'name="_save"' not in page
    row.refresh_from_db()
    assert row.action == "view"
    assert models.AccessAudit.objects.filter(pk=row.pk).exists()


def test_customers_cannot_be_deleted_in_the_admin_only_erased(supervisor_client, jim):
    response = supervisor_client.post(f"/admin/crm/customer/{jim.pk}/delete/", {"post": "yes"})

    assert response.status_code == 403
    assert models.Customer.objects.filter(pk=jim.pk).exists()
