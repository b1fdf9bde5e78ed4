"""What the API answers, for /api/v1/schema/: response shapes and error statuses.

These serializers describe the JSON the views already produce (crm/api.py, crm/feedback_api.py,
context/api.py, context/calls_api.py); they never produce it, so the output stays byte-for-byte
what the producers write (the lookup even skips DRF's renderer). `AutoSchema` adds the error
statuses every operation can answer, in the shape of CONTRACT.md's "Errors": 400 where an
operation takes input, 401/403 where it needs a role, 404 where its path names a record, 429
where it is throttled, 413 where it takes a body, 503 everywhere (a dependency down); views
declare the rest (409, a 404 without a path id) with `errors()`.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.permissions import AllowAny

from crm.models import ImportKind

# --- errors ------------------------------------------------------------------------------------------


class ErrorOut(serializers.Serializer):
    """CONTRACT.md's error body; its schema is ERROR_SCHEMA (see ErrorOutExtension)."""

    detail = serializers.CharField(help_text="What is wrong, in words.")

    class Meta:
        ref_name = "Error"


# {"detail": message} or {field: [message, ...], "detail": message}: the field names the offending input.
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "`detail` says what is wrong; each offending input field, when there is one, maps to its messages.",
    "properties": {"detail": {"type": "string"}},
    # A list or object field's messages are per item or key, nested the same way.
    "additionalProperties": {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "object"}]},
}


class ErrorOutExtension(OpenApiSerializerExtension):
    """A serializer cannot say "any other key is a field's messages"; this says it."""

    target_class = ErrorOut

    def map_serializer(self, auto_schema, direction):
        return ERROR_SCHEMA


class TokenScheme(OpenApiAuthenticationExtension):
    """knox's hashed tokens travel as DRF's did: `Authorization: Token <token>` ("tokenAuth")."""

    target_class = "crm.authentication.TokenAuthentication"
    match_subclasses = True  # context.auth.TokenRolesAuthentication too
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Token")  # noqa: S106


ERROR_DESCRIPTIONS = {
    400: "Malformed input; nothing was changed.",
    401: "No or bad credentials (send `Authorization: Token <key>`).",
    403: "The caller's role may not do this.",
    404: "No such record (or it was erased).",
    409: "Conflicts with data already held; nothing was changed.",
    413: "The body is too large; nothing was changed.",
    415: "The body is not in a media type this operation reads (e.g. a broken multipart body); nothing was changed.",
    429: "Too many requests from this client; retry later.",
    503: "A dependency the request needs is down; retry after `Retry-After` seconds.",
}


RETRY_AFTER_HEADER = {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """Error responses a view declares beyond the ones AutoSchema infers (e.g. 409)."""
    return {code: OpenApiResponse(ErrorOut, description=ERROR_DESCRIPTIONS[code]) for code in codes}


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's AutoSchema plus the error statuses each operation can answer."""

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return operation
        responses = operation.setdefault("responses", {})
        inferred = []
        if "requestBody" in operation or any(p["in"] == "query" for p in operation.get("parameters", [])):
            inferred.append(400)
        if not all(isinstance(p, AllowAny) for p in self.view.get_permissions()):
            inferred += [401, 403]
        if "{" in path:
            inferred.append(404)
        if getattr(self.view, "throttle_classes", None):
            inferred.append(429)
        if "requestBody" in operation:
            inferred.append(413)  # issue 11: a body over CRM_MAX_BODY_BYTES
        inferred.append(503)  # issue 11: the database (or another dependency it needs) is down
        ref = self.resolve_serializer(ErrorOut, "response").ref
        for code in inferred:
            responses.setdefault(
                str(code), {"description": ERROR_DESCRIPTIONS[code], "content": {"application/json": {"schema": ref}}}
            )
        if "503" in responses:
            responses["503"].setdefault("headers", {"Retry-After": RETRY_AFTER_HEADER})
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    # Issue 11: the request schemas say what the serializers refuse, so that what the schema
    # allows is accepted (schemathesis, tests/integration/test_schemathesis.py).

    def _map_basic_serializer(self, serializer, direction):
        schema = super()._map_basic_serializer(serializer, direction)
        if direction == "request" and getattr(serializer, "refuses_unknown_fields", False):
            schema["additionalProperties"] = False
        any_of = getattr(serializer, "requires_one_of", ())
        if direction == "request" and any_of:
            # A cross-field rule: at least one of these fields must be given.
            schema["anyOf"] = [{"required": [name]} for name in any_of]
        return schema

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if direction == "request" and isinstance(field, serializers.CharField) and _is_plain_string(schema):
            schema["pattern"] = TEXT_PATTERN if field.allow_blank else NON_BLANK_TEXT_PATTERN
        return schema


# The IVR's answers (context.api.ivr_problem): keys of 1-64 characters, scalar values, 4 KB in all.
IVR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "What the caller told the IVR: keys of 1-64 characters, each a string, number, boolean or "
    "null; at most 4 KB as JSON, no null characters.",
    "additionalProperties": {
        "nullable": True,
        "anyOf": [{"type": "string", "pattern": "^[^\\x00]*$"}, {"type": "number"}, {"type": "boolean"}],
    },
}

# Text fields refuse the null character; a field that may not be blank needs a character
# other than whitespace (DRF trims it).
TEXT_PATTERN = "^[^\\x00]*$"
NON_BLANK_TEXT_PATTERN = "^[^\\x00]*[^\\s\\x00][^\\x00]*$"


# Rules no JSON schema can state: values must name something that exists or be readable as
# what they claim. Schema-valid input breaking one is a 400; each operation's description says
# so (document_rules_beyond_the_schema), and the schemathesis test does not expect such input
# to be accepted (tests/integration/test_schemathesis.py).
RULES_BEYOND_THE_SCHEMA: dict[str, str] = {
    "POST /api/v1/auth/token": "the username and password must match an account",
    "POST /api/v1/calls": "phone/email/account must be readable as such (a possible phone number, an e-mail "
    "address, 4-32 letters or digits); `agent` must name a member of staff",
    "POST /api/v1/context/lookup": "phone/email/account must be readable as such (a possible phone number, an "
    "e-mail address, 4-32 letters or digits)",
    "POST /api/v1/customers": "each identity's value must be readable as its kind; `timezone` must be an IANA zone",
    "POST /api/v1/customers/{customer_id}/identities": "the value must be readable as its kind",
    "PATCH /api/v1/customers/{customer_id}": "`timezone` must be an IANA zone",
    "POST /api/v1/feedback": "phone/email/account must be readable as such; `staff` must name members of staff",
    "POST /api/v1/interactions": "identifiers must be readable as such; `agent` must name a member of staff and "
    "`reason` a contact reason (GET /api/v1/reasons)",
    "PATCH /api/v1/interactions/{interaction_id}": "`reason` must be a contact reason (GET /api/v1/reasons); "
    "`ended_at` must not be before the contact started",
    "POST /api/v1/imports": "the file must be UTF-8 text (CSV with a header line, or JSON Lines), and its name "
    "end in .csv or .jsonl unless `format` says which",
    # issue 16: the platforms' own formats, which this service does not define.
    "POST /api/v1/calls/amazon-connect": "the body must be an Amazon Connect contact event (EventBridge) or a "
    "contact-flow Lambda invocation, as Amazon documents them",
    "POST /api/v1/calls/genesys": "the body must be a Genesys Cloud conversation notification (EventBridge envelope "
    "or topicName + eventBody), as Genesys documents it",
}


def document_rules_beyond_the_schema(result, generator, request, public):
    """Postprocessing hook: each operation with such rules says them in its description."""
    for path, methods in result.get("paths", {}).items():
        for method, operation in methods.items():
            rule = RULES_BEYOND_THE_SCHEMA.get(f"{method.upper()} {path}")
            if rule:
                text = f"Also refused with 400, beyond what the schema states: {rule}."
                operation["description"] = f"{operation.get('description', '')}\n\n{text}".strip()
    return result


_BLANK = {"type": "string", "maxLength": 0}


def collapse_blank_branches(result, generator, request, public):
    """Postprocessing hook: `oneOf: [text, ""]` where the text's pattern admits "" becomes the text alone.

    drf-spectacular adds the blank branch for allow_blank fields that have a pattern; with
    TEXT_PATTERN "" would match both branches, which oneOf forbids.
    """

    def walk(node):
        if isinstance(node, dict):
            branches = node.get("oneOf")
            if isinstance(branches, list) and len(branches) == 2 and _BLANK in branches:
                text = next(branch for branch in branches if branch != _BLANK)
                if text.get("pattern") == TEXT_PATTERN:
                    del node["oneOf"]
                    node.update(text)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(result)
    return result


def _is_plain_string(schema: dict) -> bool:
    return schema.get("type") == "string" and not ({"format", "enum", "pattern"} & set(schema))


# --- customers ---------------------------------------------------------------------------------------


class IdentityOut(serializers.Serializer):
    kind = serializers.CharField()
    value = serializers.CharField(help_text="Normalized: phones in E.164, e-mails lower case.")
    verified = serializers.BooleanField()

    class Meta:
        ref_name = "Identity"


class FactSourceOut(serializers.Serializer):
    channel = serializers.CharField(allow_null=True)
    interaction_id = serializers.UUIDField(allow_null=True)
    # "file:line" of the bulk import that recorded it (issue 15); null when told in a contact.
    imported_from = serializers.CharField(allow_null=True)

    class Meta:
        ref_name = "FactSource"


class FactOut(serializers.Serializer):
    key = serializers.CharField()
    value = serializers.CharField()
    source = FactSourceOut()  # type: ignore[assignment]  # a declared field, not Field.source
    recorded_at = serializers.DateTimeField()

    class Meta:
        ref_name = "Fact"


class CustomerOut(serializers.Serializer):
    id = serializers.UUIDField()
    display_name = serializers.CharField()
    preferred_name = serializers.CharField()
    language = serializers.CharField()
    timezone = serializers.CharField()
    tier = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    identities = IdentityOut(many=True)
    preferences = serializers.DictField(child=serializers.CharField())
    facts = FactOut(many=True)

    class Meta:
        ref_name = "Customer"


class CustomerSummaryOut(serializers.Serializer):
    id = serializers.UUIDField()
    display_name = serializers.CharField()
    preferred_name = serializers.CharField()
    tier = serializers.CharField()

    class Meta:
        ref_name = "CustomerSummary"


class CustomerSummaryListOut(serializers.Serializer):
    results = CustomerSummaryOut(many=True)

    class Meta:
        ref_name = "CustomerSummaryList"


class TimelineEntryOut(serializers.Serializer):
    type = serializers.ChoiceField(choices=["interaction", "feedback", "case", "follow_up"])
    id = serializers.UUIDField()
    at = serializers.DateTimeField()
    channel = serializers.CharField(required=False, help_text="interaction")
    reason = serializers.CharField(required=False, allow_null=True, help_text="interaction")
    summary = serializers.CharField(required=False, help_text="interaction")
    outcome = serializers.CharField(required=False, allow_null=True, help_text="interaction")
    agent = serializers.CharField(required=False, allow_null=True, help_text="interaction")
    rating = serializers.IntegerField(required=False, allow_null=True, help_text="feedback")
    nps = serializers.IntegerField(required=False, allow_null=True, help_text="feedback")
    sentiment = serializers.CharField(required=False, allow_null=True, help_text="feedback")
    text = serializers.CharField(required=False, help_text="feedback")
    subject = serializers.CharField(required=False, help_text="case")
    status = serializers.CharField(required=False, help_text="case, follow_up")
    kind = serializers.CharField(required=False, help_text="case, follow_up")
    due_at = serializers.DateTimeField(required=False, allow_null=True, help_text="follow_up")

    class Meta:
        ref_name = "TimelineEntry"


class TimelineOut(serializers.Serializer):
    results = TimelineEntryOut(many=True)
    next_cursor = serializers.CharField(allow_null=True, help_text="Pass as `cursor` for the next, older page.")
    next_before = serializers.DateTimeField(allow_null=True)

    class Meta:
        ref_name = "Timeline"


class MergeOut(serializers.Serializer):
    id = serializers.UUIDField(help_text="The surviving customer.")
    merged = serializers.UUIDField(help_text="The duplicate folded into it.")
    moved = serializers.DictField(
        child=serializers.JSONField(), help_text="What moved, by kind: ids (or counts) of the rows."
    )
    merge_id = serializers.IntegerField(help_text="The merge record; pass it to unmerge.")  # issue 13

    class Meta:
        ref_name = "MergeResult"


# issue 13: undoing a merge
class UnmergeOut(serializers.Serializer):
    id = serializers.UUIDField(help_text="The customer the duplicate had been merged into.")
    restored = serializers.UUIDField(help_text="The duplicate, a customer again.")
    merge_id = serializers.IntegerField()
    undone_at = serializers.DateTimeField()

    class Meta:
        ref_name = "UnmergeResult"


def _rows(help_text: str) -> serializers.ListField:
    return serializers.ListField(child=serializers.DictField(), help_text=help_text)


class ExportPersonOut(serializers.Serializer):
    id = serializers.UUIDField()
    display_name = serializers.CharField()
    preferred_name = serializers.CharField()
    language = serializers.CharField()
    timezone = serializers.CharField()
    tier = serializers.CharField()
    created_at = serializers.DateTimeField()
    erased_at = serializers.DateTimeField(allow_null=True)

    class Meta:
        ref_name = "ExportPerson"


class ExportOut(serializers.Serializer):
    customer = ExportPersonOut()
    merged_duplicates = ExportPersonOut(many=True)
    identities = _rows("Every identifier, with how and when it was verified.")
    preferences = _rows("Every preference, current and past.")
    facts = _rows("Every fact, current and past, with its source.")
    interactions = _rows("Every contact.")
    cases = _rows("Every case.")
    feedback = _rows("Every piece of feedback.")
    recognitions = _rows("Praise of staff in their feedback.")
    follow_ups = _rows("Every follow-up.")
    recurring_problems = _rows("Reasons the customer kept contacting us about.")

    class Meta:
        ref_name = "CustomerExport"


# --- interactions --------------------------------------------------------------------------------------


class InteractionOut(serializers.Serializer):
    id = serializers.UUIDField()
    customer_id = serializers.UUIDField(allow_null=True)
    channel = serializers.CharField()
    direction = serializers.CharField()
    started_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)
    agent = serializers.CharField(allow_null=True, help_text="username")
    queue = serializers.CharField()
    reason = serializers.CharField(allow_null=True, help_text="a code from GET /api/v1/reasons")
    reason_text = serializers.CharField()
    summary = serializers.CharField()
    outcome = serializers.CharField(allow_null=True)
    identifiers = serializers.DictField(child=serializers.CharField())
    verified = serializers.ListField(child=serializers.CharField())
    ivr = serializers.DictField()
    case_id = serializers.UUIDField(allow_null=True)
    call_id = serializers.CharField(allow_null=True)
    external_id = serializers.CharField(allow_null=True)

    class Meta:
        ref_name = "Interaction"


# --- feedback workflows ----------------------------------------------------------------------------------


class FollowUpOut(serializers.Serializer):
    id = serializers.UUIDField()
    kind = serializers.CharField()
    status = serializers.CharField()
    due_at = serializers.DateTimeField()
    owner = serializers.CharField(allow_null=True, help_text="username")
    channel = serializers.CharField(allow_null=True)
    note = serializers.CharField()
    customer_id = serializers.UUIDField(allow_null=True)
    feedback_id = serializers.UUIDField(allow_null=True)
    case_id = serializers.UUIDField(allow_null=True)
    escalation_level = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)

    class Meta:
        ref_name = "FollowUp"


class FollowUpListOut(serializers.Serializer):
    results = FollowUpOut(many=True)

    class Meta:
        ref_name = "FollowUpList"


class FeedbackRecognitionOut(serializers.Serializer):
    id = serializers.UUIDField()
    staff = serializers.CharField(help_text="username")

    class Meta:
        ref_name = "FeedbackRecognition"


class FeedbackOut(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField()
    sentiment = serializers.CharField(allow_null=True)
    rating = serializers.IntegerField(allow_null=True)
    nps = serializers.IntegerField(allow_null=True)
    received_at = serializers.DateTimeField()
    processed_at = serializers.DateTimeField(allow_null=True)
    interaction_id = serializers.UUIDField(allow_null=True)
    customer_id = serializers.UUIDField(allow_null=True)
    unverified = serializers.BooleanField(help_text="The customer was named only by an identifier, not a contact.")
    recognitions = FeedbackRecognitionOut(many=True)
    follow_ups = FollowUpOut(many=True)
    case_id = serializers.UUIDField(allow_null=True)

    class Meta:
        ref_name = "Feedback"


class RecognitionOut(serializers.Serializer):
    id = serializers.UUIDField()
    staff = serializers.CharField(help_text="username")
    feedback_id = serializers.UUIDField()
    interaction_id = serializers.UUIDField(allow_null=True)
    quote = serializers.CharField()
    created_at = serializers.DateTimeField()

    class Meta:
        ref_name = "Recognition"


class RecognitionListOut(serializers.Serializer):
    results = RecognitionOut(many=True)

    class Meta:
        ref_name = "RecognitionList"


class RecurringProblemOut(serializers.Serializer):
    id = serializers.IntegerField()
    customer_id = serializers.UUIDField()
    customer = serializers.CharField(help_text="display name")
    reason = serializers.CharField()
    contact_count = serializers.IntegerField()
    first_contact_at = serializers.DateTimeField()
    last_contact_at = serializers.DateTimeField()
    interaction_ids = serializers.ListField(child=serializers.UUIDField())

    class Meta:
        ref_name = "RecurringProblem"


class RepeatReasonOut(serializers.Serializer):
    reason = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]  # a declared field, not Field.label
    customers = serializers.IntegerField()
    repeat_contacts = serializers.IntegerField()

    class Meta:
        ref_name = "RepeatReason"


class RecurringProblemsOut(serializers.Serializer):
    results = RecurringProblemOut(many=True)
    top_reasons = RepeatReasonOut(many=True)
    feedback_by_sentiment = serializers.DictField(child=serializers.IntegerField())

    class Meta:
        ref_name = "RecurringProblems"


# --- the screen-pop card (POST /api/v1/context/lookup) -----------------------------------------------------


class CardIdentityOut(IdentityOut):
    verified_at = serializers.DateTimeField(allow_null=True, help_text="When it was last verified (issue 12).")
    verified_via = serializers.ChoiceField(
        choices=["agent", "ivr", "record"],
        allow_null=True,
        help_text="How: by an agent on a call, IVR/login, on record.",
    )

    class Meta:
        ref_name = "CardIdentity"


class CardCustomerOut(serializers.Serializer):
    id = serializers.UUIDField()
    display_name = serializers.CharField()
    preferred_name = serializers.CharField()
    language = serializers.CharField()
    tier = serializers.CharField()
    identities = CardIdentityOut(many=True)
    preferences = serializers.DictField(child=serializers.CharField())
    facts = FactOut(many=True)

    class Meta:
        ref_name = "CardCustomer"


class CardCandidateOut(serializers.Serializer):
    id = serializers.UUIDField()
    display_name = serializers.CharField()
    matched_on = serializers.ListField(child=serializers.CharField())
    # Issue 12: what tells household members apart.
    account_last4 = serializers.CharField(allow_null=True, help_text="Last 4 of their account (a verified one first).")
    email_domain = serializers.CharField(allow_null=True, help_text="The domain of their e-mail address.")
    last_contact_at = serializers.DateTimeField(allow_null=True, help_text="Their last contact that counts.")

    class Meta:
        ref_name = "CardCandidate"


class CardCaseOut(serializers.Serializer):
    id = serializers.UUIDField()
    subject = serializers.CharField()
    status = serializers.CharField()
    opened_at = serializers.DateTimeField()

    class Meta:
        ref_name = "CardCase"


class CardInteractionOut(serializers.Serializer):
    id = serializers.UUIDField()
    channel = serializers.CharField()
    started_at = serializers.DateTimeField()
    agent = serializers.CharField(allow_null=True)
    reason = serializers.CharField(allow_null=True)
    summary = serializers.CharField()
    outcome = serializers.CharField(allow_null=True)

    class Meta:
        ref_name = "CardInteraction"


class CardFeedbackOut(serializers.Serializer):
    rating = serializers.IntegerField(allow_null=True)
    nps = serializers.IntegerField(allow_null=True)  # issue 13
    sentiment = serializers.CharField(allow_null=True)
    text = serializers.CharField(help_text="The customer's words, first 280 characters.")  # issue 13
    received_at = serializers.DateTimeField()

    class Meta:
        ref_name = "CardFeedback"


class CardRepeatOut(serializers.Serializer):
    reason = serializers.CharField(help_text="Contact reason code.")
    count = serializers.IntegerField(help_text="Earlier contacts about it in the repeat window (30 days).")

    class Meta:
        ref_name = "CardRepeat"


class CardOut(serializers.Serializer):
    match = serializers.ChoiceField(choices=["unique", "ambiguous", "none"])
    matched_on = serializers.ListField(child=serializers.CharField())
    interaction_id = serializers.UUIDField()
    customer = CardCustomerOut(allow_null=True)
    candidates = CardCandidateOut(many=True)
    verified = serializers.BooleanField()
    verified_on_call = serializers.ListField(
        child=serializers.CharField(), help_text="Identifier kinds verified during this contact (IVR, login, agent)."
    )
    do_not_ask = serializers.ListField(child=serializers.CharField())
    ivr = serializers.DictField()
    open_cases = CardCaseOut(many=True)
    recent_interactions = CardInteractionOut(many=True)
    flags = serializers.ListField(child=serializers.CharField())
    repeat = CardRepeatOut(allow_null=True, help_text="What a repeat contact is about, when `repeat_contact` is set.")
    last_feedback = CardFeedbackOut(allow_null=True)

    class Meta:
        ref_name = "Card"


# --- issue 12: verified on this call (POST /api/v1/interactions/{id}/verify) ---


class ContactVerifyOut(serializers.Serializer):
    interaction_id = serializers.UUIDField()
    verified_on_call = serializers.ListField(child=serializers.CharField())
    identity = CardIdentityOut()

    class Meta:
        ref_name = "ContactVerify"


# --- issue 15: bulk import ---------------------------------------------------------------------


class ImportAccepted(serializers.Serializer):
    id = serializers.UUIDField()


class ImportProblemOut(serializers.Serializer):
    line = serializers.IntegerField(help_text="The record's first line in the file (1 is the CSV header).")
    field = serializers.CharField(help_text="The column at fault; empty when the line itself cannot be read.")
    message = serializers.CharField()


class ImportOut(serializers.Serializer):
    id = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=ImportKind.choices)
    status = serializers.ChoiceField(choices=["queued", "running", "done", "failed"])
    dry_run = serializers.BooleanField()
    file_name = serializers.CharField()
    rows_total = serializers.IntegerField(help_text="Records in the file (an estimate until the import is done).")
    rows_done = serializers.IntegerField()
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    rejected = serializers.IntegerField()
    # Describes the output key "errors"; this serializer only documents, so shadowing Serializer.errors is harmless.
    errors = ImportProblemOut(many=True, help_text="Rejected rows, the first 1,000 by default.")  # type: ignore[assignment]
    warnings = ImportProblemOut(many=True, help_text="Unknown columns, possible duplicates.")
    error_file = serializers.CharField(allow_null=True, help_text="The rejected lines with a reason column.")
    purged_at = serializers.DateTimeField(
        allow_null=True,
        help_text="When the problems listed and the error file were removed (CRM_IMPORT_KEEP_DAYS after the end); "
        "the counts stay.",
    )
