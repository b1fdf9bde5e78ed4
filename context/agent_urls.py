"""The agent page (/agent/...) and the call events endpoint (/api/v1/calls)."""

from django.urls import path

from context import agent
from context.adapters import views as adapters  # issue 16
from context.calls_api import CallEventApi

agent_urlpatterns = [
    path("", agent.agent_page, name="agent-page"),
    path("events", agent.agent_events, name="agent-events"),
    path("dismiss", agent.agent_dismiss, name="agent-dismiss"),
    path("recognitions", agent.agent_recognitions, name="agent-recognitions"),
    path("login/", agent.AgentLoginView.as_view(), name="agent-login"),
    path("logout/", agent.AgentLogoutView.as_view(), name="agent-logout"),
]

api_urlpatterns = [
    path("calls", CallEventApi.as_view(), name="call-events"),
    # --- issue 16: telephony platform adapters
    path("calls/twilio", adapters.twilio_call_view, name="calls-twilio"),
    path("calls/amazon-connect", adapters.ConnectCallApi.as_view(), name="calls-amazon-connect"),
    path("calls/genesys", adapters.GenesysCallApi.as_view(), name="calls-genesys"),
]
