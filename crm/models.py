"""The customer memory: who a customer is, what they told us, every contact.

Invariants live in the database (named constraints); every index names the
query path that needs it. Customers are never deleted: erasure anonymizes the
row in place so that aggregate records (counts for reports) keep their keys.

Every index costs each insert a write (issue 15: imports and screen pops), so none repeats
another: a foreign key whose reads a wider index serves has db_index=False. A foreign key
that is NULL on most rows (no agent, never merged, not recorded in a contact) is indexed
"WHERE key IS NOT NULL", so a row without one writes nothing to it: every read of it
names a key, which implies NOT NULL to the planner, generic plans and the key's own check
on delete included (tests/integration/test_write_indexes.py).
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Length
from django.db.models.lookups import LessThanOrEqual
from django.utils import timezone
from uuid_utils.compat import uuid7


class Channel(models.TextChoices):
    PHONE = "phone"
    CHAT = "chat"
    EMAIL = "email"
    SMS = "sms"
    WEB = "web"
    IN_PERSON = "in_person"
    SOCIAL = "social"


class IdentityKind(models.TextChoices):
    PHONE = "phone"
    EMAIL = "email"
    ACCOUNT = "account"


# What an agent can mark as verified on a contact: any identifier kind, or the customer record itself.
VERIFIABLE = [*IdentityKind.values, "customer_id"]
# Preference values that mean "yes" (consent, do-not-call), as the forms and integrations write them.
TRUTHY = {"1", "true", "yes", "y", "on"}


class Tier(models.TextChoices):
    STANDARD = "standard"
    VIP = "vip", "VIP"  # issue 13: not "Vip"


class Outcome(models.TextChoices):
    RESOLVED = "resolved"
    UNRESOLVED = "unresolved"
    FOLLOW_UP = "follow_up"
    TRANSFERRED = "transferred"


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True)
    supervisor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="supervised_teams"
    )

    def __str__(self) -> str:
        return self.name


class StaffProfile(models.Model):
    """A member of staff: the Django user plus team and line supervisor."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_profile")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="members")
    supervisor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="reports"
    )
    # --- issue 16: the agent's identity on each telephony platform (context/adapters match on these)
    twilio_worker_sid = models.CharField(
        "Twilio worker SID", max_length=34, blank=True, default="", help_text="TaskRouter worker, WK..."
    )
    twilio_contact_uri = models.CharField(
        "Twilio contact URI", max_length=255, blank=True, default="", help_text="client:name, +E.164 or sip:..."
    )
    connect_agent = models.CharField(
        "Amazon Connect agent",
        max_length=255,
        blank=True,
        default="",
        help_text="The agent ARN (arn:aws:connect:...:instance/.../agent/<user id>) or just the user id.",
    )
    genesys_user_id = models.CharField("Genesys Cloud user id", max_length=64, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=[name], condition=~Q(**{name: ""}), name=f"staff_{name}_unique")
            for name in ("twilio_worker_sid", "twilio_contact_uri", "connect_agent", "genesys_user_id")
        ]

    # --- end issue 16

    def __str__(self) -> str:
        return f"{self.user} ({self.team or 'no team'})"


class ContactReason(models.Model):
    """The taxonomy of contact reasons that supervisors keep in the admin."""

    code = models.SlugField(max_length=50, unique=True)
    label = models.CharField(max_length=120)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["label"]

    def __str__(self) -> str:
        return self.label


def customer_live_q(prefix: str = "") -> Q:
    """The one definition of a live customer: not erased, not merged into another.

    As a filter so that a customer reached through a relation (prefix "customer__")
    is judged by the same rule, in the same join.
    """
    return Q(**{f"{prefix}erased_at__isnull": True, f"{prefix}merged_into__isnull": True})


class CustomerQuerySet(models.QuerySet):
    def live(self) -> "CustomerQuerySet":
        """Live customers (customer_live_q)."""
        return self.filter(customer_live_q())


class Customer(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    display_name = models.CharField(max_length=200, blank=True)
    preferred_name = models.CharField(max_length=100, blank=True)
    language = models.CharField(max_length=16, blank=True, default="en")
    timezone = models.CharField(max_length=64, blank=True)
    tier = models.CharField(max_length=16, choices=Tier.choices, default=Tier.STANDARD)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    erased_at = models.DateTimeField(null=True, blank=True)
    # Indexed without NULLs (customer_merged_into_idx): few customers are ever merged.
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="merged", db_index=False
    )
    # Issue 15: the customer's id in the system it was imported from; an import row naming it updates this customer.
    external_ref = models.CharField(max_length=128, null=True, blank=True)
    # Issue 15: a digest of the last import row applied to this customer. A row identical to it is
    # unchanged without being read further (crm.imports.unchanged_rows); erasure clears it.
    import_digest = models.BinaryField(max_length=16, null=True, editable=False)

    objects = CustomerQuerySet.as_manager()

    class Meta:
        constraints = [
            # The import matches by it (and its unique index serves that lookup).
            models.UniqueConstraint(
                fields=["external_ref"], condition=Q(external_ref__isnull=False), name="customer_external_ref_once"
            ),
            models.CheckConstraint(
                condition=Q(merged_into__isnull=True) | ~Q(merged_into=models.F("id")),
                name="customer_not_merged_into_itself",
            ),
        ]
        indexes = [
            # A merge's earlier duplicates, erasure's merged family, the PROTECT check (without NULLs).
            models.Index(
                fields=["merged_into"], condition=Q(merged_into__isnull=False), name="customer_merged_into_idx"
            ),
        ]

    def __str__(self) -> str:
        return self.display_name or f"Customer {self.id}"

    @property
    def is_live(self) -> bool:
        return self.erased_at is None and self.merged_into_id is None


# --- issue 12: how an identifier was verified ---
class VerifiedVia(models.TextChoices):
    AGENT = "agent", "by the agent on a call"
    IVR = "ivr", "by the IVR or login"
    RECORD = "record", "when it was recorded"


# A contact opened by a screen-pop lookup or call event (crm.card.CONTACT_SOURCE).
CONTACT_SOURCE = "contact"


def contact_counts() -> Q:
    """Contacts that count: a pop or lookup counts once an agent recorded a reason, outcome or summary.

    Contacts from other sources (the interactions API, imports) always count. A screen
    pop nobody wrapped up is not a contact: it is not on the card, the 360, nor in reports.
    """
    return ~Q(source=CONTACT_SOURCE) | Q(reason__isnull=False) | ~Q(outcome="") | ~Q(summary="")


# --- end issue 12 ---


class Identity(models.Model):
    """An identifier a customer is known by, stored as given and normalized.

    Identities only ever belong to live customers: a merge moves them to the
    survivor, an erasure deletes them. That makes "an account number belongs to
    at most one live customer" a plain partial unique constraint.
    """

    # No single-column index: identity_once_per_customer (customer, kind, normalized) serves reads by customer.
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="identities", db_index=False)
    kind = models.CharField(max_length=16, choices=IdentityKind.choices)
    value = models.CharField(max_length=254)
    normalized = models.CharField(max_length=254)
    verified_at = models.DateTimeField(null=True, blank=True)
    source = models.CharField(max_length=32, blank=True, default="agent")
    created_at = models.DateTimeField(auto_now_add=True)
    # --- issue 12: how and by whom it was last verified (the agent desk's "Verified on this call") ---
    verified_via = models.CharField(max_length=16, choices=VerifiedVia.choices, blank=True, default="", db_default="")
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    # --- end issue 12 ---

    class Meta:
        verbose_name_plural = "identities"
        constraints = [
            models.UniqueConstraint(fields=["customer", "kind", "normalized"], name="identity_once_per_customer"),
            models.UniqueConstraint(
                fields=["normalized"], condition=Q(kind="account"), name="account_belongs_to_one_customer"
            ),
        ]
        indexes = [
            # Screen-pop and search: WHERE kind = %s AND normalized = %s.
            models.Index(fields=["kind", "normalized"], name="identity_lookup_idx"),
            # Who verified it: only the FK's SET_NULL on a user's deletion reads it (without NULLs).
            models.Index(
                fields=["verified_by"], condition=Q(verified_by__isnull=False), name="identity_verified_by_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.normalized}"


class Preference(models.Model):
    """A customer preference; changing one keeps the earlier value (is_current=False)."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="preferences")
    key = models.CharField(max_length=64)
    value = models.CharField(max_length=500)
    is_current = models.BooleanField(default=True)
    recorded_at = models.DateTimeField()
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, db_index=False
    )
    interaction = models.ForeignKey(
        "Interaction", null=True, blank=True, on_delete=models.SET_NULL, related_name="preferences", db_index=False
    )
    # Issue 15: "file:line" when the value came from a bulk import (the source the card names).
    import_ref = models.CharField(max_length=200, blank=True, default="", db_default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "key"], condition=Q(is_current=True), name="one_current_preference_per_key"
            ),
        ]
        indexes = [
            # The card's current preferences of one customer: one_current_preference_per_key. The single-column
            # index on customer stays: history (is_current false too), a merge, an erasure read every row.
            # By interaction or recorder: only the FKs' SET_NULL reads them; without NULLs (imports name no contact).
            models.Index(
                fields=["interaction"], condition=Q(interaction__isnull=False), name="preference_interaction_idx"
            ),
            models.Index(
                fields=["recorded_by"], condition=Q(recorded_by__isnull=False), name="preference_recorded_by_idx"
            ),
        ]


class Fact(models.Model):
    """Something the customer told us; the newest per key is current, older ones stay."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="facts")
    key = models.CharField(max_length=64)
    value = models.CharField(max_length=500)
    is_current = models.BooleanField(default=True)
    channel = models.CharField(max_length=16, choices=Channel.choices, blank=True)
    recorded_at = models.DateTimeField()
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, db_index=False
    )
    interaction = models.ForeignKey(
        "Interaction", null=True, blank=True, on_delete=models.SET_NULL, related_name="facts", db_index=False
    )
    # Issue 15: "file:line" when the value came from a bulk import (the source the card names).
    import_ref = models.CharField(max_length=200, blank=True, default="", db_default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "key"], condition=Q(is_current=True), name="one_current_fact_per_key"
            ),
        ]
        indexes = [
            # The card's current facts of one customer: one_current_fact_per_key. As for Preference, the
            # single-column index on customer stays, and the indexes by interaction and recorder leave out NULL.
            models.Index(fields=["interaction"], condition=Q(interaction__isnull=False), name="fact_interaction_idx"),
            models.Index(fields=["recorded_by"], condition=Q(recorded_by__isnull=False), name="fact_recorded_by_idx"),
        ]


class CaseStatus(models.TextChoices):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    CLOSED = "closed"


class CaseKind(models.TextChoices):
    GENERAL = "general"
    SERVICE_RECOVERY = "service_recovery"


class Case(models.Model):
    """An open problem spanning contacts."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.PROTECT, related_name="cases")
    subject = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=CaseKind.choices, default=CaseKind.GENERAL)
    reason = models.ForeignKey(ContactReason, null=True, blank=True, on_delete=models.PROTECT)
    status = models.CharField(max_length=16, choices=CaseStatus.choices, default=CaseStatus.OPEN)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="owned_cases"
    )
    opened_at = models.DateTimeField()
    due_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # The card: open cases of one customer.
            models.Index(
                fields=["customer", "opened_at"],
                condition=Q(status__in=["open", "in_progress"]),
                name="case_open_by_customer_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.subject


def time_ordered_uuid() -> uuid.UUID:
    """A UUIDv7 (RFC 9562), for the append-only tables' keys: its first 48 bits are the time.

    A row appended now then lands on the right-hand edge of its primary key's index, not
    on a random leaf page (after each checkpoint a random page costs a full-page image in
    the WAL, and the index's working set is all of it instead of its last pages).
    """
    return uuid7()


class BrinOnPostgres(models.Index):
    """A BRIN index on PostgreSQL (a B-tree elsewhere), for a column that grows with the table's order.

    Contacts are appended in time order, so a few kilobytes of block-range summaries
    serve a report's date range, where a B-tree costs a write on every screen-pop insert.
    """

    def create_sql(self, model, schema_editor, using="", **kwargs):
        if schema_editor.connection.vendor == "postgresql":
            using = " USING brin"
        return super().create_sql(model, schema_editor, using=using, **kwargs)


class Direction(models.TextChoices):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class Interaction(models.Model):
    """One contact, on any channel. Unlinked (customer empty) until identified."""

    # issue 10: a wrap-up note, not a transcript (interaction_summary_bounded).
    SUMMARY_MAX_LENGTH = 10_000

    # issue 14: time-ordered, so every lookup's insert appends to the primary key's index.
    id = models.UUIDField(primary_key=True, default=time_ordered_uuid, editable=False)
    # No single-column index: interaction_recent_idx (customer, -started_at) serves every
    # read by customer, and each extra index is written by every screen-pop lookup's insert.
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.PROTECT, related_name="interactions", db_index=False
    )
    channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.PHONE)
    direction = models.CharField(
        max_length=8, choices=Direction.choices, default=Direction.INBOUND, db_default=Direction.INBOUND
    )
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    # Indexed without NULLs (interaction_agent_idx): an IVR-only or imported contact has no agent.
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="interactions",
        db_index=False,
    )
    queue = models.CharField(max_length=64, blank=True, default="", db_default="")
    # Indexed without NULLs (interaction_coded_idx): a new contact has no reason yet.
    reason = models.ForeignKey(ContactReason, null=True, blank=True, on_delete=models.PROTECT, db_index=False)
    reason_text = models.CharField(max_length=200, blank=True, default="", db_default="")
    summary = models.TextField(blank=True, default="", db_default="")
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True, default="", db_default="")
    # What the caller gave: {"phone": "+1...", ...} normalized, and what was verified.
    identifiers = models.JSONField(default=dict, blank=True)
    verified = models.JSONField(default=list, blank=True)
    ivr = models.JSONField(default=dict, blank=True)
    # Reads by case use interaction_case_idx (case, started_at); see `customer` above.
    case = models.ForeignKey(
        Case, null=True, blank=True, on_delete=models.SET_NULL, related_name="interactions", db_index=False
    )
    # Idempotency keys: the telephony/chat session id, or another system's id.
    source = models.CharField(max_length=32, default="api")
    call_id = models.CharField(max_length=128, null=True, blank=True)
    external_id = models.CharField(max_length=128, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source", "call_id"], condition=Q(call_id__isnull=False), name="interaction_call_id_once"
            ),
            models.UniqueConstraint(
                fields=["source", "external_id"],
                condition=Q(external_id__isnull=False),
                name="interaction_external_id_once",
            ),
            # issue 10: the API's bound on summary, kept by the database too.
            models.CheckConstraint(
                condition=LessThanOrEqual(Length("summary"), 10_000), name="interaction_summary_bounded"
            ),
        ]
        indexes = [
            # The card and the timeline: a customer's contacts, newest first.
            models.Index(fields=["customer", "-started_at"], name="interaction_recent_idx"),
            # Issue 14: the reason and case indexes leave out NULL, which every new contact has
            # (reason and case come at the wrap-up), so a screen pop's insert does not write them;
            # every read of them names a reason or a case, which implies NOT NULL to the planner.
            # Repeat-contact flag and recurring problems: same customer and reason in a window.
            models.Index(
                fields=["customer", "reason", "started_at"],
                condition=Q(reason__isnull=False),
                name="interaction_reason_idx",
            ),
            # Contacts by reason (reports; a reason's PROTECT check on delete).
            models.Index(fields=["reason"], condition=Q(reason__isnull=False), name="interaction_coded_idx"),
            # Case history on the card: contacts about one case.
            models.Index(fields=["case", "started_at"], condition=Q(case__isnull=False), name="interaction_case_idx"),
            # Issue 15: an agent's contacts (team filters and reports join on it; the SET_NULL on a user's deletion).
            models.Index(fields=["agent"], condition=Q(agent__isnull=False), name="interaction_agent_idx"),
            # Reports: contacts over a period (issue 14: a BRIN; the B-tree cost every lookup a write).
            BrinOnPostgres(fields=["started_at"], name="interaction_started_brin"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.started_at:%Y-%m-%d %H:%M}"


class Sentiment(models.TextChoices):
    POSITIVE = "positive"
    NEUTRAL = "neutral"
    NEGATIVE = "negative"


class FeedbackStatus(models.TextChoices):
    RECEIVED = "received"
    PROCESSED = "processed"


class Feedback(models.Model):
    """What a customer said about a contact; stored before the workflow runs."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    interaction = models.ForeignKey(
        Interaction, null=True, blank=True, on_delete=models.SET_NULL, related_name="feedback"
    )
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.PROTECT, related_name="feedback")
    rating = models.PositiveSmallIntegerField(null=True, blank=True)
    nps = models.PositiveSmallIntegerField(null=True, blank=True)
    text = models.TextField(blank=True)
    staff_named = models.JSONField(default=list, blank=True)
    # Ticked on the form: the customer agrees to be e-mailed about this feedback.
    contact_consent = models.BooleanField(default=False)
    # Identifiers given on the form, normalized; kept for linking, erased with the customer.
    identifiers = models.JSONField(default=dict, blank=True)
    sentiment = models.CharField(max_length=16, choices=Sentiment.choices, blank=True)
    sentiment_score = models.FloatField(null=True, blank=True)
    # issue 13: a supervisor who reclassified this feedback; the workflow then keeps their sentiment.
    sentiment_set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=16, choices=FeedbackStatus.choices, default=FeedbackStatus.RECEIVED)
    case = models.ForeignKey(Case, null=True, blank=True, on_delete=models.SET_NULL, related_name="feedback")
    received_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)
    # Outbox: set once the workflow message reached the broker; the sweep resends the rest.
    dispatched_at = models.DateTimeField(null=True, blank=True)
    # issue 10: the poster named the customer only by an identifier (no contact of theirs), so
    # anyone who knows an e-mail could have sent it; linked in the task, rate-limited per customer.
    unverified = models.BooleanField(default=False, db_default=False)

    # issue 11: dead letters. Runs of the workflow started (a worker killed mid-run counts
    # too); after CRM_WORKFLOW_MAX_ATTEMPTS it is dead-lettered (failed_at) for a person to retry.
    # Defaults in the database too: bulk loaders (bench/lookup_load.py COPY) name only older columns.
    attempts = models.PositiveSmallIntegerField(default=0, db_default=0)
    last_error = models.CharField(max_length=200, blank=True, default="", db_default="")
    failed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "feedback"
        constraints = [
            # issue 10: one feedback per contact; a repeat answers with the first.
            models.UniqueConstraint(
                fields=["interaction"], condition=Q(interaction__isnull=False), name="feedback_once_per_interaction"
            ),
            models.CheckConstraint(
                condition=Q(rating__isnull=True) | Q(rating__gte=1, rating__lte=5), name="feedback_rating_1_to_5"
            ),
            models.CheckConstraint(condition=Q(nps__isnull=True) | Q(nps__lte=10), name="feedback_nps_0_to_10"),
        ]
        indexes = [
            # The card: the customer's last feedback; recent-complaint flag.
            models.Index(fields=["customer", "-received_at"], name="feedback_recent_idx"),
            # Outbox sweep: feedback whose workflow message has not reached the broker.
            models.Index(fields=["received_at"], condition=Q(status="received"), name="feedback_pending_idx"),
            # issue 11: the admin's dead-letter filter and count (few rows: only dead ones).
            models.Index(fields=["-failed_at"], condition=Q(failed_at__isnull=False), name="feedback_dead_idx"),
        ]


class Recognition(models.Model):
    """Praise that reached a member of staff."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    feedback = models.ForeignKey(Feedback, on_delete=models.CASCADE, related_name="recognitions")
    staff = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="recognitions")
    interaction = models.ForeignKey(Interaction, null=True, blank=True, on_delete=models.SET_NULL)
    quote = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["feedback", "staff"], name="recognition_once_per_feedback_and_staff"),
        ]
        indexes = [models.Index(fields=["staff", "-created_at"], name="recognition_by_staff_idx")]


class FollowUpKind(models.TextChoices):
    THANK_YOU_EMAIL = "thank_you_email"
    THANK_YOU_CALLBACK = "thank_you_callback"
    SERVICE_RECOVERY = "service_recovery"
    CALLBACK = "callback"


class FollowUpStatus(models.TextChoices):
    OPEN = "open"
    DONE = "done"
    ESCALATED = "escalated"
    CANCELLED = "cancelled"


# Still owed to the customer: the escalation sweep and the supervisors' "complete" act on these.
OPEN_FOLLOW_UP = (FollowUpStatus.OPEN, FollowUpStatus.ESCALATED)


class FollowUp(models.Model):
    """Something someone owes a customer, with a deadline."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=24, choices=FollowUpKind.choices)
    status = models.CharField(max_length=16, choices=FollowUpStatus.choices, default=FollowUpStatus.OPEN)
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.PROTECT, related_name="follow_ups")
    feedback = models.ForeignKey(Feedback, null=True, blank=True, on_delete=models.CASCADE, related_name="follow_ups")
    case = models.ForeignKey(Case, null=True, blank=True, on_delete=models.SET_NULL, related_name="follow_ups")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="follow_ups"
    )
    channel = models.CharField(max_length=16, choices=Channel.choices, blank=True)
    note = models.TextField(blank=True)
    due_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    escalation_level = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints = [
            # Idempotent workflows: one follow-up of a kind per feedback.
            models.UniqueConstraint(
                fields=["feedback", "kind"], condition=Q(feedback__isnull=False), name="follow_up_once_per_feedback"
            ),
        ]
        indexes = [
            # Escalation sweep and the supervisors' queue: open follow-ups by deadline.
            models.Index(fields=["due_at"], condition=Q(status="open"), name="follow_up_open_due_idx"),
            models.Index(fields=["customer", "-created_at"], name="follow_up_by_customer_idx"),
        ]


class Notification(models.Model):
    """A message sent to a member of staff (also e-mailed); the supervisors' queue reads these."""

    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=32)
    # Idempotency: one notification per recipient, kind and subject object.
    key = models.CharField(max_length=100)
    # What the notification is about. Erasure finds it by these; a deleted subject takes
    # its notifications along, so no message quoting a customer is left unreachable.
    feedback = models.ForeignKey(
        Feedback, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    follow_up = models.ForeignKey(
        FollowUp, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    recognition = models.ForeignKey(
        Recognition, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    subject = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    emailed_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["recipient", "kind", "key"], name="notification_once"),
        ]
        indexes = [
            models.Index(fields=["recipient", "-created_at"], name="notification_inbox_idx"),
            # Unsent ones, oldest first (few rows: only those whose e-mail has not gone).
            models.Index(fields=["created_at"], condition=Q(emailed_at__isnull=True), name="notification_unsent_idx"),
        ]


# --- issue 11: the e-mail outbox -------------------------------------------------------------


class EmailStatus(models.TextChoices):
    PENDING = "pending"
    SENT = "sent"
    # Dead-lettered after CRM_EMAIL_MAX_ATTEMPTS failed sends; a person can retry it in the admin.
    FAILED = "failed"
    # No longer owed (the thank-you's follow-up was closed, the customer erased).
    CANCELLED = "cancelled"


class OutboundEmail(models.Model):
    """One e-mail to send, written in the transaction that decided it; crm.emails sends it.

    Marked sent only after the mail server accepted it, under a lease so a dead
    worker's claim expires. The id is the Message-ID on every attempt, so a re-send
    after an unknown outcome is recognisable as the same message.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Idempotency: one e-mail per notification, one thank-you per follow-up.
    key = models.CharField(max_length=120, unique=True)
    to = models.EmailField(max_length=254)
    subject = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    # What it is about: erasure finds it by these; deleting the subject deletes the e-mail.
    notification = models.OneToOneField(
        Notification, null=True, blank=True, on_delete=models.CASCADE, related_name="email"
    )
    follow_up = models.ForeignKey(FollowUp, null=True, blank=True, on_delete=models.CASCADE, related_name="emails")
    status = models.CharField(max_length=16, choices=EmailStatus.choices, default=EmailStatus.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    # The lease: who is sending it, until when. Also the back-off after a failed send.
    claimed_until = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="sent") | Q(sent_at__isnull=False), name="outbound_email_sent_has_time"
            ),
        ]
        indexes = [
            # emails_send_pending: unsent ones, oldest first (few rows: only those pending).
            models.Index(fields=["created_at"], condition=Q(status="pending"), name="outbound_email_pending_idx"),
            models.Index(fields=["status", "-created_at"], name="outbound_email_status_idx"),
        ]


class RecurringProblemStatus(models.TextChoices):
    OPEN = "open"
    RESOLVED = "resolved"


class RecurringProblem(models.Model):
    """A customer who keeps coming back about the same reason: fix the cause."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="recurring_problems")
    reason = models.ForeignKey(ContactReason, on_delete=models.PROTECT)
    status = models.CharField(
        max_length=16, choices=RecurringProblemStatus.choices, default=RecurringProblemStatus.OPEN
    )
    contact_count = models.PositiveIntegerField(default=0)
    first_contact_at = models.DateTimeField()
    last_contact_at = models.DateTimeField()
    interactions = models.ManyToManyField(Interaction, related_name="recurring_problems", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "reason"],
                condition=Q(status="open"),
                name="one_open_recurring_problem_per_reason",
            ),
        ]


class AuditAction(models.TextChoices):
    LOOKUP = "lookup"
    VIEW = "view"
    CREATE = "create"
    UPDATE = "update"
    MERGE = "merge"
    UNMERGE = "unmerge"  # issue 13
    DISMISS = "dismiss"  # issue 13: "not a duplicate" set or undone
    EXPORT = "export"
    ERASE = "erase"


# A contact import's audit row: {"import": job}. A customer import's also names its line.
CONTACT_IMPORT_AUDIT = Q(detail__has_key="import") & ~Q(detail__has_key="line")


class AccessAudit(models.Model):
    """Who viewed or changed which customer, when, in which contact. Append-only."""

    at = models.DateTimeField(auto_now_add=True)
    # actor and customer: served by audit_by_actor_idx / audit_by_customer_idx; single-column
    # indexes as well would only add writes to every lookup (each one appends a row here).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    action = models.CharField(max_length=16, choices=AuditAction.choices)
    customer = models.ForeignKey(Customer, null=True, on_delete=models.PROTECT, related_name="audit", db_index=False)
    # Indexed without NULLs (audit_interaction_idx): views, changes and imports name no contact.
    interaction = models.ForeignKey(Interaction, null=True, on_delete=models.SET_NULL, related_name="+", db_index=False)
    # Ids and counts only, never personal data.
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["customer", "-at"], name="audit_by_customer_idx"),
            models.Index(fields=["actor", "-at"], name="audit_by_actor_idx"),
            # Only the FK's SET_NULL on a contact's deletion reads it.
            models.Index(fields=["interaction"], condition=Q(interaction__isnull=False), name="audit_interaction_idx"),
            # Issue 15: has this contact import audited this customer yet (crm.imports.contacts_audit)?
            # Customer and job both in the key: the probe reads no other import's row from the table.
            # Only contact imports' rows are in it, so lookups and customer imports write nothing to it.
            models.Index(
                "customer",
                KeyTextTransform("import", "detail"),
                condition=CONTACT_IMPORT_AUDIT,
                name="audit_import_idx",
            ),
        ]

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValueError("The access audit is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("The access audit is append-only")


class MergeRecord(models.Model):
    """A merge, with every moved record's id, so it can be reviewed or reversed."""

    survivor = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="merges_received")
    duplicate = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="merges_given")
    merged_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    merged_at = models.DateTimeField(auto_now_add=True)
    moved = models.JSONField(default=dict)
    # issue 13: why a merge the preview warned about went ahead; who undid it and when.
    reason = models.TextField(blank=True)
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            # An undone merge no longer counts: the same pair may be merged again later.
            models.UniqueConstraint(
                fields=["duplicate"], condition=Q(undone_at__isnull=True), name="customer_merged_once"
            )
        ]


# --- issue 13: "not a duplicate" ------------------------------------------------------------


class DuplicateDismissal(models.Model):
    """A supervisor's judgement that two customers are different people (kept until undone).

    The pair is stored in primary-key order so one judgement covers both directions.
    """

    customer_low = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    customer_high = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=200, blank=True)
    dismissed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    dismissed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer_low", "customer_high"], name="dismissal_once_per_pair"),
            models.CheckConstraint(condition=Q(customer_low__lt=F("customer_high")), name="dismissal_pair_ordered"),
        ]


# --- issue 15: bulk import ------------------------------------------------------------------


class ImportKind(models.TextChoices):
    CUSTOMERS = "customers"
    INTERACTIONS = "interactions"


class ImportStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ImportJob(models.Model):
    """One file being imported; its progress commits with each batch, so a rerun resumes after it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=16, choices=ImportKind.choices)
    file_format = models.CharField(max_length=8)
    file_name = models.CharField(max_length=255)
    # Where the uploaded file waits for the worker (settings.CRM_IMPORT_DIR); the command reads in place.
    path = models.CharField(max_length=500)
    dry_run = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=ImportStatus.choices, default=ImportStatus.QUEUED)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The runner that holds the job and when it last committed a batch: another runner may take over
    # only after the claim went stale (a killed worker), and a batch commits only while its runner holds it.
    runner = models.CharField(max_length=64, blank=True, default="")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # Input lines up to here are committed (counts included): the resume point.
    last_line = models.PositiveIntegerField(default=0)
    rows_total = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    # The first CRM_IMPORT_MAX_REPORTED problems: [{line, field, message}]; the error file has every rejected line.
    errors = models.JSONField(default=list, blank=True)
    warnings = models.JSONField(default=list, blank=True)
    error_path = models.CharField(max_length=500, blank=True, default="")
    # The error file's length as of the last committed batch: a batch that wrote its rejected
    # lines, then never committed, left more, which a resumed run cuts off before appending.
    # NULL for jobs older than this field (their runs did not record it: nothing is cut).
    error_bytes = models.PositiveBigIntegerField(null=True, blank=True, default=0)
    failure = models.TextField(blank=True, default="")
    # When the problems listed and the error file were removed (CRM_IMPORT_KEEP_DAYS after the
    # end: they quote personal data); the counts stay.
    purged_at = models.DateTimeField(null=True, blank=True)
    # Runs in a row a passing database error ended before any batch committed (imports.STUCK_RUNS_MAX).
    stuck = models.PositiveSmallIntegerField(default=0, db_default=0)  # db_default: old workers insert without it

    class Meta:
        indexes = [
            # The sweep: unfinished jobs whose runner went quiet.
            models.Index(
                fields=["heartbeat_at"], condition=Q(status__in=["queued", "running"]), name="import_unfinished_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} import: {self.file_name}"


# --- issue 16: telephony platform events in, webhooks out ---------------------------------------


class PlatformEventOutcome(models.TextChoices):
    APPLIED = "applied"
    UNMATCHED_AGENT = "unmatched_agent"


class PlatformEvent(models.Model):
    """A telephony platform's event, once: replays of the same event id change nothing.

    Unmatched-agent rows are the admin's list of calls for agents nobody set up.
    """

    platform = models.CharField(max_length=16)
    event_id = models.CharField(max_length=200)
    received_at = models.DateTimeField(auto_now_add=True)
    event = models.CharField(max_length=16)
    call_id = models.CharField(max_length=128)
    agent_identity = models.CharField(max_length=255, blank=True)
    outcome = models.CharField(max_length=16, choices=PlatformEventOutcome.choices)
    interaction = models.ForeignKey(Interaction, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["platform", "event_id"], name="platform_event_once")]
        indexes = [models.Index(fields=["outcome", "-received_at"], name="platform_event_outcome_idx")]

    def __str__(self) -> str:
        return f"{self.platform} {self.event} {self.call_id}"


class WebhookEventType(models.TextChoices):
    FEEDBACK_PROCESSED = "feedback.processed"
    RECOGNITION_CREATED = "recognition.created"
    CASE_OPENED = "case.opened"
    FOLLOW_UP_OVERDUE = "follow_up.overdue"
    CUSTOMER_MERGED = "customer.merged"
    CUSTOMER_ERASED = "customer.erased"


def webhook_secret_new() -> str:
    import base64
    import secrets

    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


class WebhookEndpoint(models.Model):
    """A receiver of signed events (Standard Webhooks), registered by a supervisor in the admin."""

    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=100, default=webhook_secret_new, help_text="whsec_<base64>; share it.")
    event_types = models.JSONField(default=list, help_text="Event types it receives.")
    active = models.BooleanField(default=True)
    max_in_flight = models.PositiveSmallIntegerField(default=4, help_text="At most this many deliveries to it at once.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(max_in_flight__gte=1), name="webhook_max_in_flight_pos")]

    def __str__(self) -> str:
        return self.url


class WebhookDeliveryStatus(models.TextChoices):
    PENDING = "pending"
    SENDING = "sending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class WebhookDelivery(models.Model):
    """One event for one endpoint: the outbox row, written in the event's transaction.

    Its id is the webhook-id the receiver dedupes on; every retry reuses it.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event_type = models.CharField(max_length=32, choices=WebhookEventType.choices)
    # What the event is about, e.g. "recognition:42": one delivery per event per endpoint.
    event_key = models.CharField(max_length=100)
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(
        max_length=16, choices=WebhookDeliveryStatus.choices, default=WebhookDeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    # Retried until then (CRM_WEBHOOK_RETRY_HOURS after the event, or after "send again"), then failed.
    give_up_at = models.DateTimeField()
    # A sending row whose lease ran out was lost with its worker: it is pending again.
    lease_until = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event_type", "event_key"], name="webhook_delivery_once")
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=["pending", "sending"]),
                name="webhook_delivery_due_idx",
            ),
            models.Index(fields=["endpoint"], condition=Q(status="sending"), name="webhook_delivery_in_flight_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} -> {self.endpoint}"


class WebhookAttempt(models.Model):
    """One try at a delivery: what the receiver answered and how long it took."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    at = models.DateTimeField(auto_now_add=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=200, blank=True)
    response_excerpt = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["at"]


# --- end issue 16
