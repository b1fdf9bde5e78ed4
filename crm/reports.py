"""Supervisor reports, computed by the database: each function is one grouped query.

Definitions (shown on the reports page too):
- a *repeat contact* is a contact whose customer already contacted us about the
  same reason in the previous CRM_REPEAT_WINDOW_DAYS days;
- a contact is *resolved first time* when its outcome is `resolved` and the
  customer does not come back about the same reason within FCR_WINDOW_DAYS;
- CSAT is the share of ratings of 4 or 5; NPS is % promoters (9-10) minus
  % detractors (0-6).
Only contacts linked to a customer and given a reason count towards repeat and
FCR rates; erasure keeps those columns, so the figures survive it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Count, DateTimeField, Exists, ExpressionWrapper, OuterRef, Q, QuerySet
from django.db.models.functions import TruncWeek
from django.utils import timezone

from crm.models import Feedback, Interaction, Outcome, Recognition

# A customer who calls back within a week about the same thing was not helped the first time.
FCR_WINDOW_DAYS = 7
TOP_REASONS = 8
TOP_AGENTS = 12


@dataclass(frozen=True)
class Period:
    start: dt.datetime
    end: dt.datetime
    team_id: int | None = None

    @classmethod
    def last_weeks(cls, weeks: int, team_id: int | None = None) -> Period:
        end = timezone.now()
        monday = (end - dt.timedelta(days=end.weekday() + 7 * (weeks - 1))).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        return cls(start=monday, end=end, team_id=team_id)

    # issue 13: reports cover complete weeks only, so the latest point is never a partial week.
    @classmethod
    def complete_weeks(cls, weeks: int, team_id: int | None = None, now: dt.datetime | None = None) -> Period:
        """The `weeks` whole weeks (Monday 00:00 UTC to Monday 00:00) before the current one."""
        now = now or timezone.now()
        this_monday = (now - dt.timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
        return cls(start=this_monday - dt.timedelta(weeks=weeks), end=this_monday, team_id=team_id)

    def week_starts(self) -> list[dt.datetime]:
        """Every Monday in the period: all charts share these, whether or not a week has data."""
        starts, monday = [], self.start
        while monday < self.end:
            starts.append(monday)
            monday += dt.timedelta(weeks=1)
        return starts

    @property
    def last_day(self) -> dt.datetime:
        return self.end - dt.timedelta(days=1)


def _contacts(period: Period) -> QuerySet[Interaction]:
    qs = Interaction.objects.filter(
        started_at__gte=period.start, started_at__lt=period.end, customer__isnull=False, reason__isnull=False
    )
    if period.team_id:
        qs = qs.filter(agent__staff_profile__team_id=period.team_id)
    return qs


def _same_problem(*, before: bool, days: int) -> Exists:
    """Another contact of the same customer and reason within `days` before (or after) this one.

    Served by interaction_reason_idx (customer, reason, started_at).
    """
    window = dt.timedelta(days=days)
    others = Interaction.objects.filter(customer=OuterRef("customer"), reason=OuterRef("reason"))
    if before:
        edge = ExpressionWrapper(OuterRef("started_at") - window, output_field=DateTimeField())
        others = others.filter(started_at__lt=OuterRef("started_at"), started_at__gte=edge)
    else:
        edge = ExpressionWrapper(OuterRef("started_at") + window, output_field=DateTimeField())
        others = others.filter(started_at__gt=OuterRef("started_at"), started_at__lte=edge)
    return Exists(others)


def _with_flags(qs: QuerySet[Interaction]) -> QuerySet[Interaction]:
    return qs.annotate(
        is_repeat=_same_problem(before=True, days=settings.CRM_REPEAT_WINDOW_DAYS),
        came_back=_same_problem(before=False, days=FCR_WINDOW_DAYS),
    )


def _rate(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def contact_quality_by_week(period: Period) -> list[dict]:
    """Per week: contacts, repeat-contact rate and first-contact resolution rate (%)."""
    rows = (
        _with_flags(_contacts(period))
        .annotate(week=TruncWeek("started_at"))
        .values("week")
        .annotate(
            contacts=Count("id"),
            repeats=Count("id", filter=Q(is_repeat=True)),
            resolved_first=Count("id", filter=Q(outcome=Outcome.RESOLVED, came_back=False)),
        )
        .order_by("week")
    )
    return [
        {
            "week": r["week"],
            "contacts": r["contacts"],
            "repeat_rate": _rate(r["repeats"], r["contacts"]),
            "fcr_rate": _rate(r["resolved_first"], r["contacts"]),
        }
        for r in rows
    ]


def satisfaction_by_week(period: Period) -> list[dict]:
    """Per week: CSAT (% of ratings 4-5) and NPS (% promoters - % detractors)."""
    qs = Feedback.objects.filter(received_at__gte=period.start, received_at__lt=period.end)
    if period.team_id:
        qs = qs.filter(interaction__agent__staff_profile__team_id=period.team_id)
    rows = (
        qs.annotate(week=TruncWeek("received_at"))
        .values("week")
        .annotate(
            rated=Count("rating"),
            satisfied=Count("id", filter=Q(rating__gte=4)),
            scored=Count("nps"),
            promoters=Count("id", filter=Q(nps__gte=9)),
            detractors=Count("id", filter=Q(nps__lte=6)),
        )
        .order_by("week")
    )
    out = []
    for r in rows:  # rated/scored: the sample size of CSAT and of NPS
        nps = None
        if r["scored"]:
            nps = round(100.0 * (r["promoters"] - r["detractors"]) / r["scored"], 1)
        out.append(
            {
                "week": r["week"],
                "responses": max(r["rated"], r["scored"]),
                "rated": r["rated"],
                "scored": r["scored"],
                "csat": _rate(r["satisfied"], r["rated"]),
                "nps": nps,
            }
        )
    return out


def top_reasons(period: Period, *, limit: int = TOP_REASONS) -> list[dict]:
    """The most frequent contact reasons with the share of their contacts that were repeats."""
    rows = (
        _with_flags(_contacts(period))
        .values("reason__code", "reason__label")
        .annotate(contacts=Count("id"), repeats=Count("id", filter=Q(is_repeat=True)))
        .order_by("-contacts", "reason__label")[:limit]
    )
    return [
        {
            "code": r["reason__code"],
            "label": r["reason__label"],
            "contacts": r["contacts"],
            "repeats": r["repeats"],
            "repeat_rate": _rate(r["repeats"], r["contacts"]),
        }
        for r in rows
    ]


def recognitions_per_agent(period: Period, *, limit: int = TOP_AGENTS) -> list[dict]:
    """Praise received per member of staff in the period, most first."""
    qs = Recognition.objects.filter(created_at__gte=period.start, created_at__lt=period.end)
    if period.team_id:
        qs = qs.filter(staff__staff_profile__team_id=period.team_id)
    rows = (
        qs.values(
            "staff_id", "staff__username", "staff__first_name", "staff__last_name", "staff__staff_profile__team__name"
        )
        .annotate(count=Count("id"))
        .order_by("-count", "staff__username")[:limit]
    )
    return [
        {
            "staff": r["staff__username"],
            "name": f"{r['staff__first_name']} {r['staff__last_name']}".strip() or r["staff__username"],
            "team": r["staff__staff_profile__team__name"] or "",
            "count": r["count"],
        }
        for r in rows
    ]


def by_week(rows: list[dict], period: Period) -> list[dict | None]:
    """The rows lined up on the period's weeks (None for a week without data)."""
    found = {r["week"].date(): r for r in rows}
    return [found.get(monday.date()) for monday in period.week_starts()]


def csv_rows(period: Period) -> list[list]:
    """The report as a table: one row per complete week, every rate next to its sample size."""
    quality = by_week(contact_quality_by_week(period), period)
    satisfaction = by_week(satisfaction_by_week(period), period)
    header = ["week_start", "contacts", "repeat_rate_pct", "fcr_rate_pct", "ratings", "csat_pct", "nps_scores", "nps"]
    table: list[list] = [header]
    for monday, q, f in zip(period.week_starts(), quality, satisfaction, strict=True):
        table.append(
            [
                monday.date().isoformat(),
                q["contacts"] if q else 0,
                q["repeat_rate"] if q else "",
                q["fcr_rate"] if q else "",
                f["rated"] if f else 0,
                f["csat"] if f and f["csat"] is not None else "",
                f["scored"] if f else 0,
                f["nps"] if f and f["nps"] is not None else "",
            ]
        )
    return table


def totals(period: Period) -> dict:
    """Headline contact figures for the period, one aggregate query."""
    contact = _with_flags(_contacts(period)).aggregate(
        contacts=Count("id"),
        repeats=Count("id", filter=Q(is_repeat=True)),
        resolved_first=Count("id", filter=Q(outcome=Outcome.RESOLVED, came_back=False)),
    )
    return {
        "contacts": contact["contacts"],
        "repeat_rate": _rate(contact["repeats"], contact["contacts"]),
        "fcr_rate": _rate(contact["resolved_first"], contact["contacts"]),
    }
