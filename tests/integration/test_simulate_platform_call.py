"""`manage.py simulate_call --platform ...` posts the vendors' samples to a running server, which pops the card."""

import pytest
from django.core.management import call_command

from crm.models import Interaction, StaffProfile
from tests.factories import CustomerFactory, IdentityFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def demo(transactional_db, settings):
    settings.CRM_TWILIO_AUTH_TOKEN = "demo-token"
    UserFactory(username="cti", role="integration")
    jane = UserFactory(username="jane", role="agent")
    jim = CustomerFactory(display_name="James Okafor")
    IdentityFactory(customer=jim, kind="phone", value="+12125550100", normalized="+12125550100")
    return jane, jim


@pytest.mark.parametrize("platform", ["twilio", "connect", "genesys"])
def test_each_platforms_samples_pop_a_new_call_for_the_agent(platform, demo, live_server, capsys):
    jane, jim = demo
    for run in (1, 2):  # each run is a new call, not a replay
        call_command("simulate_call", platform=platform, agent="jane", url=live_server.url)
        assert Interaction.objects.filter(agent=jane, customer=jim).count() == run
    out = capsys.readouterr().out
    assert "applied" in out and "unmatched" not in out
    assert StaffProfile.objects.get(user=jane).twilio_contact_uri == "client:agent_alice"
