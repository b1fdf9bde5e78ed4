"""The supervisors' tool pages inside the admin: customer 360, duplicates, merge, export, erase, reports.

Thin views: check the role, call a selector or a privacy/report function, render.
Mounted by crm/admin.py (ModelAdmin.get_urls), behind admin_site.admin_view
(login, is_staff) and `supervisor_required` (the supervisor role).
"""

from __future__ import annotations

import csv
import json
from functools import wraps

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from crm import audit, charts, follow_ups, merges, privacy
from crm import duplicates as dup
from crm import reports as rep
from crm.card import customer_card
from crm.db_router import reads_may_lag
from crm.exceptions import Conflict, DomainError
from crm.models import (
    OPEN_FOLLOW_UP,
    AccessAudit,
    CaseStatus,
    ContactReason,
    Customer,
    DuplicateDismissal,
    Fact,
    FollowUp,
    MergeRecord,
    Preference,
    Team,
    contact_counts,
)
from crm.permissions import is_supervisor
from crm.selectors import TIMELINE_PAGE, customer_timeline, live_customers, timeline_cursor, timeline_cursor_parse
from crm.surveys import survey_suppressed_until

# History rows shown per customer on the 360 page; older ones are in the export.
HISTORY_LIMIT = 100
FLAG_LABELS = {
    "repeat_contact": "repeat contact",
    "recent_complaint": "recent complaint",
    "vip": "VIP",
    "do_not_call": "do not call",
    "new_customer": "new customer",
}


def supervisor_required(view):
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not is_supervisor(request.user):
            raise PermissionDenied("This page needs the supervisor role.")
        return view(request, *args, **kwargs)

    return wrapped


def _page(request, template: str, title: str, **context) -> TemplateResponse:
    return TemplateResponse(
        request,
        template,
        {**admin.site.each_context(request), "title": title, "opts": Customer._meta, **context},
    )


# --- customer 360 ----------------------------------------------------------------------------------


@supervisor_required
@reads_may_lag
def customer_360(request, customer_id):
    """One customer whole: identities, preferences and facts with their source, flags, the timeline."""
    customer = get_object_or_404(Customer, pk=customer_id)
    if customer.merged_into_id is not None:
        messages.info(request, "This customer was merged; showing the customer it was merged into.")
        return redirect("admin:crm_customer_360", customer.merged_into_id)
    try:
        cursor = timeline_cursor_parse(request.GET["after"]) if request.GET.get("after") else None
    except ValueError:  # not a cursor this page wrote (or an impossible date): show the newest page
        cursor = None
    audit.customer_view(request.user, customer, via="admin_360")

    erased = customer.erased_at is not None
    card = customer_card(customer) if not erased else {"flags": [], "open_cases": []}
    entries = customer_timeline(customer, cursor=cursor, limit=TIMELINE_PAGE)
    # One indexed count per table (a single joined aggregate would multiply the rows).
    counts = {
        "contacts": customer.interactions.filter(contact_counts()).count(),  # issue 12: contacts that count
        "open_cases": customer.cases.filter(status__in=[CaseStatus.OPEN, CaseStatus.IN_PROGRESS]).count(),
        "feedback": customer.feedback.count(),
        "open_follow_ups": customer.follow_ups.filter(status__in=OPEN_FOLLOW_UP).count(),
    }
    preferences = list(
        Preference.objects.filter(customer=customer)
        .select_related("recorded_by", "interaction")
        .order_by("key", "-is_current", "-recorded_at")[:HISTORY_LIMIT]
    )
    facts = list(
        Fact.objects.filter(customer=customer)
        .select_related("recorded_by", "interaction")
        .order_by("key", "-is_current", "-recorded_at")[:HISTORY_LIMIT]
    )
    return _page(
        request,
        "admin/crm/customer/customer_360.html",
        customer.display_name or "Erased customer",
        customer=customer,
        erased=erased,
        identities=customer.identities.order_by("kind", "created_at"),
        preferences=preferences,
        facts=facts,
        flags=[{"code": f, "label": FLAG_LABELS.get(f, f.replace("_", " "))} for f in card["flags"]],
        counts=counts,
        timeline=entries,
        newer=bool(cursor),
        next_cursor=timeline_cursor(entries[-1]) if len(entries) == TIMELINE_PAGE else None,
        merges=MergeRecord.objects.filter(survivor=customer).select_related("duplicate", "merged_by")[:20],
        recent_access=AccessAudit.objects.filter(customer=customer).select_related("actor").order_by("-at")[:8],
        survey_until=survey_suppressed_until(customer.pk) if not erased else None,  # issue 13
        reason_labels=dict(ContactReason.objects.values_list("code", "label")),  # issue 13: labels, not codes
    )


# --- duplicates and merge ---------------------------------------------------------------------------


@supervisor_required
def duplicates(request):
    likely_only = request.GET.get("show") == "likely"
    pairs = dup.duplicate_pairs(likely_only=likely_only)
    return _page(
        request,
        "admin/crm/customer/duplicates.html",
        "Possible duplicates",
        pairs=pairs,
        likely_only=likely_only,
        likely_score=dup.LIKELY_SCORE,
        dismissals=DuplicateDismissal.objects.select_related("customer_low", "customer_high", "dismissed_by").order_by(
            "-dismissed_at"
        )[:50],
    )


# issue 13: "not a duplicate" and its undo; unmerge.
@supervisor_required
@require_POST
def duplicate_dismiss(request, customer_id, duplicate_id):
    try:
        merges.duplicate_dismiss(
            actor=request.user, customer_id=customer_id, other_id=duplicate_id, reason=request.POST.get("reason", "")
        )
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Marked as two different people; the pair is no longer offered for merging.")
    return redirect("admin:crm_customer_duplicates")


@supervisor_required
@require_POST
def duplicate_dismissal_undo(request, dismissal_id):
    if merges.duplicate_dismissal_undo(actor=request.user, dismissal_id=dismissal_id):
        messages.success(request, "Undone: the pair is offered for merging again.")
    return redirect("admin:crm_customer_duplicates")


@supervisor_required
@require_POST
def customer_unmerge(request, customer_id, merge_id):
    try:
        record = merges.customer_unmerge(actor=request.user, survivor_id=customer_id, merge_id=merge_id)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("admin:crm_customer_360", customer_id)
    messages.success(
        request, f"Merge #{record.pk} undone: “{record.duplicate.display_name}” is a customer of their own again."
    )
    return redirect("admin:crm_customer_360", record.duplicate_id)


@supervisor_required
def customer_merge(request, customer_id, duplicate_id):
    """GET: what would move. POST: merge (the duplicate folds into the first customer)."""
    survivor = get_object_or_404(Customer, pk=customer_id)
    duplicate = get_object_or_404(Customer, pk=duplicate_id)
    try:
        preview = privacy.merge_preview(survivor=survivor, duplicate=duplicate)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("admin:crm_customer_duplicates")
    if request.method == "POST":
        try:
            record = privacy.customer_merge(
                actor=request.user,
                survivor=survivor,
                duplicate_id=duplicate.pk,
                reason=request.POST.get("reason", "") if request.POST.get("confirm_different") else "",
            )
        except Conflict as exc:  # the reason was missing: stay on the preview, which says why
            messages.error(request, exc.message)
            return redirect("admin:crm_customer_merge", survivor.pk, duplicate.pk)
        except DomainError as exc:
            messages.error(request, exc.message)
            return redirect("admin:crm_customer_duplicates")
        moved = ", ".join(
            f"{len(record.moved[key])} {label}"
            for key, label in (
                ("interactions", "contact(s)"),
                ("identities", "identifier(s)"),
                ("cases", "case(s)"),
                ("feedback", "feedback"),
                ("follow_ups", "follow-up(s)"),
            )
        )
        messages.success(
            request,
            f"Merged “{duplicate.display_name}” into “{survivor.display_name}”: {moved} moved "
            f"(merge record #{record.pk}).",
        )
        return redirect("admin:crm_customer_360", survivor.pk)
    audit.merge_preview_view(request.user, survivor, duplicate)
    return _page(
        request,
        "admin/crm/customer/merge_preview.html",
        "Merge two customers",
        survivor=survivor,
        duplicate=duplicate,
        preview=preview,
        survivor_identities=survivor.identities.order_by("kind", "normalized"),
    )


# --- privacy requests -------------------------------------------------------------------------------


@supervisor_required
def customer_export(request, customer_id):
    """Everything held on the customer as a JSON download (the same data as GET /api/v1/customers/{id}/export)."""
    customer = get_object_or_404(Customer, pk=customer_id)
    data = privacy.customer_export(actor=request.user, customer=customer)
    response = HttpResponse(
        json.dumps(data, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False),
        content_type="application/json; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="customer-{customer.pk}.json"'
    return response


@supervisor_required
def customer_erase(request, customer_id):
    """GET: confirm. POST: erase personal data irreversibly; counts for reports stay."""
    customer = get_object_or_404(live_customers(), pk=customer_id)
    if request.method == "POST":
        privacy.customer_erase(actor=request.user, customer=customer)
        messages.success(request, "The customer's personal data has been erased. The erasure is in the access audit.")
        return redirect("admin:crm_customer_changelist")
    audit.customer_view(request.user, customer, via="erase_confirm")
    return _page(
        request,
        "admin/crm/customer/erase_confirm.html",
        "Erase a customer",
        customer=customer,
        counts=privacy.customer_related_counts(customer),
    )


# --- follow-ups ------------------------------------------------------------------------------------


@require_POST
@supervisor_required
def follow_up_complete(request, follow_up_id):
    follow_up = get_object_or_404(FollowUp, pk=follow_up_id)
    if follow_ups.follow_up_complete(actor=request.user, follow_up_id=follow_up.pk):
        messages.success(request, f"Follow-up “{follow_up.get_kind_display()}” marked done.")
    else:
        messages.info(request, "That follow-up was already closed.")
    back = request.POST.get("next") or request.headers.get("referer", "")
    if back and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        return redirect(back)
    return redirect("admin:crm_followup_changelist")


# --- reports -----------------------------------------------------------------------------------------

BLUE, GREEN, ORANGE, PURPLE = "#2563eb", "#16a34a", "#ea580c", "#7c3aed"


@supervisor_required
@reads_may_lag
def reports(request):
    """Charts a supervisor reads at a glance; every figure comes from a grouped query.

    issue 13: complete weeks only (the current week is reported apart, with its n), the same
    weeks on every chart, a sample size beside every rate, and the same table as CSV.
    """
    try:
        weeks = min(max(int(request.GET.get("weeks", 12)), 2), 52)
    except ValueError:
        weeks = 12
    teams = list(Team.objects.order_by("name"))
    team_id = request.GET.get("team")
    team = next((t for t in teams if str(t.pk) == team_id), None)
    period = rep.Period.complete_weeks(weeks, team_id=team.pk if team else None)
    if request.GET.get("format") == "csv":
        return _csv_response(
            rep.csv_rows(period), f"goldfish-report-{period.start:%Y%m%d}-{period.last_day:%Y%m%d}.csv"
        )

    quality = rep.by_week(rep.contact_quality_by_week(period), period)
    satisfaction = rep.by_week(rep.satisfaction_by_week(period), period)
    reasons = rep.top_reasons(period)
    agents = rep.recognitions_per_agent(period)
    totals = rep.totals(period)
    responses = sum(w["responses"] for w in satisfaction if w)
    current = rep.Period(start=period.end, end=timezone.now(), team_id=period.team_id)
    labels = [monday.strftime("%d %b") for monday in period.week_starts()]

    def values(rows, key):
        return [r[key] if r else None for r in rows]

    return _page(
        request,
        "admin/crm/reports.html",
        "Reports",
        weeks=weeks,
        week_choices=[4, 8, 12, 26, 52],
        teams=teams,
        team=team,
        period=period,
        totals=totals,
        responses=responses,
        current=rep.totals(current),
        current_start=current.start,
        fcr_window=rep.FCR_WINDOW_DAYS,
        repeat_window=settings.CRM_REPEAT_WINDOW_DAYS,
        quality_chart=charts.line_chart(
            labels,
            [
                {
                    "name": "Repeat-contact rate",
                    "color": ORANGE,
                    "values": values(quality, "repeat_rate"),
                    "n": values(quality, "contacts"),
                },
                {
                    "name": "First-contact resolution",
                    "color": GREEN,
                    "values": values(quality, "fcr_rate"),
                    "n": values(quality, "contacts"),
                },
            ],
        ),
        csat_chart=charts.line_chart(
            labels,
            [
                {
                    "name": "CSAT",
                    "color": BLUE,
                    "values": values(satisfaction, "csat"),
                    "n": values(satisfaction, "rated"),
                }
            ],
        ),
        nps_chart=charts.line_chart(
            labels,
            [
                {
                    "name": "NPS",
                    "color": PURPLE,
                    "values": values(satisfaction, "nps"),
                    "n": values(satisfaction, "scored"),
                }
            ],
            y_min=-100,
            y_max=100,
            y_step=50,
            suffix="",
        ),
        reasons_chart=charts.bar_chart(reasons, value="contacts", overlay="repeats"),
        agents_chart=charts.bar_chart(agents, value="count"),
    )


def _csv_response(rows: list[list], filename: str) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    csv.writer(response).writerows(rows)
    return response
