"""Issue 15: a fact that came from a bulk import says so on the card ("from import, 12 Mar"), on both paths."""

import pytest

from crm import imports

pytestmark = pytest.mark.django_db

CUSTOMERS_CSV = """\
external_ref,display_name,phone,fact:router_model
C-1,Ada Lovelace,+44 20 7946 0001,TP-Link AX55
"""


def test_an_imported_fact_names_its_file_and_line_on_the_card_and_in_the_customer_view(tmp_path, sam, agent_api):
    path = tmp_path / "legacy-crm.csv"
    path.write_text(CUSTOMERS_CSV, encoding="utf-8")
    job = imports.import_job_create(actor=sam, kind="customers", path=path, file_name=path.name, dry_run=False)
    assert imports.import_run(job.pk).status == "done"

    card = agent_api.post("/api/v1/context/lookup", {"phone": "+442079460001"}, format="json").json()
    fact = card["customer"]["facts"][0]
    assert (fact["key"], fact["value"]) == ("router_model", "TP-Link AX55")
    assert fact["source"] == {"channel": None, "interaction_id": None, "imported_from": "legacy-crm.csv:2"}

    customer_id = card["customer"]["id"]
    view = agent_api.get(f"/api/v1/customers/{customer_id}").json()
    assert view["facts"][0]["source"]["imported_from"] == "legacy-crm.csv:2"
