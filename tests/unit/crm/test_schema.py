"""The OpenAPI document at /api/v1/schema/ describes every response and every error an operation answers."""

import pytest

from crm.models import FollowUp
from tests.factories import CustomerFactory, FeedbackFactory

pytestmark = pytest.mark.django_db

METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture
def schema(agent_api):
    response = agent_api.get("/api/v1/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield f"{method.upper()} {path}", operation


def resolve(schema, node):
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def is_typed(schema, node) -> bool:
    """A $ref to a component with properties, or an array of such: not a bare free-form object."""
    node = resolve(schema, node)
    if node.get("type") == "array":
        return is_typed(schema, node["items"])
    return bool(node.get("properties"))


def test_every_success_response_has_a_typed_shape(schema):
    untyped = []
    for name, operation in operations(schema):
        for code, response in operation["responses"].items():
            if not code.startswith("2") or code == "204":
                continue
            content = response.get("content", {})
            if set(content) == {"text/csv"}:  # a file download (an import's error file): a binary body
                assert content["text/csv"]["schema"] == {"type": "string", "format": "binary"}, name
                continue
            body = content.get("application/json", {}).get("schema")
            if body is None or not is_typed(schema, body):
                untyped.append(f"{name} {code}")
    assert not untyped, f"free-form or missing response shapes: {untyped}"
    assert len(list(operations(schema))) >= 22


def test_operations_that_need_a_login_document_401_and_403_in_the_error_shape(schema):
    error = schema["components"]["schemas"]["Error"]
    assert error["properties"]["detail"]["type"] == "string"
    # a field's messages; a list or object field's are nested per item or key
    assert error["additionalProperties"] == {
        "anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "object"}]
    }
    missing = []
    for name, operation in operations(schema):
        needs_login = {} not in operation.get("security", [{}])
        expected = {"401", "403"} if needs_login else set()
        if "requestBody" in operation:
            expected.add("400")
        if "{" in name:
            expected.add("404")
        if not expected <= set(operation["responses"]):
            missing.append(f"{name}: {sorted(expected - set(operation['responses']))}")
        for code, response in operation["responses"].items():
            if code >= "400":
                assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert not missing


def test_conflicts_and_throttles_are_documented_where_they_happen(schema):
    paths = schema["paths"]
    assert "409" in paths["/api/v1/customers/{customer_id}/identities"]["post"]["responses"]
    assert "409" in paths["/api/v1/interactions/{interaction_id}"]["patch"]["responses"]
    assert "429" in paths["/api/v1/feedback"]["post"]["responses"]
    assert "429" in paths["/api/v1/auth/token"]["post"]["responses"]
    assert "404" in paths["/api/v1/context/lookup"]["post"]["responses"]
    assert "401" not in paths["/api/v1/feedback"]["post"]["responses"]


def properties(schema, name):
    return set(schema["components"]["schemas"][name]["properties"])


def test_the_documented_shapes_are_the_keys_the_api_answers_with(schema, agent_api, jim):
    customer = agent_api.get(f"/api/v1/customers/{jim.pk}").json()
    assert set(customer) == properties(schema, "Customer")
    assert set(customer["identities"][0]) == properties(schema, "Identity")

    card = agent_api.post("/api/v1/context/lookup", {"phone": "+12125550100"}, format="json").json()
    assert set(card) == properties(schema, "Card")
    assert set(card["customer"]) == properties(schema, "CardCustomer")

    interaction = agent_api.get(f"/api/v1/interactions/{card['interaction_id']}").json()
    assert set(interaction) == properties(schema, "Interaction")
    # Issue 12: the card's identities, and "Verified on this call".
    assert set(card["customer"]["identities"][0]) == properties(schema, "CardIdentity")
    verified = agent_api.post(f"/api/v1/interactions/{card['interaction_id']}/verify", {"kind": "phone"}, format="json")
    assert set(verified.json()) == properties(schema, "ContactVerify")
    # Wrapped up, so the contact counts and is on the timeline (issue 12).
    wrap = {"reason": "billing", "outcome": "resolved"}
    assert agent_api.patch(f"/api/v1/interactions/{card['interaction_id']}", wrap, format="json").status_code == 200

    timeline = agent_api.get(f"/api/v1/customers/{jim.pk}/timeline").json()
    assert set(timeline) == properties(schema, "Timeline")
    assert set(timeline["results"][0]) <= properties(schema, "TimelineEntry")


def test_the_supervisors_shapes_are_the_keys_the_api_answers_with(schema, supervisor_api, jim):
    feedback = FeedbackFactory(customer=jim, text="fine")
    FollowUp.objects.create(kind="callback", customer=jim, feedback=feedback, due_at=feedback.received_at)

    detail = supervisor_api.get(f"/api/v1/feedback/{feedback.pk}").json()
    assert set(detail) == properties(schema, "Feedback")
    assert set(detail["follow_ups"][0]) == properties(schema, "FollowUp")
    follow_ups = supervisor_api.get("/api/v1/follow-ups").json()
    assert set(follow_ups) == properties(schema, "FollowUpList")
    assert set(supervisor_api.get("/api/v1/recurring-problems").json()) == properties(schema, "RecurringProblems")
    assert set(supervisor_api.get("/api/v1/recognitions").json()) == properties(schema, "RecognitionList")
    export = supervisor_api.get(f"/api/v1/customers/{jim.pk}/export").json()
    assert set(export) == properties(schema, "CustomerExport")
    assert set(export["customer"]) == properties(schema, "ExportPerson")

    duplicate = CustomerFactory(display_name="Jim O.")
    merged = supervisor_api.post(
        f"/api/v1/customers/{jim.pk}/merge", {"duplicate_id": str(duplicate.pk)}, format="json"
    )
    assert merged.status_code == 200 and set(merged.json()) == properties(schema, "MergeResult")
