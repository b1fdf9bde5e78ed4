"""The agent page (/agent/...) and the call events endpoint (/api/v1/calls)."""

from django.urls import path

from context import agent
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
]
