"""Bulk import of customers and their contact history (CONTRACT.md "Bulk import").

A file is read as a stream (CSV or JSON Lines) and applied in batches. Each batch is
one transaction that also moves the job's counters and resume point, so a killed
runner resumes after the last committed batch and never loads a row twice. Within a
batch every read and write is set-based: a handful of queries whatever the batch size.

Matching: a customer row names its customer by `external_ref` (the id in the source
system), else by a verified-by-nature account number. Phones and e-mails never decide
who a row is (households share them); a new identifier already held by someone else is
reported as a possible duplicate, and the duplicates view lists the pair.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import dataclasses
import datetime as dt
import functools
import gc
import hashlib
import io
import json
import logging
import operator
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson
import phonenumbers
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import (
    DatabaseError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    connection,
    models,
    transaction,
)
from django.db.models import Q
from django.db.models.fields.json import KeyTextTransform
from django.db.models.lookups import Exact
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from psycopg.types.json import set_json_dumps
from uuid_utils.compat import uuid4 as fast_uuid4  # uuid.uuid4 reads os.urandom and lets go of the GIL

from crm.identifiers import InvalidIdentifier, normalize
from crm.import_lanes import Lane, LaneOrder, Lanes
from crm.models import (
    CONTACT_IMPORT_AUDIT,
    AccessAudit,
    AuditAction,
    Channel,
    ContactReason,
    Customer,
    Fact,
    Identity,
    IdentityKind,
    ImportJob,
    ImportKind,
    ImportStatus,
    Interaction,
    Outcome,
    Preference,
    Tier,
    time_ordered_uuid,
)
from crm.permissions import AGENT, SUPERVISOR
from crm.queue import enqueue_on_commit, publish
from crm.services import EXTERNAL_SOURCE

logger = logging.getLogger(__name__)

FORMATS = ("csv", "jsonl")
CUSTOMER_FIELDS = ("display_name", "preferred_name", "language", "tier")
IDENTIFIER_KINDS = tuple(IdentityKind.values)
# Choices as plain tuples: an enum's .values is rebuilt on every access (2.7 s per 20,000 rows, profiled).
TIERS = tuple(Tier.values)
CHANNELS = tuple(Channel.values)
OUTCOMES = tuple(Outcome.values)
CUSTOMER_COLUMNS = {"external_ref", *CUSTOMER_FIELDS, *IDENTIFIER_KINDS, "verified"}
INTERACTION_COLUMNS = {
    "external_id",
    "customer_ref",
    *IDENTIFIER_KINDS,
    "channel",
    "started_at",
    "ended_at",
    "reason",
    "summary",
    "outcome",
    "agent",
}
# The reason column of an error file: imported again after fixing, it is ignored.
ERROR_COLUMN = "error"
MULTI_SEPARATOR = ";"
SUMMARY_MAX = 10_000
VALUE_MAX = 500
KEY_MAX = 64


class ImportAbandoned(Exception):
    """Another runner took the job over (this one was presumed dead): stop without committing."""


@dataclass
class Problem:
    line: int
    field: str
    message: str
    # For a line that could not be read as a record: its cells as read, for the error file.
    original: list[str] | None = dataclasses.field(default=None, compare=False)

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "field": self.field, "message": self.message}


@dataclass
class Row:
    """One input record: its first line in the file, its values by lower-case column, the original."""

    line: int
    values: dict[str, Any]
    original: dict[str, Any] | list[str]


@dataclass
class Outcomes:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[tuple[Row, Problem]] = dataclasses.field(default_factory=list)
    problems: list[Problem] = dataclasses.field(default_factory=list)
    warnings: list[Problem] = dataclasses.field(default_factory=list)
    # Customers a contact import added history to (the portable path; PostgreSQL's are in crm_import_touched).
    touched: set[uuid.UUID] = dataclasses.field(default_factory=set)


# --- reading ----------------------------------------------------------------------------------


def format_for(file_name: str, given: str | None = None) -> str:
    if given:
        if given not in FORMATS:
            raise ValueError(f"Unknown format '{given}': use csv or jsonl.")
        return given
    return "jsonl" if file_name.lower().endswith((".jsonl", ".ndjson", ".json")) else "csv"


def count_records(path: Path) -> int:
    """Lines that hold a record (the total for progress; a quoted newline makes it an estimate).

    ValueError when the file is not UTF-8 text throughout: read as it streams, it would load the
    lines before the first bad byte, stop there and call itself done. Checked before anything loads.
    """
    with path.open("rb") as f:
        lines, ends_in_newline = utf8_lines(iter(lambda: f.read(1 << 20), b""))
    return lines + (not ends_in_newline)


def utf8_lines(chunks: Iterable[bytes]) -> tuple[int, bool]:
    """The newlines in a file's chunks and whether it ends with one; ValueError naming the first line
    that is not UTF-8 (a spreadsheet's "CSV" is often Windows-1252)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines, last = 0, b"\n"
    try:
        for chunk in chunks:
            decoder.decode(chunk)
            lines += chunk.count(b"\n")
            last = chunk[-1:] or last
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        # exc.object is the bytes held back from the chunk before (part of one character, no newline) and this chunk
        line = lines + exc.object[: exc.start].count(b"\n") + 1
        raise ValueError(
            f'Not UTF-8 text from line {line} on: save the file as UTF-8 (in a spreadsheet, "CSV UTF-8") '
            "and import it again. Nothing was imported."
        ) from None
    return lines, last == b"\n"


def rows_read(stream: IO[bytes], file_format: str, known: set[str]) -> Iterator[Row | Problem]:
    """The file's records, or a Problem for a line that cannot be read; unknown columns warn once."""
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="" if file_format == "csv" else None)
    if file_format == "csv":
        yield from _csv_rows(text, known)
    else:
        yield from _jsonl_rows(text, known)


def _unknown_columns(columns: list[str], known: set[str]) -> Iterator[Problem]:
    for column in columns:
        if column and column not in known and column != ERROR_COLUMN and not column.startswith(("fact:", "pref:")):
            yield Problem(1, column, "Unknown column, ignored.")


def _csv_rows(text: IO[str], known: set[str]) -> Iterator[Row | Problem]:
    reader = csv.reader(text, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return
    except (csv.Error, UnicodeDecodeError) as exc:
        yield Problem(1, "", f"The header is not valid CSV: {exc}.")
        return
    columns = [name.strip().lower() for name in header]
    yield from _unknown_columns(columns, known)
    previous_end = reader.line_num
    while True:
        start = previous_end + 1
        try:
            record = next(reader)
        except StopIteration:
            return
        except UnicodeDecodeError:
            yield Problem(start, "", "The file is not UTF-8 text from this line on; nothing after it was read.")
            return
        except csv.Error as exc:
            yield Problem(start, "", f"Not valid CSV: {exc}.")
            previous_end = reader.line_num
            continue
        previous_end = reader.line_num
        if not "".join(record).strip():  # only blank cells (any() over them was 7 % of a contact import)
            continue
        if len(record) != len(columns):
            yield Problem(
                start, "", f"Not valid CSV: {len(record)} fields where the header has {len(columns)}.", record
            )
            continue
        yield Row(start, dict(zip(columns, record, strict=True)), record)


def _jsonl_rows(text: IO[str], known: set[str]) -> Iterator[Row | Problem]:
    seen: set[str] = set()
    line = 0
    while True:
        try:
            raw = text.readline()
        except UnicodeDecodeError:
            yield Problem(line + 1, "", "The file is not UTF-8 text from this line on; nothing after it was read.")
            return
        if not raw:
            return
        line += 1
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except ValueError as exc:
            yield Problem(line, "", f"Not valid JSON: {exc}.")
            continue
        if not isinstance(record, dict):
            yield Problem(line, "", "Each line must be a JSON object.")
            continue
        values = {str(k).strip().lower(): v for k, v in record.items()}
        new = [k for k in values if k not in seen]
        seen.update(new)
        yield from (Problem(line, p.field, p.message) for p in _unknown_columns(new, known))
        yield Row(line, values, record)


# --- values ------------------------------------------------------------------------------------


def _text(row: Row, name: str) -> str:
    value = row.values.get(name)
    if type(value) is str:  # every CSV cell: the common case first
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, bool | int | float):
        return str(value)
    if isinstance(value, str):
        return value.strip()
    raise TypeError(name)


def _multi(row: Row, name: str) -> list[str]:
    value = row.values.get(name)
    if value is None or value == "":
        return []
    items = value if isinstance(value, list) else str(value).split(MULTI_SEPARATOR)
    return [str(item).strip() for item in items if str(item).strip()]


def _keyed(row: Row, prefix: str) -> dict[str, str]:
    found = {}
    for name, key in _keyed_columns(tuple(row.values), prefix):
        if (text := _text(row, name)) != "":
            found[key] = text
    return found


@functools.lru_cache(maxsize=256)
def _keyed_columns(columns: tuple[str, ...], prefix: str) -> tuple[tuple[str, str], ...]:
    """(column, key) of the columns named prefix + key: a file's rows share their columns."""
    return tuple((name, name[len(prefix) :].strip()) for name in columns if name.startswith(prefix))


def _when(value: str) -> dt.datetime | None:
    """ISO 8601; a date alone is midnight UTC, a time without offset is UTC."""
    parsed: dt.datetime | None
    try:
        parsed = dt.datetime.fromisoformat(value)  # C-fast for the usual forms (Python 3.11 reads "Z")
    except ValueError:
        parsed = parse_datetime(value)
    if parsed is None:
        day = parse_date(value)
        if day is None:
            return None
        parsed = dt.datetime.combine(day, dt.time())
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


# --- customers ---------------------------------------------------------------------------------


@dataclass
class CustomerRecord:
    row: Row
    external_ref: str | None
    fields: dict[str, str]
    identities: list[tuple[str, str, str]]  # (kind, value as given, normalized)
    verified: set[tuple[str, str]]  # (kind, normalized)
    facts: dict[str, str]
    prefs: dict[str, str]
    digest: bytes | None = None  # row_digest: stored on the customer the row is applied to


def customer_record(row: Row, digest: bytes | None = None) -> CustomerRecord | list[Problem]:
    problems: list[Problem] = []

    def bad(name: str, message: str) -> None:
        problems.append(Problem(row.line, name, message))

    try:
        ref = _text(row, "external_ref")[:129] or None
        fields = {name: text for name in CUSTOMER_FIELDS if (text := _text(row, name))}
    except TypeError as exc:
        return [Problem(row.line, str(exc), "Must be a single value.")]
    if ref and len(ref) > 128:
        bad("external_ref", "At most 128 characters.")
    if "tier" in fields:
        fields["tier"] = fields["tier"].lower()
        if fields["tier"] not in TIERS:
            bad("tier", f"'{fields['tier']}' is not a tier ({', '.join(TIERS)}).")
    for name, limit in (("display_name", 200), ("preferred_name", 100), ("language", 16)):
        if len(fields.get(name, "")) > limit:
            bad(name, f"At most {limit} characters.")
    identities = []
    for kind in IDENTIFIER_KINDS:
        for value in _multi(row, kind):
            try:
                identities.append((kind, value, normalize(kind, value)))
            except InvalidIdentifier as exc:
                bad(kind, exc.message)
    verified = set()
    for value in _multi(row, "verified"):
        matches = {(kind, norm) for kind, _, norm in identities if _same(kind, value, norm)}
        if not matches:
            bad("verified", f"'{value}' is not one of this row's phone, email or account values.")
        verified |= matches
    facts, prefs = _keyed(row, "fact:"), _keyed(row, "pref:")
    for prefix, values in (("fact:", facts), ("pref:", prefs)):
        for key, value in values.items():
            if not key or len(key) > KEY_MAX or "\x00" in key:
                bad(prefix + key, f"A key of 1-{KEY_MAX} characters.")
            if len(value) > VALUE_MAX:
                bad(prefix + key, f"At most {VALUE_MAX} characters.")
    if not ref and not any(kind == IdentityKind.ACCOUNT for kind, _, _ in identities):
        bad(
            "external_ref",
            "Give an external_ref or an account, so that importing the row again updates the same customer.",
        )
    if problems:
        return problems
    return CustomerRecord(row, ref, fields, identities, verified, facts, prefs, digest)


# --- a customer file imported again ------------------------------------------------------------
#
# A row naming its customer by external_ref, identical to the last import row applied to that
# customer, is unchanged. Identical means the same values in the same columns (and the same rules
# to read them: digest_key); any other difference (a value, a column added, a phone written
# another way) sends the row down the full path, which compares it with what is on file. What
# agents recorded since the row was last imported stands until the source system changes the
# row: the file does not overwrite it. The reading thread decides most rows before validating
# them (rows_unchanged), so a file imported again costs little more than reading it; a row it
# cannot decide (an earlier row may change the customer first) is decided by its batch, where the
# customer is current (customers_apply). Either way the outcome is the same whatever the batch
# size or the number of connections.


DIGEST_RULES = "1"  # raise it when what a row means changes (a column, a check): every row is compared again


def digest_key() -> bytes:
    """Digests are keyed by the rules a row is read with (the default phone region, phonenumbers'
    data), so rows read under other rules are compared in full once, and by SECRET_KEY, so a copy
    of the database cannot confirm a guessed row."""
    rules = f"{DIGEST_RULES}|{settings.CRM_DEFAULT_PHONE_REGION}|{phonenumbers.__version__}|{settings.SECRET_KEY}"
    return hashlib.blake2b(rules.encode(), digest_size=32).digest()


def row_digest(row: Row, key: bytes) -> bytes:
    """What a row says, in 16 bytes: every column and its value as read."""
    if isinstance(row.original, list):  # a CSV record: strings only
        text = orjson.dumps(row.values, option=orjson.OPT_SORT_KEYS)
    else:  # a JSON line: json keeps NaN and integers past 64 bits apart (orjson writes NaN as null)
        text = json.dumps(row.values, sort_keys=True).encode()
    return hashlib.blake2b(text, digest_size=16, key=key).digest()


def rows_unchanged(
    batch: list[Row], in_flight: tuple[list[frozenset[Any]], bool]
) -> tuple[list[tuple[Row, bytes | None]], int, bool]:
    """The batch's rows to apply, each with its digest; how many are unchanged; whether one is opaque.

    A row is unchanged here when its external_ref names a live customer whose stored digest is
    the row's own, unless an earlier row may still change that customer first: a row of this
    batch or of a batch in flight (`in_flight`, read before the digests, so a batch that commits
    in between is named there) with the same external_ref, or an opaque one. Opaque rows are
    those that reach a customer other than by their own external_ref: without one (by account),
    or naming a merged customer (applied to the one it was merged into). Those rows go to their
    batch, which compares the digest again once the earlier rows are applied.
    """
    flight_keys, opaque = in_flight
    refs = []
    for row in batch:
        try:
            refs.append(_text(row, "external_ref"))
        except TypeError:
            refs.append("")  # refused by customer_record
    on_file = _digests_on_file({ref for ref in refs if ref})
    key = digest_key()
    kept: list[tuple[Row, bytes | None]] = []
    applied: set[str] = set()
    unchanged, batch_opaque = 0, False
    for row, ref in zip(batch, refs, strict=True):
        digest = row_digest(row, key)
        held = on_file.get(ref) if ref else None
        if not ref or (held is not None and held[1]):
            opaque = batch_opaque = True
        elif (
            held is not None
            and held[0] == digest
            and not opaque
            and ref not in applied
            and not any(("ref", ref) in keys for keys in flight_keys)
        ):
            unchanged += 1
            continue
        else:
            applied.add(ref)
        kept.append((row, digest))
    return kept, unchanged, batch_opaque


def _digests_on_file(refs: set[str]) -> dict[str, tuple[bytes | None, bool]]:
    """external_ref -> (the stored digest, merged?) for the live customers among `refs`."""
    if not refs:
        return {}
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # the refs as one JSON text: an array parameter is dumped in Python
            cursor.execute(DIGESTS_ON_FILE, [orjson.dumps(list(refs)).decode()])
            found = cursor.fetchall()
    else:
        found = Customer.objects.filter(external_ref__any=refs, erased_at__isnull=True).values_list(
            "external_ref", "import_digest", "merged_into_id"
        )
    return {
        str(ref): (bytes(digest) if digest is not None else None, merged_into is not None)
        for ref, digest, merged_into in found
    }


DIGESTS_ON_FILE = """
    SELECT external_ref, import_digest, merged_into_id FROM crm_customer
    WHERE external_ref = ANY(ARRAY(SELECT jsonb_array_elements_text(%s::jsonb))) AND erased_at IS NULL
"""


def _customers_write(customers: dict[uuid.UUID, _Known], now: dt.datetime) -> None:
    """Write the changed customers' columns. On PostgreSQL one UPDATE from arrays: Django's
    bulk_update builds a CASE per column over the whole batch, 1 ms of Python a row (measured:
    100,000 changed rows took 129 s of CPU)."""
    if not customers:
        return
    columns = ("external_ref", *CUSTOMER_FIELDS)
    if connection.vendor != "postgresql":
        Customer.objects.bulk_update(
            [Customer(pk=pk, updated_at=now, import_digest=c.digest, **c.fields) for pk, c in customers.items()],
            [*columns, "import_digest", "updated_at"],
        )
        return
    rows = [
        {"id": pk, **{name: c.fields[name] for name in columns}, "digest": c.digest.hex() if c.digest else None}
        for pk, c in customers.items()
    ]  # one JSON text (orjson, in C): psycopg dumps array parameters element by element in Python
    with connection.cursor() as cursor:
        cursor.execute(CUSTOMERS_WRITE, [now, orjson.dumps(rows).decode()])


CUSTOMERS_WRITE = """
    UPDATE crm_customer c
    SET external_ref = v.external_ref, display_name = v.display_name, preferred_name = v.preferred_name,
        language = v.language, tier = v.tier, import_digest = decode(v.digest, 'hex'), updated_at = %s
    FROM json_to_recordset(%s::json)
        AS v(id uuid, external_ref text, display_name text, preferred_name text, language text, tier text, digest text)
    WHERE c.id = v.id
"""


def _digests_write(digests: dict[uuid.UUID, bytes | None]) -> None:
    """Store the digests of rows applied unchanged (their customers' other columns stay as they are)."""
    if not digests:
        return
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE crm_customer c SET import_digest = decode(v.digest, 'hex') "
                "FROM json_to_recordset(%s::json) AS v(id uuid, digest text) WHERE c.id = v.id",
                [orjson.dumps([{"id": pk, "digest": d.hex() if d else None} for pk, d in digests.items()]).decode()],
            )
        return
    Customer.objects.bulk_update([Customer(pk=pk, import_digest=d) for pk, d in digests.items()], ["import_digest"])


def _same(kind: str, value: str, norm: str) -> bool:
    try:
        return normalize(kind, value) == norm
    except InvalidIdentifier:
        return False


@dataclass(slots=True)
class _Known:
    """What a batch needs to know about one existing (or just created) customer, as plain values.

    Tuples and dicts, not model instances: building instances of every row already on file
    cost 0.3 s per 10,000 customers imported again (profiled).
    """

    fields: dict[str, Any]  # external_ref and CUSTOMER_FIELDS
    created: bool
    identities: dict[tuple[str, str], _HeldIdentity]  # (kind, normalized)
    facts: dict[str, tuple[int | None, str]]  # key -> (pk, or None when this batch adds it; value)
    prefs: dict[str, tuple[int | None, str]]
    digest: bytes | None = None  # the last import row applied to it (row_digest)


@dataclass(slots=True)
class _HeldIdentity:
    pk: int | None  # None: added by this batch
    verified: bool


# The columns the import fills; the rows are tuples in this order (the rest take their defaults).
CUSTOMER_COPY_COLUMNS = (
    "id", "external_ref", *CUSTOMER_FIELDS, "import_digest", "timezone", "created_at", "updated_at",
)  # fmt: skip
IDENTITY_COPY_COLUMNS = ("customer_id", "kind", "value", "normalized", "verified_at", "source", "created_at")
VERIFIED_AT = IDENTITY_COPY_COLUMNS.index("verified_at")
FACT_COPY_COLUMNS = (
    "customer_id", "key", "value", "is_current", "recorded_at", "recorded_by_id", "import_ref", "channel",
)  # fmt: skip
PREFERENCE_COPY_COLUMNS = FACT_COPY_COLUMNS[:-1]


def customers_apply(
    records: list[CustomerRecord],
    *,
    actor,
    job: ImportJob,
    out: Outcomes,
    settle: Callable[[set[uuid.UUID]], bool] | None = None,
) -> None:
    """Create or update the batch's customers in a few set-based statements.

    `settle` (crm.import_lanes) is told which customers on file the batch will write before
    it writes; True means another batch just wrote one of them, so they are resolved again.
    """
    now = timezone.now()
    refs = {r.external_ref for r in records if r.external_ref}
    accounts = {norm for r in records for kind, _, norm in r.identities if kind == IdentityKind.ACCOUNT}
    while True:
        by_ref: dict[str, uuid.UUID] = {}
        for pk, ref, merged_into in Customer.objects.filter(external_ref__any=refs, erased_at__isnull=True).values_list(
            "pk", "external_ref", "merged_into_id"
        ):
            by_ref[str(ref)] = merged_into or pk
        account_owner = dict(
            Identity.objects.filter(kind=IdentityKind.ACCOUNT, normalized__any=accounts).values_list(
                "normalized", "customer_id"
            )
        )
        targets = {*by_ref.values(), *account_owner.values()}
        if settle is None or not settle(targets):
            break
    known = _known_load(targets)
    holders = _holders(_maybe_new_identifiers(records, by_ref, known))
    ref_of = {pk: c.fields["external_ref"] for pk, c in known.items()}

    changed_customers: set[uuid.UUID] = set()
    redigested: set[uuid.UUID] = set()  # customers on file given the digest of the row applied now
    new_identities: dict[tuple[uuid.UUID, str, str], list[Any]] = {}
    verify_ids: set[int] = set()
    demote_facts: set[int] = set()
    new_facts: dict[tuple[uuid.UUID, str], tuple] = {}
    demote_prefs: set[int] = set()
    new_prefs: dict[tuple[uuid.UUID, str], tuple] = {}
    audits: list[tuple] = []
    duplicates: list[tuple[int, str, set[uuid.UUID]]] = []  # line, kind, the other holders
    actor_id = actor.pk if actor is not None else None
    source = f"{job.file_name}:"
    detail = json.dumps({"import": str(job.pk)})[:-1] + ', "line": '  # + line + "}": json.dumps per row was 8 us

    for record in records:
        line = record.row.line
        row_accounts = [norm for kind, _, norm in record.identities if kind == IdentityKind.ACCOUNT]
        target = by_ref.get(record.external_ref) if record.external_ref else None
        if target is not None and record.digest is not None and known[target].digest == record.digest:
            out.unchanged += 1  # as last applied to it, which the reader could not tell (rows_unchanged)
            continue
        owners = {account_owner[a] for a in row_accounts if a in account_owner}
        if target is not None and owners - {target}:
            out.rejected.append(
                (record.row, Problem(line, "account", "This account already belongs to another customer."))
            )
            continue
        if target is None and owners:
            if len(owners) > 1:
                out.rejected.append(
                    (record.row, Problem(line, "account", "These accounts belong to different customers."))
                )
                continue
            owner = next(iter(owners))
            if record.external_ref and ref_of.get(owner) not in (None, record.external_ref):
                out.rejected.append(
                    (record.row, Problem(line, "account", "This account already belongs to another customer."))
                )
                continue
            target = owner
        if target is None and not record.fields.get("display_name"):
            out.rejected.append((record.row, Problem(line, "display_name", "A new customer needs a display_name.")))
            continue

        changed = False
        is_new = target is None
        if target is None:
            target = fast_uuid4()
            fields = {
                "external_ref": record.external_ref,
                "display_name": "",
                "preferred_name": "",
                "language": "en",
                "tier": Tier.STANDARD.value,
                **record.fields,
            }
            entry = known[target] = _Known(fields, True, {}, {}, {}, record.digest)
            changed = True
        else:
            entry = known[target]
            fields = entry.fields
            for name, value in record.fields.items():
                if fields[name] != value:
                    fields[name] = value
                    changed = True
            if record.external_ref and fields["external_ref"] is None:
                fields["external_ref"] = record.external_ref
                changed = True
            if changed and not entry.created:
                changed_customers.add(target)
        if record.external_ref:
            by_ref[record.external_ref] = target
        ref_of[target] = fields["external_ref"]
        for account in row_accounts:
            account_owner[account] = target

        for kind, value, norm in record.identities:
            held = (kind, norm)
            verified = held in record.verified
            identity = entry.identities.get(held)
            if identity is None:
                new_identities[(target, kind, norm)] = [
                    target, kind, value, norm, now if verified else None, "import", now,
                ]  # fmt: skip
                entry.identities[held] = _HeldIdentity(None, verified)
                changed = True
                others = holders.get(held, set()) - {target}
                if others:
                    duplicates.append((line, kind, others))
            elif verified and not identity.verified:
                identity.verified = True
                if identity.pk is not None:
                    verify_ids.add(identity.pk)
                else:
                    new_identities[(target, kind, norm)][VERIFIED_AT] = now
                changed = True

        history = (now, actor_id, f"{source}{line}")
        changed |= _keyed_history_append(target, record.facts, entry.facts, demote_facts, new_facts, (*history, ""))
        changed |= _keyed_history_append(target, record.prefs, entry.prefs, demote_prefs, new_prefs, history)

        if record.digest is not None and entry.digest != record.digest:
            entry.digest = record.digest
            if not entry.created:
                redigested.add(target)
        if is_new:
            out.created += 1
        elif changed:
            out.updated += 1
        else:
            out.unchanged += 1
        if changed:
            action = (AuditAction.CREATE if is_new else AuditAction.UPDATE).value
            audits.append((now, actor_id, action, target, f"{detail}{line}}}"))

    out.warnings.extend(_possible_duplicates(duplicates, ref_of))
    rows_insert(
        Customer,
        CUSTOMER_COPY_COLUMNS,
        [
            (pk, *(c.fields[name] for name in CUSTOMER_COPY_COLUMNS[1:-4]), c.digest, "", now, now)
            for pk, c in known.items()
            if c.created
        ],
    )
    _customers_write({pk: known[pk] for pk in changed_customers}, now)
    _digests_write({pk: known[pk].digest for pk in redigested - changed_customers})
    rows_insert(Identity, IDENTITY_COPY_COLUMNS, [tuple(row) for row in new_identities.values()])
    if verify_ids:
        Identity.objects.filter(pk__any=verify_ids).update(verified_at=now)
    if demote_facts:
        Fact.objects.filter(pk__any=demote_facts).update(is_current=False)
    rows_insert(Fact, FACT_COPY_COLUMNS, list(new_facts.values()))
    if demote_prefs:
        Preference.objects.filter(pk__any=demote_prefs).update(is_current=False)
    rows_insert(Preference, PREFERENCE_COPY_COLUMNS, list(new_prefs.values()))
    rows_insert(AccessAudit, AUDIT_COPY_COLUMNS, audits)


def _possible_duplicates(
    duplicates: list[tuple[int, str, set[uuid.UUID]]], ref_of: dict[uuid.UUID, str | None]
) -> list[Problem]:
    """The warnings for identifiers other customers hold too, naming them as the supervisor's files do:
    by external_ref (their id when they have none), read in one query for those the batch did not load."""
    if not duplicates:
        return []
    missing = {pk for _, _, others in duplicates for pk in others} - ref_of.keys()
    names = {pk: ref or str(pk) for pk, ref in ref_of.items()}
    if missing:
        for pk, ref in Customer.objects.filter(pk__any=missing).values_list("pk", "external_ref"):
            names[pk] = ref or str(pk)
    return [
        Problem(line, kind, "Possible duplicate of " + ", ".join(sorted(names.get(o, str(o)) for o in others)) + ".")
        for line, kind, others in duplicates
    ]


# The columns an imported interaction fills; the rest take their database defaults (db_default) or
# stay NULL. Rows are tuples in this order: no model instances on the 10-million-row path.
INTERACTION_COPY_COLUMNS = (
    "id", "customer_id", "channel", "started_at", "ended_at", "agent_id", "reason_id", "summary", "outcome",
    "identifiers", "verified", "ivr", "source", "external_id", "created_at",
)  # fmt: skip


AUDIT_COPY_COLUMNS = ("at", "actor_id", "action", "customer_id", "detail")


def rows_insert(model: type[models.Model], columns: tuple[str, ...], rows: list[tuple]) -> None:
    """Insert rows given as tuples of column values: COPY on PostgreSQL, the ORM elsewhere."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        json_columns = {f.column for f in model._meta.concrete_fields if isinstance(f, models.JSONField)}
        model._default_manager.bulk_create(
            model(**{c: json.loads(v) if c in json_columns else v for c, v in zip(columns, row, strict=True)})
            for row in rows
        )
        return
    fields = {f.column: f for f in model._meta.concrete_fields}
    types = [re.sub(r"\(.*\)", "", fields[c].db_type(connection) or "") for c in columns]  # varchar(128): varchar
    copy_in(model._meta.db_table, columns, types, rows)


def copy_in(table: str, columns: tuple[str, ...], types: list[str], rows: list[tuple]) -> None:
    """COPY rows into a PostgreSQL table in the binary format, each value typed as its column.

    Binary, not text: psycopg writes a row in a quarter of the time (UUIDs and timestamps are
    not spelt out) and the server does not parse them back. JSON columns are given as JSON text.
    """
    names = ", ".join(connection.ops.quote_name(c) for c in columns)
    with connection.cursor() as cursor:
        set_json_dumps(_as_given, context=cursor.cursor)
        with cursor.copy(f"COPY {connection.ops.quote_name(table)} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row(row)


def _as_given(text: str) -> str:
    return text


def _maybe_new_identifiers(
    records: list[CustomerRecord], by_ref: dict[str, uuid.UUID], known: dict[uuid.UUID, _Known]
) -> set[tuple[str, str]]:
    """The phones and e-mails that may be new to their customer: only those can be possible duplicates.

    A row whose external_ref names a customer on file applies to that customer or is refused,
    so an identifier that customer already holds is never new: a file imported again asks
    nothing (the holders query was a tenth of its time).
    """
    wanted: set[tuple[str, str]] = set()
    for record in records:
        target = by_ref.get(record.external_ref) if record.external_ref else None
        held = known[target].identities if target in known else {}
        wanted.update(
            (kind, norm)
            for kind, _, norm in record.identities
            if kind != IdentityKind.ACCOUNT and (kind, norm) not in held
        )
    return wanted


def _holders(wanted: set[tuple[str, str]]) -> dict[tuple[str, str], set[uuid.UUID]]:
    """The live customers holding each (kind, normalized) identifier: one query on identity_lookup_idx.

    `kind = k AND normalized = ANY(...)` for each kind, not an OR of pairs (which PostgreSQL plans
    as thousands of index probes re-evaluated per row: 10 s for a batch of 2,000), nor one
    `kind = ANY(...) AND normalized = ANY(...)` (PostgreSQL 15 probes every kind with every
    value: twice the probes for phones and e-mails), and without a join to the customer table,
    whose statistics a big import leaves stale (a nested loop over every customer: 57 s for
    one batch before the first ANALYZE).
    """
    holders: dict[tuple[str, str], set[uuid.UUID]] = {}
    if not wanted:
        return holders
    by_kind: dict[str, set[str]] = {}
    for kind, norm in wanted:
        by_kind.setdefault(kind, set()).add(norm)
    # Identities belong to live customers only (merges move them, erasure deletes them): no join needed.
    rows = Identity.objects.filter(
        functools.reduce(operator.or_, (Q(kind=kind, normalized__any=norms) for kind, norms in by_kind.items()))
    ).values_list("kind", "normalized", "customer_id")
    for kind, norm, cid in rows:
        if (kind, norm) in wanted:
            holders.setdefault((kind, norm), set()).add(cid)
    return holders


def _keyed_history_append(
    customer_id: uuid.UUID,
    values: dict[str, str],
    current: dict[str, tuple[int | None, str]],
    demote: set[int],
    new: dict[tuple[uuid.UUID, str], tuple],
    history: tuple,
) -> bool:
    """Facts and preferences: each changed value becomes the current one, and the one it replaces is
    demoted (or dropped, when this batch had only just added it). True when anything changed.

    New rows are tuples in FACT_COPY_COLUMNS / PREFERENCE_COPY_COLUMNS order; `history` is the
    tail after customer, key, value and is_current.
    """
    changed = False
    for key, value in values.items():
        held = current.get(key)
        if held is not None and held[1] == value:
            continue
        if held is not None and held[0] is not None:
            demote.add(held[0])
        new[(customer_id, key)] = (customer_id, key, value, True, *history)  # replaces this batch's own
        current[key] = (None, value)
        changed = True
    return changed


def _known_load(targets: set[uuid.UUID]) -> dict[uuid.UUID, _Known]:
    """Existing customers with their identifiers and current facts and preferences: four queries, as tuples."""
    if not targets:
        return {}
    known = {
        pk: _Known(
            {"external_ref": ref, **dict(zip(CUSTOMER_FIELDS, values, strict=True))},
            False,
            {},
            {},
            {},
            bytes(digest) if digest is not None else None,
        )
        for pk, ref, digest, *values in Customer.objects.filter(pk__any=targets).values_list(
            "pk", "external_ref", "import_digest", *CUSTOMER_FIELDS
        )
    }
    for cid, kind, norm, pk, verified_at in Identity.objects.filter(customer_id__any=targets).values_list(
        "customer_id", "kind", "normalized", "pk", "verified_at"
    ):
        known[cid].identities[(kind, norm)] = _HeldIdentity(pk, verified_at is not None)
    for cid, key, pk, value in Fact.objects.filter(customer_id__any=targets, is_current=True).values_list(
        "customer_id", "key", "pk", "value"
    ):
        known[cid].facts[key] = (pk, value)
    for cid, key, pk, value in Preference.objects.filter(customer_id__any=targets, is_current=True).values_list(
        "customer_id", "key", "pk", "value"
    ):
        known[cid].prefs[key] = (pk, value)
    return known


# --- interactions ------------------------------------------------------------------------------


@dataclass
class InteractionRecord:
    row: Row
    external_id: str
    customer_ref: str | None
    identifiers: dict[str, str]
    channel: str
    started_at: dt.datetime
    ended_at: dt.datetime | None
    reason: str | None
    summary: str
    outcome: str
    agent: str | None


class _Lookups:
    """What a run of a contact import reads once: reason codes and staff usernames."""

    def __init__(self) -> None:
        self.reasons = dict(ContactReason.objects.values_list("code", "pk"))
        self._staff: dict[str, int | None] = {}
        # Whether the next batch asks first which of its external_ids are on file (PostgreSQL): only
        # while the batches find some. Lines on file are unchanged either way; staged, they cost the
        # insert a conflict check, and asking cost a first import a query per batch (5 % of its
        # PostgreSQL time, measured).
        self.ask_first = True
        self.batch_start()

    def batch_start(self) -> None:
        """A start after `future` is in the future (a source clock a little ahead is not); once a batch,
        not once a row (4 us a row)."""
        self.future = timezone.now() + dt.timedelta(minutes=5)

    def staff(self, usernames: set[str]) -> dict[str, int | None]:
        missing = usernames - self._staff.keys()
        if missing:
            found = dict(
                get_user_model()
                .objects.filter(username__in=missing, is_active=True)
                .filter(Q(groups__name__in=[AGENT, SUPERVISOR]) | Q(is_superuser=True))
                .values_list("username", "pk")
                .distinct()
            )
            self._staff.update({name: found.get(name) for name in missing})
        return self._staff


def interaction_record(row: Row, lookups: _Lookups) -> InteractionRecord | list[Problem]:
    problems: list[Problem] = []

    def bad(name: str, message: str) -> None:
        problems.append(Problem(row.line, name, message))

    try:
        values = {
            name: _text(row, name)
            for name in (
                "external_id",
                "customer_ref",
                "channel",
                "started_at",
                "ended_at",
                "reason",
                "summary",
                "outcome",
                "agent",
            )
        }
    except TypeError as exc:
        return [Problem(row.line, str(exc), "Must be a single value.")]
    if not values["external_id"]:
        bad("external_id", "Required: it makes importing the file again change nothing.")
    elif len(values["external_id"]) > 128:
        bad("external_id", "At most 128 characters.")
    identifiers: dict[str, str] = {}
    for kind in IDENTIFIER_KINDS:
        given = _multi(row, kind)
        if given:
            try:
                identifiers[kind] = normalize(kind, given[0])
            except InvalidIdentifier as exc:
                bad(kind, exc.message)
    if not values["customer_ref"] and not identifiers and not problems:
        bad("customer_ref", "Give customer_ref or a phone, email or account of the customer.")
    channel = (values["channel"] or Channel.PHONE).lower()
    if channel not in CHANNELS:
        bad("channel", f"'{channel}' is not a channel ({', '.join(CHANNELS)}).")
    started_at = _when(values["started_at"]) if values["started_at"] else None
    if not values["started_at"]:
        bad("started_at", "Required (ISO 8601, e.g. 2024-03-12T09:30:00Z).")
    elif started_at is None:
        bad("started_at", f"'{values['started_at']}' is not a date and time (ISO 8601, e.g. 2024-03-12T09:30:00Z).")
    elif started_at > lookups.future:
        bad("started_at", "This date is in the future.")
    ended_at = _when(values["ended_at"]) if values["ended_at"] else None
    if values["ended_at"] and ended_at is None:
        bad("ended_at", f"'{values['ended_at']}' is not a date and time (ISO 8601).")
    elif ended_at and started_at and ended_at < started_at:
        bad("ended_at", "Ends before it started.")
    if values["reason"] and values["reason"] not in lookups.reasons:
        bad("reason", f"Unknown reason code '{values['reason']}' (GET /api/v1/reasons lists them).")
    outcome = values["outcome"].lower()
    if outcome and outcome not in OUTCOMES:
        bad("outcome", f"'{outcome}' is not an outcome ({', '.join(OUTCOMES)}).")
    if len(values["summary"]) > SUMMARY_MAX:
        bad("summary", f"At most {SUMMARY_MAX:,} characters.")
    if problems:
        return problems
    assert started_at is not None
    return InteractionRecord(
        row,
        values["external_id"],
        values["customer_ref"] or None,
        identifiers,
        channel,
        started_at,
        ended_at,
        values["reason"] or None,
        values["summary"],
        outcome,
        values["agent"] or None,
    )


def interactions_apply(
    records: list[InteractionRecord], *, actor, job: ImportJob, out: Outcomes, lookups: _Lookups
) -> None:
    """Add the batch's contacts to their customers' history; an external_id already present is unchanged."""
    if connection.vendor == "postgresql":
        _interactions_staged(records, actor=actor, job=job, out=out, lookups=lookups)
    else:
        _interactions_matched(records, actor=actor, job=job, out=out, lookups=lookups)


def _interaction_columns(record: InteractionRecord, staff: dict[str, int | None], lookups: _Lookups) -> tuple:
    """channel .. identifiers of an interaction row, in crm_interaction's order (both paths write them)."""
    return (
        record.channel,
        record.started_at,
        record.ended_at,
        staff.get(record.agent) if record.agent else None,
        lookups.reasons.get(record.reason) if record.reason else None,
        record.summary,
        record.outcome,
        json.dumps(record.identifiers) if record.identifiers else "{}",
    )


def _interactions_matched(
    records: list[InteractionRecord], *, actor, job: ImportJob, out: Outcomes, lookups: _Lookups
) -> None:
    """The portable path (SQLite): match in Python against the rows read back, insert the new ones."""
    ids = {r.external_id for r in records}
    present = set(
        Interaction.objects.filter(source=EXTERNAL_SOURCE, external_id__any=ids).values_list("external_id", flat=True)
    )
    staff = lookups.staff({r.agent for r in records if r.agent})
    refs = {r.customer_ref for r in records if r.customer_ref}
    by_ref = {
        ref: merged_into or pk
        for pk, ref, merged_into in Customer.objects.filter(external_ref__any=refs, erased_at__isnull=True).values_list(
            "pk", "external_ref", "merged_into_id"
        )
    }
    wanted = {(kind, norm) for r in records if not r.customer_ref for kind, norm in r.identifiers.items()}
    holders = _holders(wanted)

    new: list[tuple] = []
    now = timezone.now()
    for record in records:
        line = record.row.line
        if record.external_id in present:
            out.unchanged += 1
            continue
        if record.agent and staff.get(record.agent) is None:
            out.rejected.append(
                (record.row, Problem(line, "agent", f"No agent or supervisor with the username '{record.agent}'."))
            )
            continue
        if record.customer_ref:
            customer_id = by_ref.get(record.customer_ref)
            if customer_id is None:
                out.rejected.append(
                    (
                        record.row,
                        Problem(line, "customer_ref", f"No customer with external_ref '{record.customer_ref}'."),
                    )
                )
                continue
        else:
            customer_id, problem = _customer_by_identifiers(record, holders)
            if problem:
                out.rejected.append((record.row, problem))
                continue
        new.append(
            (
                time_ordered_uuid(),
                customer_id,
                *_interaction_columns(record, staff, lookups),
                "[]",
                "{}",
                EXTERNAL_SOURCE,
                record.external_id,
                now,
            )
        )
        present.add(record.external_id)
        out.touched.add(customer_id)
        out.created += 1
    rows_insert(Interaction, INTERACTION_COPY_COLUMNS, new)


# PostgreSQL: the batch goes into a temporary table by COPY, and set-based statements match it and
# insert it. ON COMMIT DELETE ROWS empties it with each batch's transaction (and a dry run's
# savepoint rollback); IF NOT EXISTS makes it once per session, again after a failed batch. Each
# batch still deletes what is there first: under an outer transaction (tests) there is no commit.
# No ANALYZE of it: the planner sizes an unanalysed table by its pages, close enough for these
# joins, and the ANALYZE was 1.5 us a row (measured).
STAGE = "crm_import_interaction_stage"
STAGE_COLUMNS = (
    "id", "line", "external_id", "customer_ref", "customer_id", "problem_field", "problem_message",
    "channel", "started_at", "ended_at", "agent_id", "reason_id", "summary", "outcome", "identifiers",
)  # fmt: skip
STAGE_TYPES = [
    "uuid", "integer", "text", "text", "uuid", "text", "text",
    "text", "timestamptz", "timestamptz", "integer", "bigint", "text", "text", "jsonb",
]  # fmt: skip
STAGE_CREATE = """
    CREATE TEMPORARY TABLE IF NOT EXISTS crm_import_interaction_stage (
        id uuid NOT NULL, line integer NOT NULL, external_id text NOT NULL, customer_ref text, customer_id uuid,
        problem_field text, problem_message text, channel text NOT NULL, started_at timestamptz NOT NULL,
        ended_at timestamptz, agent_id integer, reason_id bigint, summary text NOT NULL, outcome text NOT NULL,
        identifiers jsonb NOT NULL
    ) ON COMMIT DELETE ROWS;
    CREATE TEMPORARY TABLE IF NOT EXISTS crm_import_touched (customer_id uuid NOT NULL) ON COMMIT DELETE ROWS
"""
# One statement does the rest (each statement a round trip, and updating every staged row with
# its customer cost more than the join: 3.8 us a row). `staged` gives each line its customer: by
# external_ref (a merged customer's survivor, as in the portable path), or the one Python matched
# by identifiers. `new` inserts the first loadable line of each external_id not yet on file, and
# `touched` notes their customers for the audit (contacts_audit, at the batch's turn). The lines
# refused: a problem, or no customer, unless the external_id is already present (on file, or an
# earlier line of the batch that loads), which makes the line unchanged instead. The statement's
# reads see the table as it was before its insert, as the portable path's do. The row without a
# line carries the number inserted.
#
# The keys are made in Python (UUIDv7, 1.2 us a row there) and staged: crm_uuid7() cost PostgreSQL
# 2.5 us a row, and PostgreSQL is the import's bottleneck. {conflict} is the arbiter, ON CONFLICT
# ... DO NOTHING, for batches that asked first which of their external_ids are on file or found
# one there; a first import's batches insert without it (its speculative insertion cost 3.8 us a
# row, measured) and, should one meet a line on file after all, try again with it (_stage_apply).
STAGE_APPLY = """
    WITH staged AS MATERIALIZED (
        SELECT s.id, s.line, s.external_id, s.problem_field, s.problem_message,
               COALESCE(s.customer_id, c.merged_into_id, c.id) AS customer_id,
               s.channel, s.started_at, s.ended_at, s.agent_id, s.reason_id, s.summary, s.outcome, s.identifiers
        FROM crm_import_interaction_stage s
        LEFT JOIN crm_customer c ON c.external_ref = s.customer_ref AND c.erased_at IS NULL
    ), new AS (
        INSERT INTO crm_interaction (
            id, customer_id, channel, started_at, ended_at, agent_id, reason_id, summary, outcome,
            identifiers, verified, ivr, source, external_id, created_at
        )
        SELECT id, customer_id, channel, started_at, ended_at, agent_id, reason_id, summary,
               outcome, identifiers, '[]', '{{}}', %(source)s, external_id, %(now)s
        FROM (
            SELECT DISTINCT ON (external_id) * FROM staged
            WHERE problem_field IS NULL AND customer_id IS NOT NULL
            ORDER BY external_id, line
        ) first
        {conflict}
        RETURNING customer_id
    ), touched AS (
        INSERT INTO crm_import_touched (customer_id) SELECT DISTINCT customer_id FROM new
    )
    (
        SELECT s.line, s.problem_field, s.problem_message FROM staged s
        WHERE (s.problem_field IS NOT NULL OR s.customer_id IS NULL)
          AND NOT EXISTS (
              SELECT 1 FROM crm_interaction i WHERE i.source = %(source)s AND i.external_id = s.external_id
          )
          AND NOT EXISTS (
              SELECT 1 FROM staged e
              WHERE e.external_id = s.external_id AND e.line < s.line
                AND e.problem_field IS NULL AND e.customer_id IS NOT NULL
          )
        ORDER BY s.line
    )
    UNION ALL
    SELECT NULL, NULL, count(*)::text FROM new
"""
ON_FILE_INDEX = "interaction_external_id_once"
STAGE_APPLY_NEW = STAGE_APPLY.format(conflict="")
STAGE_APPLY_SKIPPING = STAGE_APPLY.format(
    conflict="ON CONFLICT (source, external_id) WHERE external_id IS NOT NULL DO NOTHING"
)


def _interactions_staged(
    records: list[InteractionRecord], *, actor, job: ImportJob, out: Outcomes, lookups: _Lookups
) -> None:
    """PostgreSQL: COPY the batch into a staging table, then match, refuse and insert in one statement.

    Python checks only what it already holds (agents, and the rare rows naming their customer
    by phone, e-mail or account) and makes the new rows' ids; the customers by external_ref, the
    external_ids on file and the duplicates within the batch are joins (the audit rows are
    written at the batch's turn: contacts_audit). The outcome of every line is the portable
    path's (tests compare the two).
    """
    present = (
        set(
            Interaction.objects.filter(
                source=EXTERNAL_SOURCE, external_id__any={r.external_id for r in records}
            ).values_list("external_id", flat=True)
        )
        if lookups.ask_first
        else set()
    )  # unchanged whatever else they say; not staged (a file imported again costs this one query)
    staged = [r for r in records if r.external_id not in present]
    staff = lookups.staff({r.agent for r in staged if r.agent})
    holders = _holders({(kind, norm) for r in staged if not r.customer_ref for kind, norm in r.identifiers.items()})
    rows = []
    for record in staged:
        customer_id, problem = None, None
        if record.agent and staff.get(record.agent) is None:
            problem = Problem(record.row.line, "agent", f"No agent or supervisor with the username '{record.agent}'.")
        elif not record.customer_ref:
            customer_id, problem = _customer_by_identifiers(record, holders)
        rows.append(
            (
                time_ordered_uuid(),
                record.row.line,
                record.external_id,
                record.customer_ref,
                customer_id,
                problem.field if problem else None,
                problem.message if problem else None,
                *_interaction_columns(record, staff, lookups),
            )
        )
    params = {
        "source": EXTERNAL_SOURCE,
        "now": timezone.now(),
        "actor": actor.pk if actor is not None else None,
        "action": AuditAction.UPDATE.value,
        "job": str(job.pk),
    }
    out.unchanged += len(records) - len(staged)
    if not staged:
        return
    by_line = {record.row.line: record for record in staged}
    with connection.cursor() as cursor:
        cursor.execute(STAGE_CREATE)
        # Empty unless under an outer transaction (the tests'), where no commit empties them.
        cursor.execute("DELETE FROM crm_import_interaction_stage; DELETE FROM crm_import_touched")
    copy_in(STAGE, STAGE_COLUMNS, STAGE_TYPES, rows)
    returned, met_on_file = _stage_apply(params, arbiter=lookups.ask_first)
    created = int(next(message for line, _, message in returned if line is None))
    refused = sorted(row for row in returned if row[0] is not None)
    for line, field, message in refused:
        record = by_line[line]
        if field is None:
            field, message = "customer_ref", f"No customer with external_ref '{record.customer_ref}'."
        out.rejected.append((record.row, Problem(line, field, message)))
    out.created += created
    on_file = len(staged) - created - len(refused)  # or repeated within the batch
    out.unchanged += on_file
    lookups.ask_first = bool(present) or on_file > 0 or met_on_file


def _stage_apply(params: dict[str, Any], *, arbiter: bool) -> tuple[list[tuple], bool]:
    """Run STAGE_APPLY; without the arbiter first when told, and again with it if a line was on file.

    Returns its rows, and whether the insert without the arbiter met a line on file.
    """
    if not arbiter:
        try:
            with transaction.atomic(), connection.cursor() as cursor:  # a savepoint: the staged rows stay
                cursor.execute(STAGE_APPLY_NEW, params)
                return cursor.fetchall(), False
        except IntegrityError as exc:
            diag = getattr(exc.__cause__, "diag", None)  # psycopg's error: which constraint
            if diag is None or diag.constraint_name != ON_FILE_INDEX:
                raise
    with connection.cursor() as cursor:
        cursor.execute(STAGE_APPLY_SKIPPING, params)
        return cursor.fetchall(), not arbiter


# One audit row per customer and contact import, however many batches, lanes, time-boxed runs or
# resumes it takes: not one per batch (a file's contacts come in any order, so each batch of
# 2,000 touched ~2,000 customers, an audit row per contact: a fifth of PostgreSQL's work).
# Written at the batch's turn, when every earlier batch has committed its own, and only for
# customers without one for this import yet: one probe of audit_import_idx per customer, answered
# from its key (customer, job). PostgreSQL uses that index only if the check repeats its predicate
# (models.CONTACT_IMPORT_AUDIT) and expression. OFFSET 0 keeps the check a probe per customer: as
# a join, the planner (expecting a handful of this import's rows) hashed all of them at each batch,
# 24 ms a call by the end of 500,000 contacts, where 2,000 probes take 3 ms.
CONTACTS_AUDIT = """
    INSERT INTO crm_accessaudit (at, actor_id, action, customer_id, detail)
    SELECT %(now)s, %(actor)s, %(action)s, t.customer_id, jsonb_build_object('import', %(job)s::text)
    FROM crm_import_touched t
    WHERE NOT EXISTS (
        SELECT 1 FROM crm_accessaudit a
        WHERE a.customer_id = t.customer_id AND (a.detail ->> 'import') = %(job)s
          AND a.detail ? 'import' AND NOT (a.detail ? 'line')
        OFFSET 0
    )
"""


def contacts_audit(*, actor, job: ImportJob, out: Outcomes) -> None:
    """Audit the customers whose history this batch extended, the first time this import does."""
    if not out.created:
        return  # nothing added (and on PostgreSQL nothing staged: the batch was all on file)
    params = {"now": timezone.now(), "actor": actor.pk if actor is not None else None, "job": str(job.pk)}
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(CONTACTS_AUDIT, {**params, "action": AuditAction.UPDATE.value})
        return
    # audit_import_idx's rows and expression: the job compared as text, as PostgreSQL's ->> does.
    audited = set(
        AccessAudit.objects.filter(
            CONTACT_IMPORT_AUDIT,
            Exact(KeyTextTransform("import", "detail"), params["job"]),
            customer_id__any=out.touched,
        ).values_list("customer_id", flat=True)
    )
    detail = json.dumps({"import": params["job"]})
    rows = [(params["now"], params["actor"], AuditAction.UPDATE.value, cid, detail) for cid in out.touched - audited]
    rows_insert(AccessAudit, AUDIT_COPY_COLUMNS, rows)


def _customer_by_identifiers(
    record: InteractionRecord, holders: dict[tuple[str, str], set[uuid.UUID]]
) -> tuple[Any, Problem | None]:
    line = record.row.line
    if IdentityKind.ACCOUNT in record.identifiers:
        owners = holders.get((IdentityKind.ACCOUNT, record.identifiers[IdentityKind.ACCOUNT]), set())
    else:
        owners = set.union(*(holders.get(item, set()) for item in record.identifiers.items()))
    if len(owners) == 1:
        return next(iter(owners)), None
    kinds = ", ".join(record.identifiers)
    if not owners:
        return None, Problem(line, next(iter(record.identifiers)), f"No customer has this {kinds}.")
    return None, Problem(
        line, next(iter(record.identifiers)), f"{len(owners)} customers share this {kinds}: give customer_ref."
    )


# --- running a job -------------------------------------------------------------------------------


UPLOAD_NAME = re.compile(r"[0-9a-f]{32}-")  # how upload_store names a file; _upload_discard removes only those


def upload_store(upload) -> Path:
    """Keep an uploaded file where the worker reads it (settings.CRM_IMPORT_DIR), under a name nobody guesses.

    The name keeps the upload's last 100 bytes (its extension), cut on a character: a file system
    allows 255 bytes a name, 3 a character in many scripts, and the error file's adds up to 22.
    """
    directory = Path(settings.CRM_IMPORT_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    tail = Path(upload.name).name.encode()[-100:].decode("utf-8", "ignore")
    path = directory / f"{uuid.uuid4().hex}-{tail}"
    try:
        with path.open("wb") as out:
            for chunk in upload.chunks():
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)  # a full disk: no part-written copy of personal data left behind
        raise
    return path


def import_upload_start(*, actor, upload, kind: str, file_format: str | None, dry_run: bool) -> ImportJob:
    """Store an upload and queue its import; ValueError (and no file kept) when it cannot be imported."""
    path = upload_store(upload)
    try:
        with transaction.atomic():
            job = import_job_create(
                actor=actor, kind=kind, path=path, file_name=upload.name, file_format=file_format, dry_run=dry_run
            )
            import_enqueue(job)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return job


def import_job_create(
    *, actor, kind: str, path: Path, file_name: str, file_format: str | None = None, dry_run: bool = False
) -> ImportJob:
    if kind not in ImportKind.values:
        raise ValueError(f"Unknown kind '{kind}': customers or interactions.")
    return ImportJob.objects.create(
        kind=kind,
        file_format=format_for(file_name, file_format),
        file_name=Path(file_name).name[:255],
        path=str(path),
        dry_run=dry_run,
        started_by=actor if actor is not None and getattr(actor, "is_authenticated", False) else None,
        rows_total=count_records(path),
    )


def import_claim(job_id, runner: str) -> bool:
    """Take the job: queued, or running under a runner that has been quiet too long (killed)."""
    now = timezone.now()
    stale = now - dt.timedelta(seconds=settings.CRM_IMPORT_STALE_SECONDS)
    return bool(
        ImportJob.objects.filter(pk=job_id)
        .filter(
            Q(status=ImportStatus.QUEUED)
            | Q(status=ImportStatus.RUNNING, runner=runner)
            | Q(status=ImportStatus.RUNNING, heartbeat_at__lt=stale)
        )
        .update(status=ImportStatus.RUNNING, runner=runner, heartbeat_at=now)
    )


def import_run(
    job_id,
    *,
    runner: str | None = None,
    progress: Callable[[ImportJob], None] | None = None,
    budget_seconds: float | None = None,
    hand_back: bool = True,
) -> ImportJob:
    """Run (or resume) an import; returns the job as it ends. Safe to call twice: one runner holds it.

    With a budget, the runner stops after the first batch that ends past it and hands the job
    back (queued, resume point kept), so a Celery task stays short beside the broker's
    visibility timeout; the task then publishes the job again to continue. A database error that
    passes hands it back too, for the task's retry or the sweep; without `hand_back` (the command,
    whose operator is there to run it again) it ends the job instead.
    """
    started = time.monotonic()
    runner = runner or uuid.uuid4().hex
    job = ImportJob.objects.get(pk=job_id)
    if job.status in (ImportStatus.DONE, ImportStatus.FAILED) or not import_claim(job_id, runner):
        return job
    job.refresh_from_db()
    # The cyclic garbage collector, triggered by every few hundred rows allocated, walked every
    # object the process holds (Django, the modules: hundreds of thousands) again and again: 30-40 %
    # of an import's CPU. Those objects are long-lived; frozen, they are skipped. Rows make no
    # cycles, so reference counting frees them as before (peak memory unchanged, measured). A
    # process that froze objects itself keeps them as it froze them.
    freezing = gc.get_freeze_count() == 0
    if freezing:
        gc.freeze()
    try:
        return _import_run(job, runner, started, progress, budget_seconds, hand_back)
    finally:
        if freezing:
            gc.unfreeze()


def _import_run(
    job: ImportJob,
    runner: str,
    started: float,
    progress: Callable[[ImportJob], None] | None,
    budget_seconds: float | None,
    hand_back: bool,
) -> ImportJob:
    job_id = job.pk
    run = _Run(job, runner)
    batch: list[Row] = []
    pending: list[Problem] = []  # unreadable lines and header warnings, committed with the next batch
    lanes = Lanes(_lane_count())
    run.parallel = lanes.count > 1
    batch_size = settings.CRM_IMPORT_BATCH  # read once: a setting per row is a lazy-object lookup
    try:
        with Path(job.path).open("rb") as stream:
            for item in rows_read(stream, job.file_format, run.columns):
                if isinstance(item, Problem):
                    if item.line > job.last_line or (item.line == 1 and job.last_line == 0):
                        pending.append(item)
                    continue
                if item.line <= job.last_line:
                    continue  # committed by an earlier run
                batch.append(item)
                if len(batch) >= batch_size:
                    run.submit(lanes, batch, pending)
                    batch, pending = [], []
                    if run.order.failure is not None:
                        break
                    if budget_seconds is not None and time.monotonic() - started > budget_seconds:
                        lanes.close()
                        run.raise_failure()
                        return _import_release(run.job(), runner)
                    if progress:
                        progress(run.job())
            else:
                run.submit(lanes, batch, pending, last=True)
        lanes.close()
        run.raise_failure()
        job = run.job()
    except ImportAbandoned:
        run.stop(lanes)
        logger.warning("import %s: taken over by another runner; this one stops", job_id)
        return ImportJob.objects.get(pk=job_id)
    except KeyboardInterrupt:
        run.stop(lanes)
        with contextlib.suppress(DatabaseError):  # else the claim goes stale, and the sweep resumes it
            _import_fail(job, runner, "Stopped by an interrupt (Ctrl-C).")
        raise
    except Exception as exc:
        run.stop(lanes)  # before the job is handed back or failed: no batch may commit, nor end it, after
        if hand_back and isinstance(exc, (OperationalError, InterfaceError)) and _passes(exc):
            # A failover, a dropped connection, a lock or statement timeout: nothing wrong with the
            # file. Handed back at its last committed batch for the task's retry (or the sweep) to
            # resume; if the database is out of reach the claim goes stale and the sweep takes over.
            logger.warning("import %s: database error; handed back at its last batch", job_id, exc_info=True)
            with contextlib.suppress(DatabaseError):
                _import_hand_back(job, runner, exc)
            raise
        logger.exception("import %s failed", job_id)
        _import_fail(job, runner, _failure_text(exc))
        raise
    finally:
        run.stop(lanes)  # an interrupt (BaseException) too; a no-op once the run has ended
    _upload_discard(job)
    if progress:
        progress(job)
    logger.info(
        "import %s done: %s created, %s updated, %s unchanged, %s rejected",
        job.pk,
        job.created,
        job.updated,
        job.unchanged,
        job.rejected,
    )
    return job


def _lane_count() -> int:
    """Connections the batches are applied on: one on SQLite (a single writer) and inside an outer
    transaction (the tests'), whose uncommitted rows another connection would not see."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return 1
    return max(1, settings.CRM_IMPORT_CONNECTIONS)


class _Run:
    """One runner's pass over a job: it reads and parses the file; lanes apply and commit the batches."""

    def __init__(self, job: ImportJob, runner: str):
        self.job_id, self.runner, self.first = job.pk, runner, job
        self.actor = job.started_by  # read here, not in each lane
        customers = job.kind == ImportKind.CUSTOMERS
        self.lookups = None if customers else _Lookups()
        self.columns = CUSTOMER_COLUMNS if customers else INTERACTION_COLUMNS
        self.errors_out = _ErrorFile(job)
        self.order = LaneOrder()
        self.grown = 0  # batches that wrote rows (under the order's turn: one at a time)
        self.parallel = False  # set by import_run when the batches go to more than one lane

    def job(self) -> ImportJob:
        latest = self.order.latest
        return latest if isinstance(latest, ImportJob) else self.first

    def stop(self, lanes: Lanes) -> None:
        """No batch commits from now on; returns once every lane has ended."""
        self.order.abort()
        lanes.close()

    def raise_failure(self) -> None:
        if self.order.failure is not None:
            raise self.order.failure

    def submit(self, lanes: Lanes, batch: list[Row], pending: list[Problem], *, last: bool = False) -> None:
        """Parse the batch here (its keys decide which batches it must wait for), apply it in a lane."""
        out = Outcomes()
        records: list[Any] = []
        opaque = False
        rows: list[tuple[Row, bytes | None]]
        if self.lookups is None:
            rows, out.unchanged, opaque = rows_unchanged(batch, self.order.in_flight())
        else:
            self.lookups.batch_start()
            rows = [(row, None) for row in batch]
        for row, digest in rows:
            made = customer_record(row, digest) if self.lookups is None else interaction_record(row, self.lookups)
            if isinstance(made, list):
                out.rejected.append((row, made[0]))
                out.problems.extend(made[1:])
            else:
                records.append(made)
        lane = self.order.open(_keys(records), opaque=opaque)

        def apply() -> None:
            job, failure = None, None
            try:
                self.order.keys_wait(lane)
                job = _batch_commit(self, lane, batch, records, out, pending, last=last)
            except Exception as exc:  # noqa: BLE001 - recorded for the reading thread, which raises it
                failure = exc
            finally:
                interrupted = job is None and failure is None  # a BaseException on its way out
                self.order.end(lane, result=job, failure=RuntimeError("batch interrupted") if interrupted else failure)

        lanes.run(apply)


def _keys(records: list[Any]) -> set[Any]:
    """What a batch reads by: two batches sharing one are never in flight together."""
    keys: set[Any] = set()
    for record in records:
        if isinstance(record, InteractionRecord):
            keys.add(record.external_id)
            continue
        if record.external_ref:
            keys.add(("ref", record.external_ref))
        keys.update((kind, norm) for kind, _, norm in record.identities)
    return keys


def _import_release(job: ImportJob, runner: str, stuck: int = 0) -> ImportJob:
    """Hand the job back: queued again, its resume point kept, nobody holding it."""
    ImportJob.objects.filter(pk=job.pk, runner=runner, status=ImportStatus.RUNNING).update(
        status=ImportStatus.QUEUED, runner="", stuck=stuck
    )
    return ImportJob.objects.get(pk=job.pk)


# Runs in a row that a database error that passes ended before any batch committed: past this,
# the error is not passing for this job (a statement timeout its batches always hit, say).
STUCK_RUNS_MAX = 10


def _import_hand_back(job: ImportJob, runner: str, exc: BaseException) -> None:
    """After a database error that passes: queued again, unless runs keep ending so without progress."""
    current = ImportJob.objects.get(pk=job.pk)  # `job` is as this run found it
    stuck = 0 if current.last_line > job.last_line else current.stuck + 1
    if stuck < STUCK_RUNS_MAX:
        _import_release(job, runner, stuck)
    else:
        _import_fail(job, runner, f"{_failure_text(exc)} ({stuck} runs in a row, no batch committed)")


def _passes(exc: OperationalError | InterfaceError) -> bool:
    """A database error that goes away by itself, so the job is worth resuming: the connection lost
    (no SQLSTATE, class 08, 57: shut down, cancelled, timed out), a deadlock or serialization
    failure (40), a lock timeout (55P03); SQLite's "database is locked". Not one this file's rows
    make the database raise each time (an index row too large: 54000), which would loop."""
    if connection.vendor == "sqlite":
        return "locked" in str(exc)
    sqlstate = getattr(exc.__cause__, "sqlstate", None) or ""
    return sqlstate == "" or sqlstate[:2] in ("08", "40", "57") or sqlstate == "55P03"


def _failure_text(exc: BaseException) -> str:
    """The first line only: a database error's DETAIL line quotes the values of the row at fault."""
    return f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"[:2000]


def _import_fail(job: ImportJob, runner: str, failure: str) -> None:
    """End the job for good, unless its last batch already ended it (a failure after that is not the import's)."""
    if ImportJob.objects.filter(pk=job.pk, runner=runner, status=ImportStatus.RUNNING).update(
        status=ImportStatus.FAILED, failure=failure, finished_at=timezone.now()
    ):
        _upload_discard(job)


# The tables an import grows; PostgreSQL's statistics of them are refreshed as the import grows them
# (autovacuum's ANALYZE comes minutes later), so the batches' lookups keep their index plans.
# Counted in batches that wrote rows: a file imported again grows nothing, and two ANALYZEs
# were a quarter of a second of its 20,000 rows.
ANALYZE_AFTER_BATCHES = {1, 10, 100, 1000}
GROWN_TABLES = (Customer, Identity, Fact, Preference, Interaction)


def _statistics_refresh() -> None:
    if connection.vendor != "postgresql":
        return
    tables = ", ".join(connection.ops.quote_name(model._meta.db_table) for model in GROWN_TABLES)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {tables}")


def _batch_commit(
    run: _Run,
    lane: Lane,
    batch: list[Row],
    records: list[Any],
    out: Outcomes,
    pending: list[Problem],
    *,
    last: bool = False,
) -> ImportJob:
    """Apply one batch and move the job's counters and resume point in the same transaction.

    The job's row is locked only at the batch's turn (every earlier batch committed), so
    batches in other lanes apply meanwhile; the lock also proves this runner still holds the job.
    """
    warnings = [p for p in pending if p.field and p.message == "Unknown column, ignored."]
    unreadable = [p for p in pending if p not in warnings]
    out.problems.extend(unreadable)
    with transaction.atomic():
        if run.parallel:
            with connection.cursor() as cursor:  # a lock wait the lanes' design missed fails, never hangs
                cursor.execute(f"SET LOCAL lock_timeout = '{max(1, settings.CRM_IMPORT_STALE_SECONDS // 2)}s'")
                # The foreign keys are checked as each statement ends, while other lanes work, not
                # at the commit, which waits for the batch's turn: deferred, the checks (7 us a
                # contact) ran one lane at a time, and a contact import took 15 % longer (measured).
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        savepoint = transaction.savepoint()
        if records:
            first = run.first
            if run.lookups is None:
                settle = functools.partial(run.order.targets_settle, lane)
                customers_apply(records, actor=run.actor, job=first, out=out, settle=settle)
            else:
                interactions_apply(records, actor=run.actor, job=first, out=out, lookups=run.lookups)
        run.order.turn_wait(lane)  # every earlier batch has committed
        if run.first.dry_run:
            transaction.savepoint_rollback(savepoint)
        else:
            if records and run.lookups is not None:
                contacts_audit(actor=run.actor, job=run.first, out=out)
            transaction.savepoint_commit(savepoint)
        locked = ImportJob.objects.select_for_update().filter(pk=run.job_id, runner=run.runner).first()
        if locked is None:
            raise ImportAbandoned(run.job_id)
        job = locked
        problems = [p for _, p in out.rejected] + out.problems
        problems.sort(key=lambda p: p.line)
        room = settings.CRM_IMPORT_MAX_REPORTED - len(job.errors)
        job.errors = [*job.errors, *(p.as_dict() for p in problems[: max(room, 0)])]
        room = settings.CRM_IMPORT_MAX_REPORTED - len(job.warnings)
        job.warnings = [*job.warnings, *(p.as_dict() for p in [*warnings, *out.warnings][: max(room, 0)])]
        wrote = out.created + out.updated > 0
        job.created += out.created
        job.updated += out.updated
        job.unchanged += out.unchanged
        job.rejected += len(out.rejected) + len(unreadable)
        job.rows_done += len(batch) + len(unreadable)
        if batch:
            job.last_line = max(job.last_line, batch[-1].line)
        job.heartbeat_at = timezone.now()
        if out.rejected or unreadable:
            job.error_path, job.error_bytes = run.errors_out.write(out.rejected, unreadable)
        if last:
            job.status = ImportStatus.DONE
            job.finished_at = timezone.now()
            job.rows_total = job.rows_done
        job.save()
    if wrote:
        run.grown += 1
        if run.grown in ANALYZE_AFTER_BATCHES:
            _statistics_refresh()
    return job


def _error_path_default(job: ImportJob) -> str:
    """Beside the file read, one per job (a dry run and an import of the same file do not share one)."""
    return f"{job.path}.{str(job.pk)[:8]}.errors.{job.file_format}"


def error_file_committed(job: ImportJob) -> _FilePrefix | None:
    """The job's rejected lines as its committed batches left them, or None when it has no error file.

    A running batch writes its lines before it commits, and may yet be lost and its lines load
    when resumed, so a download mid-run stops at the recorded length (the whole file for a job
    from before it was recorded). Opened here, not when the response starts: the purge may
    remove the file meanwhile.
    """
    if not job.error_path:
        return None
    try:
        f = Path(job.error_path).open("rb")  # noqa: SIM115 - _FilePrefix closes it
    except FileNotFoundError:
        return None
    size = os.fstat(f.fileno()).st_size
    return _FilePrefix(f, size if job.error_bytes is None else min(job.error_bytes, size))


class _FilePrefix:
    """The first `size` bytes of an open file, in chunks; a response closes it when it is done."""

    def __init__(self, f: IO[bytes], size: int, chunk: int = 1 << 16):
        self.f, self.size, self.chunk = f, size, chunk

    def __iter__(self) -> Iterator[bytes]:
        left = self.size
        while left > 0 and (data := self.f.read(min(self.chunk, left))):
            left -= len(data)
            yield data

    def close(self) -> None:
        self.f.close()


def _reason(problem: Problem) -> str:
    return f"{problem.field}: {problem.message}" if problem.field else problem.message


class _ErrorFile:
    """The rejected lines with their reason: fix them and import the file again."""

    def __init__(self, job: ImportJob):
        """The job's error file as its last committed batch left it, for the run that now holds the job.

        Each batch records the file's length in its transaction (`error_bytes`). Anything past it
        was written by a batch that never committed (its runner killed first), whose lines the
        resumed run reads again and may not reject this time: cut off here, before any batch.
        A job from before the length was recorded (NULL) keeps its file whole. Each job has a
        file of its own (a dry run and an import of the same file do not share one).
        """
        self.job = job
        self.path = Path(job.error_path or _error_path_default(job))
        committed = job.error_bytes
        if committed is not None and self.path.exists() and self.path.stat().st_size > committed:
            os.truncate(self.path, committed)

    def write(self, rejected: list[tuple[Row, Problem]], unreadable: list[Problem]) -> tuple[str, int]:
        """Append a batch's rejected lines; the path and the file's new length, which the batch records."""
        entries: list[tuple[int, Any, Problem]] = [(row.line, row.original, problem) for row, problem in rejected]
        entries += [(problem.line, problem.original, problem) for problem in unreadable]
        entries.sort(key=lambda entry: entry[0])
        size = self.path.stat().st_size if self.path.exists() else 0
        with self.path.open("a", encoding="utf-8", newline="") as f:
            if self.job.file_format == "jsonl":
                for _line, original, problem in entries:
                    record = dict(original) if isinstance(original, dict) else {"line": problem.line}
                    record[ERROR_COLUMN] = _reason(problem)
                    f.write(json.dumps(record, ensure_ascii=False) + "\n")
            else:
                writer = csv.writer(f)
                if size == 0:
                    writer.writerow([*self._header(), ERROR_COLUMN])
                skip = self._error_index()
                for _line, original, problem in entries:
                    cells = [c for i, c in enumerate(original) if i != skip] if isinstance(original, list) else []
                    writer.writerow(
                        [*cells, _reason(problem)] if cells else [f"line {problem.line}: {_reason(problem)}"]
                    )
        return str(self.path), self.path.stat().st_size

    def _raw_header(self) -> list[str]:
        with Path(self.job.path).open(encoding="utf-8-sig", newline="") as f:
            return next(csv.reader(f), [])

    def _header(self) -> list[str]:
        return [h for h in self._raw_header() if h.strip().lower() != ERROR_COLUMN]

    def _error_index(self) -> int:
        """Where a previous error file's reason column sits (an error file imported again), else -1."""
        names = [h.strip().lower() for h in self._raw_header()]
        return names.index(ERROR_COLUMN) if ERROR_COLUMN in names else -1


# A queued import normally starts within a second of its commit; the sweep leaves it that long first.
QUEUED_GRACE_SECONDS = 30


def import_enqueue(job: ImportJob) -> None:
    """Run the job after the current transaction commits (in-process on the embedded default)."""
    enqueue_on_commit("crm.import_run", str(job.pk))


def imports_stalled(*, now: dt.datetime | None = None, limit: int = 100) -> list[uuid.UUID]:
    """Imports left queued past the grace period (a lost message) or held by a runner gone quiet (killed)."""
    now = now or timezone.now()
    stale = now - dt.timedelta(seconds=settings.CRM_IMPORT_STALE_SECONDS)
    queued = now - dt.timedelta(seconds=QUEUED_GRACE_SECONDS)
    return list(
        ImportJob.objects.filter(
            Q(status=ImportStatus.QUEUED, created_at__lt=queued)
            | Q(status=ImportStatus.RUNNING, heartbeat_at__lt=stale)
        ).values_list("pk", flat=True)[:limit]
    )


def imports_sweep(*, now: dt.datetime | None = None) -> int:
    """Publish the stalled imports again; the claim in import_run lets only one runner hold each."""
    ids = imports_stalled(now=now)
    for job_id in ids:
        publish("crm.import_run", str(job_id))
    return len(ids)


def _upload_discard(job: ImportJob) -> None:
    """An upload (stored by upload_store) is the service's copy of customers' personal data, read by
    nothing once its import has ended. A file the command was given is the operator's: it stays,
    wherever it lies."""
    path = Path(job.path)
    if path.parent.resolve() == Path(settings.CRM_IMPORT_DIR).resolve() and UPLOAD_NAME.match(path.name):
        path.unlink(missing_ok=True)


def imports_purge(*, now: dt.datetime | None = None) -> int:
    """What ended imports leave that quotes personal data, an erased customer's too: uploads at once
    (one left by a worker killed after its last batch), and CRM_IMPORT_KEEP_DAYS after the end the
    problems listed and the error file. The counts stay. Returns how many jobs' reports went.

    Each file goes before the row that names it, so a purge cut short leaves nothing unnamed.
    """
    now = now or timezone.now()
    expired = now - dt.timedelta(days=settings.CRM_IMPORT_KEEP_DAYS)
    purged = 0
    ended = ImportJob.objects.filter(status__in=[ImportStatus.DONE, ImportStatus.FAILED], purged_at__isnull=True)
    for job in ended.only("pk", "path", "file_format", "error_path", "finished_at", "failure"):
        _upload_discard(job)
        if job.finished_at is None or job.finished_at >= expired:
            continue
        # The recorded file, or the one a first rejecting batch wrote before it failed to commit.
        Path(job.error_path or _error_path_default(job)).unlink(missing_ok=True)
        purged += ImportJob.objects.filter(pk=job.pk, purged_at__isnull=True).update(
            errors=[],
            warnings=[],
            error_path="",
            error_bytes=0,
            failure=job.failure.split(":", 1)[0],  # the kind of error; its message may quote a value
            purged_at=now,
        )
    return purged


# --- export in the same format -----------------------------------------------------------------

EXPORT_CHUNK = 2000


def customers_export(out: IO[str], *, file_format: str = "csv", actor=None) -> int:
    """Write every live customer as import rows, so export -> import reproduces them; audited per customer.

    A customer without an external_ref is written with its own id as external_ref, so that
    importing the file back (here or elsewhere) updates rather than duplicates.
    """
    fact_keys = sorted(
        set(Fact.objects.filter(is_current=True, customer__in=Customer.objects.live()).values_list("key", flat=True))
    )
    pref_keys = sorted(
        set(
            Preference.objects.filter(is_current=True, customer__in=Customer.objects.live()).values_list(
                "key", flat=True
            )
        )
    )
    columns = [
        "external_ref",
        *CUSTOMER_FIELDS,
        *IDENTIFIER_KINDS,
        "verified",
        *(f"fact:{k}" for k in fact_keys),
        *(f"pref:{k}" for k in pref_keys),
    ]
    writer = csv.writer(out) if file_format == "csv" else None
    if writer:
        writer.writerow(columns)
    written = 0
    last = None
    while True:
        page = Customer.objects.live().order_by("pk")
        if last is not None:
            page = page.filter(pk__gt=last)
        chunk = list(page[:EXPORT_CHUNK])
        if not chunk:
            return written
        last = chunk[-1].pk
        ids = [c.pk for c in chunk]
        identities: dict[uuid.UUID, list[Identity]] = {}
        for identity in Identity.objects.filter(customer_id__in=ids).order_by("created_at", "pk"):
            identities.setdefault(identity.customer_id, []).append(identity)
        facts: dict[uuid.UUID, dict[str, str]] = {}
        for key, value, cid in Fact.objects.filter(customer_id__in=ids, is_current=True).values_list(
            "key", "value", "customer_id"
        ):
            facts.setdefault(cid, {})[key] = value
        prefs: dict[uuid.UUID, dict[str, str]] = {}
        for key, value, cid in Preference.objects.filter(customer_id__in=ids, is_current=True).values_list(
            "key", "value", "customer_id"
        ):
            prefs.setdefault(cid, {})[key] = value
        for customer in chunk:
            held = identities.get(customer.pk, [])
            record: dict[str, Any] = {
                "external_ref": customer.external_ref or str(customer.pk),
                **{name: getattr(customer, name) for name in CUSTOMER_FIELDS},
                **{kind: [i.normalized for i in held if i.kind == kind] for kind in IDENTIFIER_KINDS},
                "verified": [i.normalized for i in held if i.verified_at],
                **{f"fact:{k}": v for k, v in facts.get(customer.pk, {}).items()},
                **{f"pref:{k}": v for k, v in prefs.get(customer.pk, {}).items()},
            }
            if writer:
                writer.writerow(
                    [
                        MULTI_SEPARATOR.join(v) if isinstance(v, list) else v
                        for v in (record.get(c, "") for c in columns)
                    ]
                )
            else:
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
        AccessAudit.objects.bulk_create(
            AccessAudit(actor=actor, action=AuditAction.EXPORT, customer_id=cid, detail={"bulk_export": True})
            for cid in ids
        )
        written += len(chunk)
