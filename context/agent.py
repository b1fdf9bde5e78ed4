"""/agent/ — the agent's screen-pop page, its event stream and its login.

The page is static HTML + vanilla JS; everything it shows comes from the
REST API (session-authenticated) and from the event stream below.

The stream is a server-sent-events response that holds one worker thread per
open page for as long as the page is open: fine under runserver (threaded) for
the demo; in production serve it under gunicorn with threads
(`--worker-class gthread --threads N`), N at least the number of agents per worker.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from functools import wraps

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import connections
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse_lazy
from django.views.decorators.http import require_GET, require_POST
from rest_framework.utils.encoders import JSONEncoder

from context import events
from crm.login_limits import LockoutAwareAuthenticationForm
from crm.models import Channel, Outcome
from crm.permissions import is_agent
from crm.selectors import live_customers

# A comment line this often (seconds; setting AGENT_EVENTS_KEEPALIVE) keeps
# proxies from closing an idle stream and lets the server notice a page that went away.
KEEPALIVE_SECONDS = 15
# How soon the browser reconnects after the stream drops.
RECONNECT_MS = 1000
# A stream ends after this long and the browser reconnects at once: each reconnect
# checks the session and the role again, so a deactivated agent, a removed role or
# a logout elsewhere stops the pushes within minutes.
STREAM_MAX_SECONDS = 300

LOGIN_URL = reverse_lazy("agent-login")


def agent_required(view):
    """Logged in (else the login page) and agent or supervisor (else 403)."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not is_agent(request.user):
            raise PermissionDenied("This page needs the agent or supervisor role.")
        return view(request, *args, **kwargs)

    return login_required(wrapped, login_url=LOGIN_URL)


class AgentLoginForm(LockoutAwareAuthenticationForm):
    error_messages = {**LockoutAwareAuthenticationForm.error_messages, "invalid_login": "Wrong username or password."}


class AgentLoginView(auth_views.LoginView):
    template_name = "agent/login.html"
    authentication_form = AgentLoginForm
    redirect_authenticated_user = True
    next_page = reverse_lazy("agent-page")  # type: ignore[assignment]  # the stubs want str; Django takes a lazy one


class AgentLogoutView(auth_views.LogoutView):
    next_page = LOGIN_URL  # type: ignore[assignment]


@require_GET
@agent_required
def agent_page(request):
    return render(
        request,
        "agent/page.html",
        {
            # Manual contacts are mostly chats, e-mails and walk-ins; phone comes last.
            "channels": sorted(Channel.choices, key=lambda c: c[0] == Channel.PHONE),
            "outcomes": Outcome.choices,
        },
    )


def _sse(payload: dict) -> str:
    data = json.dumps(payload, cls=JSONEncoder)
    return f"event: {payload.get('type', 'message')}\ndata: {data}\n\n"


def _stream(agent_id) -> Iterator[str]:
    with events.subscribe(agent_id) as subscription:
        # Subscribed before reading the current card, so nothing published in
        # between is lost (at worst it arrives twice; the page ignores repeats).
        yield f"retry: {RECONNECT_MS}\n\n"
        current = events.current_get(agent_id)
        if current is not None and _still_live(current):
            yield _sse({**current, "replay": True})
        # A page stays open for hours: it must not hold a database connection
        # meanwhile (connections inside a test's transaction are left alone).
        for conn in connections.all(initialized_only=True):
            if not conn.in_atomic_block:
                conn.close()
        ends_at = time.monotonic() + getattr(settings, "AGENT_EVENTS_MAX_SECONDS", STREAM_MAX_SECONDS)
        while time.monotonic() < ends_at:
            payload = subscription.get(timeout=getattr(settings, "AGENT_EVENTS_KEEPALIVE", KEEPALIVE_SECONDS))
            yield _sse(payload) if payload is not None else ": keepalive\n\n"


def _still_live(card: dict) -> bool:
    """A kept card is replayed only while its customer is live: never after an erasure or merge."""
    customer = (card.get("card") or {}).get("customer") or {}
    if not customer.get("id"):
        return True
    return live_customers().filter(pk=customer["id"]).exists()


@require_GET
def agent_events(request):
    """The page's event stream: the current call card on connect, then each call event."""
    if not request.user.is_authenticated:
        return HttpResponse("Log in first.", status=401, content_type="text/plain")
    if not is_agent(request.user):
        return HttpResponse("This needs the agent or supervisor role.", status=403, content_type="text/plain")
    response = StreamingHttpResponse(_stream(request.user.pk), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event through at once
    return response


@require_POST
@agent_required
def agent_dismiss(request):
    """The agent is done with the current card: a reload no longer shows it."""
    try:
        interaction_id = json.loads(request.body or b"{}").get("interaction_id")
    except (ValueError, AttributeError):
        return JsonResponse({"interaction_id": ["Send JSON {interaction_id}."]}, status=400)
    cleared = events.current_clear(request.user.pk, interaction_id=interaction_id)
    return JsonResponse({"cleared": cleared})
