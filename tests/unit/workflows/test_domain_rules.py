"""Rules with one home: completing a follow-up, the live customer, following a merge, notification subjects."""

import ast
import datetime as dt
import importlib
import uuid
from pathlib import Path

import pytest
from django.apps import apps as django_apps
from django.test import Client
from django.utils import timezone

from crm import feedback as workflows
from crm import privacy
from crm.follow_ups import follow_ups_escalate
from crm.models import AccessAudit, Customer, FollowUp, Notification, Recognition
from crm.services import customer_resolve
from tests.factories import CustomerFactory, InteractionFactory

CRM = Path(__file__).resolve().parents[3] / "crm"


# --- one follow_up_complete, audited on both paths -------------------------------------------------


def test_completing_a_follow_up_through_the_api_writes_an_audit_row(supervisor_api, sam, jim):
    follow_up = FollowUp.objects.create(kind="callback", customer=jim, due_at=timezone.now())

    response = supervisor_api.patch(f"/api/v1/follow-ups/{follow_up.pk}", {"status": "done"}, format="json")

    assert response.status_code == 200
    audit = AccessAudit.objects.get(customer=jim, action="update")
    assert (audit.actor, audit.detail) == (sam, {"follow_up_done": str(follow_up.pk)})


def test_the_api_and_the_admin_write_the_same_audit_row(supervisor_api, sam, jim):
    supervisor_client = Client()
    supervisor_client.force_login(sam)
    by_api = FollowUp.objects.create(kind="callback", customer=jim, due_at=timezone.now())
    by_admin = FollowUp.objects.create(kind="callback", customer=jim, due_at=timezone.now())

    supervisor_api.patch(f"/api/v1/follow-ups/{by_api.pk}", {"status": "done"}, format="json")
    supervisor_client.post(f"/admin/crm/followup/{by_admin.pk}/complete/")

    rows = AccessAudit.objects.filter(customer=jim, action="update").order_by("at", "pk")
    assert [(r.actor, r.detail) for r in rows] == [
        (sam, {"follow_up_done": str(by_api.pk)}),
        (sam, {"follow_up_done": str(by_admin.pk)}),
    ]


def test_a_follow_up_already_done_is_not_completed_or_audited_again(supervisor_api, jim):
    follow_up = FollowUp.objects.create(kind="callback", customer=jim, due_at=timezone.now())
    supervisor_api.patch(f"/api/v1/follow-ups/{follow_up.pk}", {"status": "done"}, format="json")
    completed_at = FollowUp.objects.get(pk=follow_up.pk).completed_at

    response = supervisor_api.patch(f"/api/v1/follow-ups/{follow_up.pk}", {"status": "done"}, format="json")

    assert response.status_code == 200
    assert FollowUp.objects.get(pk=follow_up.pk).completed_at == completed_at
    assert AccessAudit.objects.filter(customer=jim, action="update").count() == 1


def test_a_cancelled_follow_up_can_still_be_marked_done_through_the_api(supervisor_api, jim):
    follow_up = FollowUp.objects.create(kind="callback", customer=jim, status="cancelled", due_at=timezone.now())

    response = supervisor_api.patch(f"/api/v1/follow-ups/{follow_up.pk}", {"status": "done"}, format="json")

    assert response.json()["status"] == "done"
    assert AccessAudit.objects.filter(customer=jim, action="update").count() == 1


# --- one live customer, one merge resolution -----------------------------------------------------------


def test_live_customers_are_neither_erased_nor_merged_away(db):
    live = CustomerFactory()
    survivor = CustomerFactory()
    CustomerFactory(merged_into=survivor)
    CustomerFactory(erased_at=timezone.now())

    assert set(Customer.objects.live()) == {live, survivor}


def test_customer_resolve_follows_a_merge_and_refuses_the_erased_and_the_unknown(db):
    survivor = CustomerFactory()
    duplicate = CustomerFactory(merged_into=survivor)
    erased = CustomerFactory(erased_at=timezone.now())
    merged_into_erased = CustomerFactory(merged_into=erased)

    assert customer_resolve(duplicate.pk) == survivor
    assert customer_resolve(str(survivor.pk)) == survivor
    assert customer_resolve(erased.pk) is None
    assert customer_resolve(merged_into_erased.pk) is None
    assert customer_resolve(uuid.uuid4()) is None
    assert customer_resolve("not-a-uuid") is None


def test_feedback_about_a_merged_away_customer_belongs_to_the_survivor(jane, sofia, sam):
    survivor, duplicate = CustomerFactory(), CustomerFactory()
    feedback = workflows.feedback_submit(interaction_id=InteractionFactory(customer=duplicate, agent=jane).pk, rating=5)
    assert feedback.customer == duplicate
    privacy.customer_merge(actor=sam, survivor=survivor, duplicate_id=duplicate.pk)

    workflows.feedback_process(str(feedback.pk))

    feedback.refresh_from_db()
    assert feedback.customer == survivor


# --- notifications point at their subject ----------------------------------------------------------


def test_workflow_notifications_carry_their_subject_as_foreign_keys(jane, sofia, jim):
    praise = workflows.feedback_submit(interaction_id=InteractionFactory(customer=jim, agent=jane).pk, rating=5)
    complaint = workflows.feedback_submit(interaction_id=InteractionFactory(customer=jim, agent=jane).pk, rating=1)
    workflows.feedback_process(str(praise.pk))
    workflows.feedback_process(str(complaint.pk))

    recognition = Recognition.objects.get(feedback=praise)
    recovery = FollowUp.objects.get(feedback=complaint, kind="service_recovery")
    assert {(n.feedback_id, n.recognition_id, n.follow_up_id) for n in Notification.objects.all()} == {
        (praise.pk, recognition.pk, None),
        (complaint.pk, None, recovery.pk),
    }


def test_escalation_notifications_point_at_the_follow_up(jane, sofia, ada, jim):
    follow_up = FollowUp.objects.create(kind="callback", customer=jim, owner=jane, due_at=timezone.now())

    follow_ups_escalate(now=timezone.now() + dt.timedelta(minutes=1))

    assert list(Notification.objects.values_list("kind", "follow_up_id", "feedback_id")) == [
        ("escalation", follow_up.pk, None)
    ]


def test_migration_0008_fills_the_subjects_of_existing_notifications_from_their_keys(jane, sofia, ada, jim):
    praise = workflows.feedback_submit(interaction_id=InteractionFactory(customer=jim, agent=jane).pk, rating=5)
    complaint = workflows.feedback_submit(interaction_id=InteractionFactory(customer=jim, agent=jane).pk, rating=1)
    workflows.feedback_process(str(praise.pk))
    workflows.feedback_process(str(complaint.pk))
    recovery = FollowUp.objects.get(feedback=complaint)
    Notification.objects.create(recipient=ada, kind="escalation", key=f"{recovery.pk}:1", subject="s")
    Notification.objects.create(recipient=ada, kind="escalation", key=f"{uuid.uuid4()}:1", subject="gone")
    expected = {
        *Notification.objects.values_list("pk", "feedback_id", "recognition_id", "follow_up_id").exclude(
            kind="escalation"
        ),
    }
    Notification.objects.update(feedback=None, recognition=None, follow_up=None)  # as before 0008

    importlib.import_module("crm.migrations.0008_notification_subjects").fill_subjects(django_apps, None)

    rows = set(Notification.objects.values_list("pk", "feedback_id", "recognition_id", "follow_up_id"))
    escalated = Notification.objects.get(key=f"{recovery.pk}:1")
    assert expected <= rows
    assert (escalated.feedback_id, escalated.follow_up_id) == (complaint.pk, recovery.pk)
    assert Notification.objects.get(subject="gone").follow_up_id is None


# --- the shape: no cycles, nothing but tasks imports tasks -------------------------------------------


def _crm_imports(path: Path) -> tuple[set[str], list[str]]:
    """(crm modules imported at module level, crm imports made inside functions)."""
    tree = ast.parse(path.read_text())
    top: set[str] = set()
    for node in tree.body:
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "crm":
            names = [node.module] if node.module != "crm" else [f"crm.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.split(".")[0] == "crm"]
        top.update(".".join(n.split(".")[:2]) for n in names)
    nested = [
        ast.unparse(node)
        for fn in ast.walk(tree)
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
        for node in ast.walk(fn)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("crm")
    ]
    return top, nested


def test_crm_modules_import_each_other_without_cycles_or_function_level_imports():
    graph, nested = {}, {}
    for path in CRM.glob("*.py"):
        graph[f"crm.{path.stem}"], nested[path.stem] = _crm_imports(path)
    assert {name: found for name, found in nested.items() if found} == {}
    assert sorted(name for name, deps in graph.items() if "crm.tasks" in deps) == []

    state: dict[str, int] = {}

    def visit(name, trail):
        if state.get(name) == 1:
            pytest.fail(f"import cycle: {' -> '.join([*trail, name])}")
        if state.get(name) == 2 or name not in graph:
            return
        state[name] = 1
        for dep in sorted(graph[name]):
            visit(dep, [*trail, name])
        state[name] = 2

    for name in sorted(graph):
        visit(name, [])
