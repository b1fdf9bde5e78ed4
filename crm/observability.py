"""Request ids, JSON log lines, and the optional error and tracing integrations (issue 17).

Import-light on purpose: settings import it (LOGGING names the formatter, SENTRY_DSN
and OTEL_EXPORTER_OTLP_ENDPOINT switch the integrations on), so nothing here touches
models. Every log line of the web and the worker is one JSON object carrying the
request id, the user id and, in the worker, the task's name and id; never a
customer's name, phone or e-mail (the log calls name ids only, and the Sentry
scrubber below removes what an exception might carry).
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from contextvars import ContextVar, Token
from typing import Any

from django.utils.functional import empty
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

# What a caller's X-Request-ID may be; anything else is replaced by a generated id,
# so a header cannot inject text (or personal data) into every log line.
REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
# The Celery message header that carries the request id into a task.
REQUEST_ID_HEADER = "goldfish_request_id"

_request_id: ContextVar[str | None] = ContextVar("goldfish_request_id", default=None)
_request: ContextVar[Any] = ContextVar("goldfish_request", default=None)
_task: ContextVar[tuple[str, str] | None] = ContextVar("goldfish_task", default=None)


def request_id_accept(raw: str | None) -> str:
    """The caller's request id when it is a sane token, else a new one.

    New ids need to be unique, not secret: 128 bits from `random` (reseeded in each
    forked process) cost a fraction of uuid4's system call.
    """
    if raw and REQUEST_ID_PATTERN.match(raw):
        return raw
    return f"{random.getrandbits(128):032x}"


def request_id_current() -> str | None:
    return _request_id.get()


def request_bind(request_id: str, request: Any = None) -> tuple[Token, Token]:
    """Make `request_id` (and the request, for the user id) part of every log line from here on."""
    return _request_id.set(request_id), _request.set(request)


def request_unbind(tokens: tuple[Token, Token]) -> None:
    _request_id.reset(tokens[0])
    _request.reset(tokens[1])


def task_bind(name: str, task_id: str, request_id: str | None) -> tuple[Token, Token]:
    return _task.set((name, task_id)), _request_id.set(request_id)


def task_unbind(tokens: tuple[Token, Token]) -> None:
    _task.reset(tokens[0])
    _request_id.reset(tokens[1])


def event_time() -> float:
    """When the current request reached the service (epoch seconds); now, outside a request."""
    return getattr(_request.get(), "started_at", None) or time.time()


def user_id_of(request: Any) -> int | None:
    """The signed-in user's id, without loading a user nobody asked for (no query, no session read)."""
    if request is None:
        return None
    user = request.__dict__.get("user")  # AuthenticationMiddleware's lazy object, or DRF's user
    if user is None:
        return None
    wrapped = getattr(user, "_wrapped", user)
    if wrapped is empty:
        return None
    return wrapped.pk if getattr(wrapped, "is_authenticated", False) else None


# LogRecord's own attributes; anything else on a record came from `extra=` and is logged as a field.
_RECORD_ATTRS = frozenset(RESERVED_ATTRS) | {"message", "asctime"}


class JsonFormatter(_JsonFormatter):
    """One JSON object per line: timestamp, level, logger, event, pid, request/user/task ids, then extras.

    Lean on purpose: it runs for every request (the access line), inside the lookup's
    budget, so it builds the object itself and reuses one encoder rather than going
    through python-json-logger's general path (whose field handling it keeps: the
    same reserved attributes, exceptions as `exc_info`).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._encoder = json.JSONEncoder(default=str)
        self._second = -1
        self._second_text = ""

    def _timestamp(self, created: float, msecs: float) -> str:
        second = int(created)
        if second != self._second:  # one strftime per second, not per line
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._second_text}.{int(msecs):03d}+00:00"

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "timestamp": self._timestamp(record.created, record.msecs),
            "level": record.levelname,
            "logger": record.name,
            # Defence in depth: the log calls name ids only, but a library's message or an
            # exception's text can quote a value (an e-mail in a constraint error).
            "event": _scrub_text(record.getMessage()),
            "pid": record.process,
        }
        request_id = _request_id.get()
        if request_id:
            data["request_id"] = request_id
        user_id = user_id_of(_request.get())
        if user_id is not None:
            data["user_id"] = user_id
        task = _task.get()
        if task is not None:
            data["task_name"], data["task_id"] = task
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRS:
                data[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter.formatException(self, record.exc_info)
        if record.exc_text:
            data["exc_info"] = _scrub_text(record.exc_text)
        if record.stack_info:
            data["stack_info"] = _scrub_text(logging.Formatter.formatStack(self, record.stack_info))
        return self._encoder.encode(data)


# --- Sentry (SENTRY_DSN) ------------------------------------------------------------------------

EMAIL_PATTERN = re.compile(r"[\w.+%'-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}")
# Seven or more digits, allowing the usual separators: phone and account numbers. Not a run
# inside a word or joined by a hyphen or dot (a UUID's digits, a date, an address) so ids stay readable.
PHONE_PATTERN = re.compile(r"(?<![\w.:/-])\+?\d[\d\s()\-]{5,}\d(?![\w.-])")
REDACTED = "[redacted]"
# Request headers that are safe to send; everything else (cookies, tokens) is dropped.
SAFE_HEADERS = frozenset({"user-agent", "content-type", "content-length", "x-request-id", "accept"})


_DIGITS = frozenset("0123456789")


# PostgreSQL's DETAIL lines quote a row's values: a key's (an external ref, an account number), or
# the whole row that failed a check. The constraint and the column names stay: they locate the bug.
# A value may hold a newline (a summary): the match runs over lines, to the key's verdict or the
# row's closing ")." at a line's end.
DB_KEY_PATTERN = re.compile(
    r"(Key \([^)]*\)=\().*?(\) (?:already exists|is not present|is still referenced|conflicts))", re.DOTALL
)
DB_ROW_PATTERN = re.compile(r"(Failing row contains \().*?(\)\.?$)", re.DOTALL | re.MULTILINE)


def _scrub_text(value: str) -> str:
    """E-mail addresses, phone-like digit runs and database rows' values masked; a string with none of
    them is returned as is (cheaply)."""
    if "Key (" in value:
        value = DB_KEY_PATTERN.sub(rf"\g<1>{REDACTED}\g<2>", value)
    if "Failing row contains" in value:
        value = DB_ROW_PATTERN.sub(rf"\g<1>{REDACTED}\g<2>", value)
    if "@" in value:
        value = EMAIL_PATTERN.sub(REDACTED, value)
    if not _DIGITS.isdisjoint(value):
        value = PHONE_PATTERN.sub(REDACTED, value)
    return value


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _scrub_text(value)
    if isinstance(value, dict):
        return {key: _scrub(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(item) for item in value]
    return value


def sentry_scrub(event: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    """Sentry's before_send: keep what locates a bug (types, stack, route, ids), drop personal data.

    Request bodies, cookies, query strings and local variables go entirely (a
    lookup's body is a phone number); the user is reduced to its id; e-mail
    addresses and phone-like digit runs are masked in every remaining string
    (exception messages quote values: "Key (normalized)=(+1212...) already exists").
    """
    request = event.get("request")
    if isinstance(request, dict):
        headers = request.get("headers") or {}
        event["request"] = {
            "method": request.get("method"),
            "url": str(request.get("url", "")).split("?", 1)[0],
            "headers": {k: v for k, v in headers.items() if k.lower() in SAFE_HEADERS},
        }
    user = event.get("user")
    if isinstance(user, dict):
        event["user"] = {"id": user["id"]} if "id" in user else {}
    for exception in (event.get("exception") or {}).get("values") or []:
        for frame in (exception.get("stacktrace") or {}).get("frames") or []:
            frame.pop("vars", None)
    for thread in (event.get("threads") or {}).get("values") or []:
        for frame in (thread.get("stacktrace") or {}).get("frames") or []:
            frame.pop("vars", None)
    return _scrub(event)


def sentry_init(dsn: str, *, environment: str | None = None) -> None:
    """sentry-sdk with Django, Celery and logging, never sending personal data."""
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        send_default_pii=False,
        include_local_variables=False,
        max_request_body_size="never",
        before_send=sentry_scrub,  # type: ignore[arg-type]
        before_breadcrumb=lambda crumb, hint: _scrub(crumb),
    )


# --- OpenTelemetry (OTEL_EXPORTER_OTLP_ENDPOINT) ----------------------------------------------------


def otel_init(service_name: str = "goldfish") -> None:
    """OTLP/HTTP tracing of Django, psycopg, Redis and Celery; the packages are in requirements-otel.txt.

    The exporter reads OTEL_EXPORTER_OTLP_ENDPOINT (and the other standard OTEL_*
    variables) itself. Spans carry statement shapes, not parameters.
    """
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.instrumentation.celery import CeleryInstrumentor
        from opentelemetry.instrumentation.django import DjangoInstrumentor
        from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
        from opentelemetry.instrumentation.redis import RedisInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not installed: "
            "pip install -r requirements-otel.txt"
        ) from exc
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    DjangoInstrumentor().instrument()
    PsycopgInstrumentor().instrument(enable_commenter=False)
    RedisInstrumentor().instrument()
    CeleryInstrumentor().instrument()
