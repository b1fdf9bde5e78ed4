"""The request schemas state what the API refuses (issue 11); what they cannot state, the descriptions say."""

from crm.api_schema import NON_BLANK_TEXT_PATTERN, RULES_BEYOND_THE_SCHEMA


def schema_of(api):
    response = api.get("/api/v1/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def test_each_rule_beyond_the_schema_names_an_operation_whose_description_says_it(agent_api):
    paths = schema_of(agent_api)["paths"]
    for operation, rule in RULES_BEYOND_THE_SCHEMA.items():
        method, path = operation.split(" ", 1)
        assert rule in paths[path][method.lower()]["description"], operation


def test_request_bodies_refuse_unknown_fields_and_the_lookup_needs_an_identifier(agent_api):
    components = schema_of(agent_api)["components"]["schemas"]
    lookup = components["LookupRequestRequest"]
    assert lookup["additionalProperties"] is False
    assert {"required": ["phone"]} in lookup["anyOf"] and {"required": ["customer_id"]} in lookup["anyOf"]
    assert components["FeedbackInputRequest"]["additionalProperties"] is False
    assert components["CustomerCreateRequest"]["properties"]["display_name"]["pattern"] == NON_BLANK_TEXT_PATTERN


def test_every_operation_documents_503_with_retry_after(agent_api):
    for path, methods in schema_of(agent_api)["paths"].items():
        for method, operation in methods.items():
            assert "Retry-After" in operation["responses"]["503"]["headers"], f"{method} {path}"
