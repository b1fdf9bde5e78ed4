"""The supervisors' UI at /admin/: customers (360, duplicates, merge, export, erasure), queues, reports.

Every crm page needs the supervisor role (superusers have it) and model
permissions. The site itself admits staff as usual and anyone with the supervisor
role, which per the contract is just membership of the `supervisor` group. The
group gets its model permissions from migration 0003_supervisor_permissions. The tool pages (360, duplicates,
merge, export, erase, reports, follow-up completion) live in crm/admin_views.py
and are mounted here with each ModelAdmin's get_urls.
"""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.db.models import Count, Q
from django.http import HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator

from crm import admin_views, audit, desk, emails, follow_ups, imports, models, outbox, reports, tokens_admin
from crm.feedback import feedback_reclassify
from crm.login_limits import LockoutAwareAuthenticationForm
from crm.permissions import is_supervisor
from crm.selectors import customer_search
from crm.services import customer_update
from crm.webhooks import WebhookRefused, webhook_send_again, webhook_url_check  # issue 16

admin.site.site_header = "Goldfish — supervisors"
admin.site.site_title = "Goldfish"
admin.site.index_title = "Run the floor"
admin.site.index_template = "admin/goldfish_index.html"
admin.site.login_template = "admin/goldfish_login.html"  # issue 13: an agent who lands here gets a way back


def _admits(user) -> bool:
    return user.is_active and (user.is_staff or is_supervisor(user))


class SupervisorAuthenticationForm(LockoutAwareAuthenticationForm, AdminAuthenticationForm):
    """The admin login, open to supervisors whether or not someone ticked is_staff."""

    def confirm_login_allowed(self, user):
        if not _admits(user):
            raise self.get_invalid_login_error()


admin.site.has_permission = lambda request: _admits(request.user)  # type: ignore[method-assign]
admin.site.login_form = SupervisorAuthenticationForm


class SupervisorOnly:
    """Model permissions alone are not enough: the page needs the supervisor role too."""

    def has_module_permission(self, request):
        return is_supervisor(request.user) and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return is_supervisor(request.user) and super().has_view_permission(request, obj)

    def has_add_permission(self, request, *args):
        return is_supervisor(request.user) and super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None):
        return is_supervisor(request.user) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return is_supervisor(request.user) and super().has_delete_permission(request, obj)


class AuditedChangeView:
    """A change form shows one record's personal data: a GET that renders it is an audited read."""

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        if request.method == "GET" and response.status_code == 200:
            self.audit_read(request.user, self.get_object(request, object_id))
        return response

    def audit_read(self, actor, obj) -> None:
        raise NotImplementedError


class ReadOnly(SupervisorOnly):
    """Records written by the system; the admin shows them and changes nothing."""

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def team_filter(lookup: str, title: str = "team"):
    """A list filter by the team of the staff member reached through `lookup` (a user path)."""

    class TeamFilter(admin.SimpleListFilter):
        parameter_name = "team"

        def lookups(self, request, model_admin):
            return [(str(pk), name) for pk, name in models.Team.objects.order_by("name").values_list("pk", "name")]

        def queryset(self, request, queryset):
            if self.value():
                return queryset.filter(**{f"{lookup}__staff_profile__team_id": self.value()})
            return queryset

    TeamFilter.title = title
    return TeamFilter


def customer_link(customer) -> str:
    if customer is None:
        return "—"
    url = reverse("admin:crm_customer_360", args=[customer.pk])
    return format_html('<a href="{}">{}</a>', url, customer.display_name or "(no name)")


def feedback_words(feedback) -> str:
    """The customer's words with their score, contact and agent, linked to the feedback (issue 13)."""
    if feedback is None:
        return "—"
    score = ", ".join(
        part
        for part in (
            f"rating {feedback.rating}/5" if feedback.rating is not None else "",
            f"NPS {feedback.nps}" if feedback.nps is not None else "",
        )
        if part
    )
    contact = feedback.interaction
    agent = staff_name(contact.agent) if contact is not None and contact.agent_id else "—"
    return format_html(
        '<blockquote class="gf-quote">“{}”</blockquote><a href="{}">{}</a> · contact: {} · agent: {}',
        feedback.text or "(no comment)",
        reverse("admin:crm_feedback_change", args=[feedback.pk]),
        score or "feedback",
        contact.started_at.strftime("%d %b %H:%M") if contact is not None else "—",
        agent,
    )


def staff_name(user) -> str:
    if user is None:
        return "—"
    return user.get_full_name() or user.username


# --- taxonomy and staff ---------------------------------------------------------------------


@admin.register(models.ContactReason)
class ContactReasonAdmin(SupervisorOnly, admin.ModelAdmin):
    list_display = ("code", "label", "active")
    list_filter = ("active",)
    search_fields = ("code", "label")


@admin.register(models.Team)
class TeamAdmin(SupervisorOnly, admin.ModelAdmin):
    list_display = ("name", "supervisor")


@admin.register(models.StaffProfile)
class StaffProfileAdmin(SupervisorOnly, admin.ModelAdmin):
    list_display = ("user", "team", "supervisor")
    list_filter = ("team",)
    # --- issue 16: the agent's identity on each telephony platform
    search_fields = ("user__username", "twilio_worker_sid", "twilio_contact_uri", "connect_agent", "genesys_user_id")
    fieldsets = (
        (None, {"fields": ("user", "team", "supervisor")}),
        (
            "Telephony identities (calls from these platforms pop this agent's page)",
            {"fields": ("twilio_worker_sid", "twilio_contact_uri", "connect_agent", "genesys_user_id")},
        ),
    )


# --- customers ----------------------------------------------------------------------------------


class IdentityInline(admin.TabularInline):
    model = models.Identity
    extra = 0
    fields = ("kind", "value", "normalized", "verified_at", "source")
    # Editing a value here would bypass normalization; a wrong one is deleted and re-added via the API.
    readonly_fields = ("kind", "value", "normalized", "source")

    def has_add_permission(self, request, obj=None):
        # New identifiers go through the API so they are normalized and checked.
        return False


@admin.register(models.Customer)
class CustomerAdmin(AuditedChangeView, SupervisorOnly, admin.ModelAdmin):
    list_display = ("name_360", "preferred_name", "tier", "language", "created_at")
    list_filter = ("tier",)
    search_fields = ("display_name",)
    search_help_text = "Name, or a phone / e-mail / account number in any written form."
    fields = ("display_name", "preferred_name", "language", "timezone", "tier")
    inlines = [IdentityInline]
    actions = ["merge_selected"]
    show_full_result_count = False

    def get_queryset(self, request):
        return super().get_queryset(request).live()

    def get_search_results(self, request, queryset, search_term):
        """The same search agents use: a phone in any form, an e-mail, an account or a name."""
        if not search_term.strip():
            return queryset, False
        found = customer_search(search_term, limit=200)
        audit.customers_search_view(request.user, found, via="admin_changelist")
        return queryset.filter(pk__in=[c.pk for c in found]), False

    def has_delete_permission(self, request, obj=None):
        # Customers are never deleted: the erase page anonymizes them and keeps report counts.
        return False

    def audit_read(self, actor, obj):
        audit.customer_view(actor, obj, via="admin_change")

    def save_model(self, request, obj, form, change):
        """Edits go through the service, so they are audited like API edits."""
        customer_update(actor=request.user, customer=obj, **{name: getattr(obj, name) for name in form.changed_data})

    @admin.display(description="customer", ordering="display_name")
    def name_360(self, obj):
        return customer_link(obj)

    @admin.action(description="Merge the two selected customers (preview first)")
    def merge_selected(self, request, queryset):
        chosen = list(queryset.order_by("created_at")[:3])
        if len(chosen) != 2:
            self.message_user(request, "Select exactly two customers to merge.", messages.WARNING)
            return None
        return redirect("admin:crm_customer_merge", chosen[0].pk, chosen[1].pk)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("duplicates/", view(admin_views.duplicates), name="crm_customer_duplicates"),
            # issue 13: "not a duplicate", its undo, and unmerge
            path(
                "<uuid:customer_id>/not-duplicate/<uuid:duplicate_id>/",
                view(admin_views.duplicate_dismiss),
                name="crm_customer_dismiss",
            ),
            path(
                "dismissals/<int:dismissal_id>/undo/",
                view(admin_views.duplicate_dismissal_undo),
                name="crm_dismissal_undo",
            ),
            path("<uuid:customer_id>/unmerge/<int:merge_id>/", view(admin_views.customer_unmerge), name="crm_unmerge"),
            path("<uuid:customer_id>/360/", view(admin_views.customer_360), name="crm_customer_360"),
            path(
                "<uuid:customer_id>/merge/<uuid:duplicate_id>/",
                view(admin_views.customer_merge),
                name="crm_customer_merge",
            ),
            path("<uuid:customer_id>/export/", view(admin_views.customer_export), name="crm_customer_export"),
            path("<uuid:customer_id>/erase/", view(admin_views.customer_erase), name="crm_customer_erase"),
            *super().get_urls(),
        ]


# --- contacts and reports -----------------------------------------------------------------------


@admin.register(models.Interaction)
class InteractionAdmin(AuditedChangeView, ReadOnly, admin.ModelAdmin):
    list_display = ("started_at", "channel", "customer_name", "agent", "reason", "outcome")
    list_filter = ("channel", "outcome", "reason", team_filter("agent"))
    date_hierarchy = "started_at"
    list_select_related = ("customer", "agent", "reason")
    show_full_result_count = False
    ordering = ("-started_at",)

    @admin.display(description="customer")
    def customer_name(self, obj):
        return customer_link(obj.customer)

    def audit_read(self, actor, obj):
        audit.interaction_view(actor, obj, via="admin_change")

    def get_urls(self):
        return [
            path("reports/", self.admin_site.admin_view(admin_views.reports), name="crm_reports"),
            *super().get_urls(),
        ]


# --- queues -------------------------------------------------------------------------------------


class ToReviewFilter(admin.SimpleListFilter):
    title = "review"
    parameter_name = "review"

    def lookups(self, request, model_admin):
        return [("yes", "Needs review (unhappy, not yet handled)"), ("praise", "Praise")]

    def queryset(self, request, queryset):
        if self.value() == "yes":  # issue 13: what the workflow judged negative, not every middling score
            return desk.feedback_to_review(queryset)
        if self.value() == "praise":
            return queryset.filter(Q(sentiment=models.Sentiment.POSITIVE) | Q(rating__gte=4))
        return queryset


class DeadLetterFilter(admin.SimpleListFilter):
    """issue 11: workflows that failed CRM_WORKFLOW_MAX_ATTEMPTS times and wait for a person."""

    title = "workflow"
    parameter_name = "workflow"

    def lookups(self, request, model_admin):
        return [("dead", "Dead-lettered (failed, retry by hand)")]

    def queryset(self, request, queryset):
        if self.value() == "dead":
            return queryset.filter(failed_at__isnull=False, status=models.FeedbackStatus.RECEIVED)
        return queryset


def _warn_dead_letters(request, count: int, what: str) -> None:
    if count:
        messages.warning(request, f"{count} {what} dead-lettered: filter them and use the retry action.")


@admin.register(models.Feedback)
class FeedbackAdmin(AuditedChangeView, SupervisorOnly, admin.ModelAdmin):
    list_display = (
        "received_at",
        "customer_name",
        "rating",
        "nps",
        "sentiment",
        "said",
        "status",
        "case",
        "unverified",
    )
    list_filter = (ToReviewFilter, DeadLetterFilter, "status", "sentiment", "rating", team_filter("interaction__agent"))

    @admin.action(description="Retry the workflow of the selected dead-lettered feedback")
    def retry_workflow(self, request, queryset):
        retried = outbox.feedback_retry(actor=request.user, ids=queryset.values_list("pk", flat=True))
        self.message_user(request, f"{retried} workflow(s) sent again.", messages.SUCCESS)

    def changelist_view(self, request, extra_context=None):
        if request.method == "GET":
            _warn_dead_letters(request, outbox.feedback_dead_count(), "feedback workflow(s)")
        return super().changelist_view(request, extra_context)

    date_hierarchy = "received_at"
    list_select_related = ("customer", "case")
    ordering = ("-received_at",)
    fields = ("customer", "interaction", "rating", "nps", "text", "staff_named", "sentiment", "status", "case")
    readonly_fields = ("customer", "interaction", "rating", "nps", "text", "staff_named", "sentiment", "unverified")
    raw_id_fields = ("case",)
    actions = ["reclassify_negative", "reclassify_neutral", "reclassify_positive", "retry_workflow"]

    def has_add_permission(self, request, *args):
        return False

    @admin.display(description="customer")
    def customer_name(self, obj):
        return customer_link(obj.customer)

    # issue 13: a supervisor's reclassification re-runs the workflow (audited, idempotent).
    def _reclassify(self, request, queryset, sentiment):
        changed = sum(
            feedback_reclassify(feedback_id=pk, sentiment=sentiment, actor=request.user)
            for pk in queryset.values_list("pk", flat=True)
        )
        self.message_user(request, f"{changed} feedback reclassified as {sentiment}.", messages.SUCCESS)

    @admin.action(description="Reclassify as negative (opens a recovery case)")
    def reclassify_negative(self, request, queryset):
        self._reclassify(request, queryset, models.Sentiment.NEGATIVE)

    @admin.action(description="Reclassify as neutral")
    def reclassify_neutral(self, request, queryset):
        self._reclassify(request, queryset, models.Sentiment.NEUTRAL)

    @admin.action(description="Reclassify as positive (recognizes the agent)")
    def reclassify_positive(self, request, queryset):
        self._reclassify(request, queryset, models.Sentiment.POSITIVE)

    @admin.display(description="what they said")
    def said(self, obj):
        return Truncator(obj.text).chars(90)

    def audit_read(self, actor, obj):
        audit.feedback_view(actor, obj, via="admin_change")


class ReportPeriodFilter(admin.SimpleListFilter):
    """issue 13: the reports' period selector (complete weeks), so the board and the report agree."""

    title = "period"
    parameter_name = "weeks"

    def lookups(self, request, model_admin):
        return [(str(w), f"last {w} complete weeks") for w in (4, 8, 12, 26, 52)]

    def queryset(self, request, queryset):
        if not (self.value() or "").isdigit():
            return queryset
        period = reports.Period.complete_weeks(min(max(int(self.value()), 1), 52))
        return queryset.filter(created_at__gte=period.start, created_at__lt=period.end)


@admin.register(models.Recognition)
class RecognitionAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ("created_at", "agent", "team", "quote_short", "customer_rating")
    list_filter = (ReportPeriodFilter, team_filter("staff"), ("staff", admin.RelatedOnlyFieldListFilter))
    date_hierarchy = "created_at"
    list_select_related = ("staff", "staff__staff_profile__team", "feedback")
    ordering = ("-created_at",)
    change_list_template = "admin/crm/recognition/change_list.html"

    @admin.display(description="agent", ordering="staff__username")
    def agent(self, obj):
        return staff_name(obj.staff)

    @admin.display(description="team")
    def team(self, obj):
        profile = getattr(obj.staff, "staff_profile", None)
        return profile.team.name if profile and profile.team else "—"

    @admin.display(description="what the customer said")
    def quote_short(self, obj):
        return Truncator(obj.quote).chars(120)

    @admin.display(description="rating")
    def customer_rating(self, obj):
        return "★" * (obj.feedback.rating or 0) or "—"

    def changelist_view(self, request, extra_context=None):
        """The board: praise per agent over the filtered rows, one grouped query."""
        response = super().changelist_view(request, extra_context=extra_context)
        cl = getattr(response, "context_data", {}).get("cl")
        if cl is not None:
            board = (
                cl.queryset.order_by()
                .values("staff__username", "staff__first_name", "staff__last_name", "staff__staff_profile__team__name")
                .annotate(count=Count("id"))
                .order_by("-count", "staff__username")[:12]
            )
            weeks = request.GET.get("weeks", "")
            if weeks.isdigit():
                period = reports.Period.complete_weeks(min(max(int(weeks), 1), 52))
                response.context_data["board_period"] = (
                    f"{weeks} complete weeks, {period.start:%d %b %Y} to {period.last_day:%d %b %Y}"
                )
            else:
                response.context_data["board_period"] = "all time (choose a period on the right)"
            response.context_data["board"] = [
                {
                    "name": f"{r['staff__first_name']} {r['staff__last_name']}".strip() or r["staff__username"],
                    "team": r["staff__staff_profile__team__name"] or "",
                    "count": r["count"],
                }
                for r in board
            ]
        return response


_DAY = dt.timedelta(days=1)


class DueFilter(admin.SimpleListFilter):
    title = "deadline"
    parameter_name = "due"

    def lookups(self, request, model_admin):
        return [("overdue", "Overdue"), ("today", "Due in 24 h"), ("escalated", "Escalated"), ("done", "Done")]

    def queryset(self, request, queryset):
        now = timezone.now()
        value = self.value()
        if value == "overdue":
            return queryset.filter(status=models.FollowUpStatus.OPEN, due_at__lt=now)
        if value == "today":
            return queryset.filter(status=models.FollowUpStatus.OPEN, due_at__gte=now, due_at__lt=now + _DAY)
        if value == "escalated":
            return queryset.filter(status=models.FollowUpStatus.ESCALATED)
        if value == "done":
            return queryset.filter(status=models.FollowUpStatus.DONE)
        return queryset


@admin.register(models.FollowUp)
class FollowUpAdmin(SupervisorOnly, admin.ModelAdmin):
    list_display = ("due", "kind", "status", "customer_name", "owner", "escalation_level", "complete_button")
    list_filter = (DueFilter, "status", "kind", team_filter("owner"))
    date_hierarchy = "due_at"
    list_select_related = ("customer", "owner", "feedback")
    ordering = ("due_at",)
    fields = (
        "kind",
        "status",
        "customer",
        "customer_said",
        "feedback",
        "case",
        "owner",
        "channel",
        "note",
        "due_at",
        "completed_at",
    )
    readonly_fields = ("kind", "customer", "customer_said", "feedback", "case", "completed_at")
    actions = ["mark_done"]

    def has_add_permission(self, request, *args):
        return False

    # issue 13: overdue first, then due soonest, then finished; owners are staff with a desk role.
    def get_ordering(self, request):
        return (desk.urgency(open_statuses=models.OPEN_FOLLOW_UP), "due_at")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "owner":
            kwargs["queryset"] = desk.desk_staff()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="what the customer said")
    def customer_said(self, obj):
        return feedback_words(obj.feedback)

    @admin.display(description="due", ordering="due_at")
    def due(self, obj):
        overdue = obj.status == models.FollowUpStatus.OPEN and obj.due_at < timezone.now()
        label = obj.due_at.strftime("%d %b %H:%M")
        if overdue:
            return format_html(
                '<span class="gf-badge gf-bad gf-overdue">{}</span> {}', desk.lateness(obj.due_at), label
            )
        if obj.status == models.FollowUpStatus.ESCALATED:
            return format_html('<span class="gf-badge gf-warn">escalated</span> {}', label)
        return label

    @admin.display(description="customer")
    def customer_name(self, obj):
        return customer_link(obj.customer)

    @admin.display(description="")
    def complete_button(self, obj):
        if obj.status not in models.OPEN_FOLLOW_UP:
            return format_html('<span class="gf-muted">{}</span>', obj.get_status_display())
        url = reverse("admin:crm_followup_complete", args=[obj.pk])
        return format_html(
            '<button type="submit" form="gf-complete" formaction="{}" class="gf-done">Done ✓</button>', url
        )

    @admin.action(description="Mark the selected follow-ups done")
    def mark_done(self, request, queryset):
        done = follow_ups.follow_ups_complete(actor=request.user, ids=queryset.values_list("pk", flat=True))
        self.message_user(request, f"{done} follow-up(s) marked done.", messages.SUCCESS)

    def get_urls(self):
        return [
            path(
                "<uuid:follow_up_id>/complete/",
                self.admin_site.admin_view(admin_views.follow_up_complete),
                name="crm_followup_complete",
            ),
            *super().get_urls(),
        ]


class ServiceRecoveryFilter(admin.SimpleListFilter):
    title = "queue"
    parameter_name = "queue"

    def lookups(self, request, model_admin):
        return [("recovery", "Service recovery, open"), ("open", "All open")]

    def queryset(self, request, queryset):
        open_ = Q(status__in=[models.CaseStatus.OPEN, models.CaseStatus.IN_PROGRESS])
        if self.value() == "recovery":
            return queryset.filter(open_, kind=models.CaseKind.SERVICE_RECOVERY)
        if self.value() == "open":
            return queryset.filter(open_)
        return queryset


@admin.register(models.Case)
class CaseAdmin(SupervisorOnly, admin.ModelAdmin):
    list_display = ("due", "subject", "kind", "status", "customer_name", "owner", "opened_at")
    list_filter = (ServiceRecoveryFilter, "kind", "status", "reason", team_filter("owner"))
    date_hierarchy = "opened_at"
    list_select_related = ("customer", "owner")
    ordering = ("-opened_at",)
    fields = (
        "subject",
        "customer_said",
        "kind",
        "reason",
        "status",
        "customer",
        "owner",
        "opened_at",
        "due_at",
        "resolved_at",
    )
    readonly_fields = ("customer", "customer_said", "opened_at")
    search_fields = ("subject",)

    def has_add_permission(self, request, *args):
        return False

    # issue 13: overdue first, then due soonest, then closed; owners are staff with a desk role.
    def get_ordering(self, request):
        return (desk.urgency(open_statuses=desk.OPEN_CASE), "due_at", "-opened_at")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "owner":
            kwargs["queryset"] = desk.desk_staff()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="due", ordering="due_at")
    def due(self, obj):
        if obj.due_at is None:
            return "—"
        label = obj.due_at.strftime("%d %b %H:%M")
        if obj.status in desk.OPEN_CASE and obj.due_at < timezone.now():
            return format_html(
                '<span class="gf-badge gf-bad gf-overdue">{}</span> {}', desk.lateness(obj.due_at), label
            )
        return label

    @admin.display(description="what the customer said")
    def customer_said(self, obj):
        return (
            format_html_join(
                "", "<div>{}</div>", ((feedback_words(f),) for f in obj.feedback.select_related("interaction__agent"))
            )
            or "—"
        )

    @admin.display(description="customer")
    def customer_name(self, obj):
        return customer_link(obj.customer)


@admin.register(models.RecurringProblem)
class RecurringProblemAdmin(SupervisorOnly, admin.ModelAdmin):
    list_display = ("last_contact_at", "customer_name", "reason", "contact_count", "first_contact_at", "status")
    list_filter = ("status", "reason", team_filter("interactions__agent"))
    date_hierarchy = "last_contact_at"
    list_select_related = ("customer", "reason")
    ordering = ("-last_contact_at",)
    fields = ("customer", "reason", "status", "contact_count", "first_contact_at", "last_contact_at")
    readonly_fields = ("customer", "reason", "contact_count", "first_contact_at", "last_contact_at")

    def get_queryset(self, request):
        # The team filter joins through interactions; distinct keeps one row per problem.
        return super().get_queryset(request).distinct()

    def has_add_permission(self, request, *args):
        return False

    @admin.display(description="customer")
    def customer_name(self, obj):
        return customer_link(obj.customer)


@admin.register(models.Notification)
class NotificationAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ("created_at", "recipient", "kind", "subject", "emailed_at", "read_at")
    list_filter = ("kind", team_filter("recipient"))
    date_hierarchy = "created_at"
    list_select_related = ("recipient",)
    ordering = ("-created_at",)


@admin.register(models.OutboundEmail)
class OutboundEmailAdmin(ReadOnly, admin.ModelAdmin):
    """issue 11: the e-mail outbox; dead-lettered e-mails can be retried."""

    list_display = ("created_at", "to", "subject", "status", "attempts", "sent_at", "last_error")
    list_filter = ("status",)
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    fields = ("key", "to", "subject", "status", "attempts", "last_error", "created_at", "sent_at", "claimed_until")
    actions = ["retry_email"]

    @admin.action(description="Retry the selected dead-lettered e-mails", permissions=["view"])
    def retry_email(self, request, queryset):
        retried = emails.emails_retry(actor=request.user, ids=queryset.values_list("pk", flat=True))
        self.message_user(request, f"{retried} e-mail(s) will be sent again by the next sweep.", messages.SUCCESS)

    def changelist_view(self, request, extra_context=None):
        if request.method == "GET":
            _warn_dead_letters(request, emails.emails_dead_count(), "e-mail(s)")
        return super().changelist_view(request, extra_context)


# --- audit ----------------------------------------------------------------------------------------


@admin.register(models.MergeRecord)
class MergeRecordAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ("merged_at", "survivor_link", "duplicate", "merged_by")
    date_hierarchy = "merged_at"
    list_select_related = ("survivor", "duplicate", "merged_by")
    ordering = ("-merged_at",)

    @admin.display(description="survivor")
    def survivor_link(self, obj):
        return customer_link(obj.survivor)


@admin.register(models.AccessAudit)
class AccessAuditAdmin(ReadOnly, admin.ModelAdmin):
    """Append-only: readable here, never added, changed or deleted."""

    list_display = ("at", "actor", "action", "customer", "interaction", "detail")
    list_filter = ("action",)
    date_hierarchy = "at"
    list_select_related = ("actor", "customer", "interaction")
    ordering = ("-at",)
    show_full_result_count = False
    actions = None


# --- issue 15: bulk import ---------------------------------------------------------------------


class ImportUploadForm(forms.ModelForm):
    upload = forms.FileField(label="File", help_text="CSV with a header line, or JSON Lines (.jsonl), UTF-8.")

    class Meta:
        model = models.ImportJob
        fields = ("kind", "dry_run")
        help_texts = {"dry_run": "Validate every row and report; write nothing."}

    def clean_upload(self):
        """A file that cannot be imported is refused here, with why, before anything is stored."""
        upload = self.cleaned_data["upload"]
        try:
            imports.utf8_lines(upload.chunks())
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None
        upload.seek(0)
        return upload


@admin.register(models.ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    """Supervisors upload a file, watch its progress and read the report; the job itself is the system's."""

    list_display = ("created_at", "file_name", "kind", "status", "progress", "created", "updated", "unchanged",
                    "rejected", "started_by")  # fmt: skip
    list_filter = ("kind", "status")
    ordering = ("-created_at",)
    list_select_related = ("started_by",)
    readonly_fields = (
        "file_name", "kind", "file_format", "dry_run", "status", "progress", "created", "updated", "unchanged",
        "rejected", "started_by", "created_at", "finished_at", "report", "failure",
    )  # fmt: skip

    def has_module_permission(self, request):
        return is_supervisor(request.user)

    def has_view_permission(self, request, obj=None):
        return is_supervisor(request.user)

    def has_add_permission(self, request):
        return is_supervisor(request.user)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ImportUploadForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("upload", "kind", "dry_run")
        return self.readonly_fields

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        """Store the upload and start the job; the page then shows its progress."""
        job = imports.import_upload_start(
            actor=request.user,
            upload=form.cleaned_data["upload"],
            kind=form.cleaned_data["kind"],
            file_format=None,
            dry_run=form.cleaned_data["dry_run"],
        )
        for model_field in job._meta.concrete_fields:
            setattr(obj, model_field.attname, getattr(job, model_field.attname))
        obj._state.adding = False

    def log_addition(self, request, obj, message):
        """The job records who started it; the admin log would keep the file name beside it for good."""

    def response_add(self, request, obj, post_url_continue=None):
        return HttpResponseRedirect(reverse("admin:crm_importjob_change", args=[obj.pk]))

    @admin.display(description="progress")
    def progress(self, obj):
        if obj.rows_total:
            return f"{obj.rows_done:,} / {obj.rows_total:,} rows ({100 * obj.rows_done // max(obj.rows_total, 1)} %)"
        return f"{obj.rows_done:,} rows"

    @admin.display(description="report")
    def report(self, obj):
        if obj.purged_at:
            return format_html(
                "<p>Removed on {}: the problems listed and the error file, which quoted personal data "
                "(kept only for a while after an import ends). The counts above stay.</p>",
                date_format(timezone.localtime(obj.purged_at), "DATETIME_FORMAT"),
            )
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                [("rejected", p["line"], p["field"] or "—", p["message"]) for p in obj.errors[:200]]
                + [("warning", p["line"], p["field"] or "—", p["message"]) for p in obj.warnings[:200]]
            ),
        )
        link = (
            format_html(
                '<p><a href="{}">Download the rejected lines with their reason</a> — fix them and import that file '
                "again.</p>",
                reverse("import-errors", args=[obj.pk]),
            )
            if obj.error_path
            else ""
        )
        if not rows:
            return format_html("{}<p>No problems.</p>", link)
        return format_html(
            '{}<table class="import-report"><thead><tr><th></th><th>line</th><th>field</th><th>problem</th></tr>'
            "</thead><tbody>{}</tbody></table>",
            link,
            rows,
        )


# --- Issue 10: API tokens (issue, rotate, revoke) for superusers ---------------------------
tokens_admin.register(admin.site)


# --- issue 16: telephony platform events and webhooks out ----------------------------------------


class UnmatchedFilter(admin.SimpleListFilter):
    title = "outcome"
    parameter_name = "outcome"

    def lookups(self, request, model_admin):
        return models.PlatformEventOutcome.choices

    def queryset(self, request, queryset):
        return queryset.filter(outcome=self.value()) if self.value() else queryset


@admin.register(models.PlatformEvent)
class PlatformEventAdmin(ReadOnly, admin.ModelAdmin):
    """Platform call events; "unmatched_agent" rows are calls for an identity no staff profile has."""

    list_display = ("received_at", "platform", "event", "call_id", "agent_identity", "outcome", "interaction_id")
    list_filter = (UnmatchedFilter, "platform")
    search_fields = ("call_id", "agent_identity")
    date_hierarchy = "received_at"
    ordering = ("-received_at",)

    def changelist_view(self, request, extra_context=None):
        unmatched = models.PlatformEvent.objects.filter(outcome=models.PlatformEventOutcome.UNMATCHED_AGENT)
        identities = list(unmatched.order_by().values_list("platform", "agent_identity").distinct()[:10])
        if identities:
            messages.warning(
                request,
                "Calls arrived for agents nobody has set up: "
                + ", ".join(f"{platform} {identity}" for platform, identity in identities)
                + ". Add the identity to the agent's staff profile.",
            )
        return super().changelist_view(request, extra_context)


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(max_length=500, assume_scheme="https")
    event_types = forms.MultipleChoiceField(
        choices=models.WebhookEventType.choices, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = models.WebhookEndpoint
        fields = ("url", "secret", "event_types", "active", "max_in_flight")

    def clean_url(self):
        url = self.cleaned_data["url"]
        try:
            webhook_url_check(url)
        except WebhookRefused as exc:
            raise forms.ValidationError(f"Refused: {exc}") from None
        return url


@admin.register(models.WebhookEndpoint)
class WebhookEndpointAdmin(SupervisorOnly, admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ("url", "active", "event_types", "max_in_flight", "created_at")
    list_filter = ("active",)


class WebhookAttemptInline(admin.TabularInline):
    model = models.WebhookAttempt
    fields = ("at", "status_code", "latency_ms", "error", "response_excerpt")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(models.WebhookDelivery)
class WebhookDeliveryAdmin(SupervisorOnly, admin.ModelAdmin):
    """Every delivery and each attempt at it; "send again" queues it now (same webhook-id)."""

    list_display = ("created_at", "event_type", "endpoint", "status", "attempts", "next_attempt_at", "delivered_at")
    list_filter = ("status", "event_type", "endpoint")
    list_select_related = ("endpoint",)
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    readonly_fields = (
        "id",
        "endpoint",
        "event_type",
        "event_key",
        "payload",
        "created_at",
        "status",
        "attempts",
        "next_attempt_at",
        "give_up_at",
        "lease_until",
        "delivered_at",
    )
    inlines = [WebhookAttemptInline]
    actions = ["send_again"]

    def has_add_permission(self, request, *args):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Send again", permissions=["change"])
    def send_again(self, request, queryset):
        sent = webhook_send_again(queryset.values_list("pk", flat=True))
        self.message_user(request, f"{sent} deliveries queued to send again.", messages.SUCCESS)


# --- end issue 16
