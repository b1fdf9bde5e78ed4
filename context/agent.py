"""/agent/ — the agent's screen-pop page, its event stream and its login.

The page is static HTML + vanilla JS; everything it shows comes from the
REST API (session-authenticated) and from the event stream below.

The stream is a server-sent-events response that holds one worker thread per
open page for as long as the page is open: fine under runserver (threaded) for
the demo; in production serve it under gunicorn with threads
(`--worker-class gthread --threads N`). Streams are capped per user and per
process (issue 10, `stream_slot_take`) so they never hold every thread; the
README's "Deployment: event streams" says how to size N and the caps.
"""

from __future__ import annotations

import json
import threading
import time
import weakref
from collections.abc import Generator, Iterator
from functools import wraps

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db import connections
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse_lazy
from django.views.decorators.http import require_GET, require_POST
from rest_framework.utils.encoders import JSONEncoder

from context import events, recognitions
from crm import metrics
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


def _stream(agent_id) -> Generator[str, None, None]:
    metrics.agent_streams.inc()
    try:
        yield from _stream_events(agent_id)
    finally:
        metrics.agent_streams.dec()


def _stream_events(agent_id) -> Generator[str, None, None]:
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
            if payload is None:
                yield ": keepalive\n\n"
                continue
            metrics.pop_pushed(subscription.event_at)
            yield _sse(payload)


def _still_live(card: dict) -> bool:
    """A kept card is replayed only while its customer is live: never after an erasure or merge."""
    customer = (card.get("card") or {}).get("customer") or {}
    if not customer.get("id"):
        return True
    return live_customers().filter(pk=customer["id"]).exists()


# --- stream slots (issue 10): a user's streams are capped (CRM_MAX_STREAMS_PER_USER, counted
# in the cache, so across web processes), and so are a process's (CRM_MAX_STREAMS_PER_PROCESS):
# each stream holds a server thread, and the API must always keep threads to answer with.
_process_lock = threading.Lock()
_process_streams = 0


def _user_slots_key(user_id) -> str:
    return f"agent-streams:{user_id}"


def stream_slot_take(user_id) -> HttpResponse | None:
    """Take a stream slot for this user; the refusal to send when there is none."""
    global _process_streams
    with _process_lock:
        if _process_streams >= settings.CRM_MAX_STREAMS_PER_PROCESS:
            response = JsonResponse({"detail": "This server holds all the event streams it may; retry."}, status=503)
            response["Retry-After"] = "5"
            return response
        _process_streams += 1
    key = _user_slots_key(user_id)
    # The count expires a little after the longest stream, so one a killed process never
    # released is forgotten within minutes.
    cache.add(key, 0, getattr(settings, "AGENT_EVENTS_MAX_SECONDS", STREAM_MAX_SECONDS) + 30)
    try:
        open_now = cache.incr(key)
    except ValueError:  # expired just now
        cache.add(key, 1, getattr(settings, "AGENT_EVENTS_MAX_SECONDS", STREAM_MAX_SECONDS) + 30)
        open_now = 1
    if open_now > settings.CRM_MAX_STREAMS_PER_USER:
        _slot_release(user_id)
        response = JsonResponse(
            {
                "detail": f"At most {settings.CRM_MAX_STREAMS_PER_USER} open agent pages per user; "
                "close one (or wait for it to time out) and retry."
            },
            status=429,
        )
        response["Retry-After"] = "10"
        return response
    return None


def _slot_release(user_id) -> None:
    global _process_streams
    with _process_lock:
        _process_streams = max(0, _process_streams - 1)
    try:
        if cache.decr(_user_slots_key(user_id)) < 0:
            cache.delete(_user_slots_key(user_id))
    except ValueError:  # the count expired meanwhile
        pass


class _SlotStream:
    """The stream's iterator; closing it (the server does, also for a page that never read
    a byte) gives the slot back, exactly once; so does its collection, should a server
    drop a response without closing it."""

    def __init__(self, user_id) -> None:
        self._events = _stream(user_id)
        self._release = weakref.finalize(self, _slot_release, user_id)

    def __iter__(self) -> Iterator[str]:
        return self._events

    def close(self) -> None:
        try:
            self._events.close()
        finally:
            self._release()


@require_GET
def agent_events(request):
    """The page's event stream: the current call card on connect, then each call event."""
    if not request.user.is_authenticated:
        return HttpResponse("Log in first.", status=401, content_type="text/plain")
    if not is_agent(request.user):
        return HttpResponse("This needs the agent or supervisor role.", status=403, content_type="text/plain")
    refused = stream_slot_take(request.user.pk)
    if refused is not None:
        return refused
    response = StreamingHttpResponse(_SlotStream(request.user.pk), content_type="text/event-stream")
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


@require_GET
@agent_required
def agent_recognitions(request):
    """My recognitions: the signed-in agent's recent praise (newer ones arrive on the event stream)."""
    return JsonResponse({"results": recognitions.recognitions_recent(request.user)})
