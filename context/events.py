"""Push to agent pages: publish(agent_id, payload) / subscribe(agent_id).

With REDIS_URL set, events fan out through Redis pub/sub, so a call event
received by any web process reaches the page held open by another. On the
embedded default (one process), an in-process broadcaster does the same job.

The agent's current call card is also kept in the cache, so a page that
reconnects (network blip, reload) is sent it again.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from rest_framework.utils.encoders import JSONEncoder

from crm import observability

logger = logging.getLogger(__name__)

# Issue 17: the time the call event arrived rides along with the push (for the
# event-to-push latency metric); the subscription takes it off again.
EVENT_AT_KEY = "_event_at"

# Long enough for a call plus its wrap-up; a stale card must not pop the next morning.
CURRENT_CARD_TTL = 4 * 60 * 60


def _encode(payload: dict[str, Any]) -> str:
    # DRF's encoder: datetimes and UUIDs come out exactly as the lookup API writes them.
    return json.dumps(payload, cls=JSONEncoder)


def _current_key(agent_id) -> str:
    return f"agent-call:{agent_id}"


def current_get(agent_id) -> dict[str, Any] | None:
    """The card of the agent's current call, if there is one (sent again on reconnect)."""
    raw = cache.get(_current_key(agent_id))
    return json.loads(raw) if raw else None


def current_set(agent_id, payload: dict[str, Any]) -> None:
    cache.set(_current_key(agent_id), _encode(payload), CURRENT_CARD_TTL)


def current_clear(agent_id, *, interaction_id: str | None = None) -> bool:
    """Forget the current card (the agent finished with it); only that contact's, if given."""
    current = current_get(agent_id)
    if current is None:
        return False
    if interaction_id is not None and current.get("interaction_id") != str(interaction_id):
        return False
    cache.delete(_current_key(agent_id))
    return True


def cards_forget(*, customer_ids, interaction_ids, **_signal) -> int:
    """Drop every agent's current card that shows one of these customers or contacts (an
    erasure: the card holds their name, identifiers and history). One read of all the users'
    card keys; erasures are rare. Returns how many were dropped."""
    from django.contrib.auth import get_user_model

    customers, contacts = {str(c) for c in customer_ids}, {str(i) for i in interaction_ids}
    keys = [_current_key(pk) for pk in get_user_model().objects.values_list("pk", flat=True)]
    stale = []
    for key, raw in cache.get_many(keys).items():
        card = json.loads(raw) if raw else {}
        body = card.get("card") or {}
        shown = {(body.get("customer") or {}).get("id")} | {c.get("id") for c in body.get("candidates") or ()}
        if card.get("interaction_id") in contacts or shown & customers:
            stale.append(key)
    cache.delete_many(stale)
    return len(stale)


class _LocalBroadcaster:
    """One process: a queue per open page, guarded by a lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[str, set[queue.Queue]] = {}

    def publish(self, agent_id, message: str) -> None:
        with self._lock:
            targets = list(self._queues.get(str(agent_id), ()))
        for q in targets:
            q.put(message)

    @contextmanager
    def subscribe(self, agent_id) -> Iterator[_Subscription]:
        q: queue.Queue = queue.Queue()
        key = str(agent_id)
        with self._lock:
            self._queues.setdefault(key, set()).add(q)
        try:
            yield _Subscription(lambda timeout: _queue_get(q, timeout))
        finally:
            with self._lock:
                subscribers = self._queues.get(key, set())
                subscribers.discard(q)
                if not subscribers:
                    self._queues.pop(key, None)


def _queue_get(q: queue.Queue, timeout: float) -> str | None:
    try:
        return q.get(timeout=timeout)
    except queue.Empty:
        return None


class _RedisBroadcaster:
    """Many processes: Redis pub/sub, one channel per agent."""

    def __init__(self, url: str) -> None:
        import redis

        self._client = redis.Redis.from_url(url, socket_connect_timeout=2, health_check_interval=30)
        # Issue 11: publishing happens while a request waits, so a frozen Redis costs it
        # CRM_REDIS_TIMEOUT_MS, not forever; subscriptions keep the long-lived client.
        seconds = settings.CRM_REDIS_TIMEOUT_MS / 1000
        self._publisher = redis.Redis.from_url(url, socket_connect_timeout=seconds, socket_timeout=seconds)

    def _channel(self, agent_id) -> str:
        # Pub/sub ignores the Redis database number, so deployments (and test runs)
        # sharing one Redis are kept apart by their database name.
        return f"goldfish:{connection.settings_dict['NAME']}:agent:{agent_id}"

    def publish(self, agent_id, message: str) -> None:
        self._publisher.publish(self._channel(agent_id), message)

    @contextmanager
    def subscribe(self, agent_id) -> Iterator[_Subscription]:
        pubsub = self._client.pubsub()
        pubsub.subscribe(self._channel(agent_id))
        try:
            # Wait for Redis to confirm, so that an event published right after
            # subscribe() returns (e.g. the replayed card's successor) is not missed.
            self._next(pubsub, 2.0, "subscribe")

            def get(timeout: float) -> str | None:
                data = self._next(pubsub, timeout, "message")
                return data.decode() if isinstance(data, bytes) else data

            yield _Subscription(get)
        finally:
            pubsub.close()

    @staticmethod
    def _next(pubsub, timeout: float, wanted: str):
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            message = pubsub.get_message(timeout=remaining)
            if message is not None and message.get("type") == wanted:
                return message["data"]


class _Subscription:
    def __init__(self, getter) -> None:
        self._getter = getter
        # When the call event behind the last payload reached the service (epoch seconds).
        self.event_at: float | None = None

    def get(self, timeout: float) -> dict[str, Any] | None:
        """The next event for this agent, or None after `timeout` seconds."""
        raw = self._getter(timeout)
        if not raw:
            return None
        payload = json.loads(raw)
        self.event_at = payload.pop(EVENT_AT_KEY, None)
        return payload


_local = _LocalBroadcaster()
_redis: dict[str, _RedisBroadcaster] = {}
_redis_lock = threading.Lock()


def broadcaster() -> _LocalBroadcaster | _RedisBroadcaster:
    """Redis pub/sub when REDIS_URL is set (read per call, so settings overrides apply)."""
    url = settings.REDIS_URL
    if not url:
        return _local
    with _redis_lock:
        if url not in _redis:
            _redis[url] = _RedisBroadcaster(url)
        return _redis[url]


def publish(agent_id, payload: dict[str, Any], *, remember: bool = True) -> None:
    """Send an event to the agent's open pages now; `remember` keeps it as the current card."""
    if remember:
        current_set(agent_id, payload)
    broadcaster().publish(agent_id, _encode({**payload, EVENT_AT_KEY: observability.event_time()}))
    logger.info("agent event %s to agent %s", payload.get("type"), agent_id)


def publish_on_commit(agent_id, payload: dict[str, Any], *, remember: bool = True) -> None:
    """Publish once the surrounding transaction commits: the page must never see a rolled-back call.

    Robust: with Redis down the call is still recorded (and answered 202); the
    failure is logged and the page simply does not pop.
    """
    transaction.on_commit(lambda: publish(agent_id, payload, remember=remember), robust=True)


def subscribe(agent_id):
    """Context manager yielding a subscription with .get(timeout) -> payload or None."""
    return broadcaster().subscribe(agent_id)
