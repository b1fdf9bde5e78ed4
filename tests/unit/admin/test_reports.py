import datetime as dt

import pytest
from django.utils import timezone

from crm import models, reports
from tests.factories import CustomerFactory, FeedbackFactory, InteractionFactory, UserFactory, reason

pytestmark = pytest.mark.django_db


@pytest.fixture
def floor(db):
    """Jane (North) took three contacts with reasons and one without; Li (South) none."""
    now = timezone.now()
    north, south = models.Team.objects.create(name="North"), models.Team.objects.create(name="South")
    jane, li = UserFactory(username="jane", role="agent"), UserFactory(username="li", role="agent")
    models.StaffProfile.objects.create(user=jane, team=north)
    models.StaffProfile.objects.create(user=li, team=south)
    customer = CustomerFactory()

    def contact(days_ago, code, outcome):
        return InteractionFactory(
            customer=customer,
            agent=jane,
            reason=reason(code) if code else None,
            outcome=outcome,
            started_at=now - dt.timedelta(days=days_ago),
        )

    contact(20, "billing", "resolved")  # came back 2 days later: not resolved first time
    contact(18, "billing", "unresolved")  # a repeat
    contact(10, "payment", "resolved")  # resolved first time
    contact(9, None, "resolved")  # no reason: not counted
    last_tuesday = reports.Period.last_weeks(1).start - dt.timedelta(days=6)  # one whole week, in any case
    for rating, nps in ((5, 10), (4, 9), (2, 3)):
        FeedbackFactory(customer=customer, rating=rating, nps=nps, received_at=last_tuesday)
    for staff in (jane, jane, li):
        models.Recognition.objects.create(feedback=FeedbackFactory(customer=customer), staff=staff)
    # issue 13: the report counts complete weeks only; the praise came last week
    models.Recognition.objects.update(created_at=last_tuesday)
    return {"north": north, "south": south}


def test_repeat_contact_and_first_contact_resolution_are_computed_per_week(floor):
    period = reports.Period.last_weeks(8)

    weeks = reports.contact_quality_by_week(period)
    totals = reports.totals(period)

    assert totals == {"contacts": 3, "repeat_rate": 33.3, "fcr_rate": 33.3}
    assert sum(w["contacts"] for w in weeks) == 3
    assert all(w["week"].weekday() == 0 for w in weeks)


def test_csat_and_nps_trend(floor):
    weeks = reports.satisfaction_by_week(reports.Period.last_weeks(4))

    rated = [(w["csat"], w["nps"], w["responses"]) for w in weeks if w["csat"] is not None]
    assert rated == [(66.7, 33.3, 3)]


def test_top_reasons_carry_their_repeat_rates(floor):
    rows = reports.top_reasons(reports.Period.last_weeks(8))

    assert [(r["code"], r["contacts"], r["repeat_rate"]) for r in rows] == [("billing", 2, 50.0), ("payment", 1, 0.0)]


def test_recognitions_per_agent_most_first_and_by_team(floor):
    everyone = reports.recognitions_per_agent(reports.Period.last_weeks(4))
    south = reports.recognitions_per_agent(reports.Period.last_weeks(4, team_id=floor["south"].pk))

    assert [(r["staff"], r["team"], r["count"]) for r in everyone] == [("jane", "North", 2), ("li", "South", 1)]
    assert [r["staff"] for r in south] == ["li"]


def test_a_team_filter_narrows_contacts_to_that_teams_agents(floor):
    assert reports.totals(reports.Period.last_weeks(8, team_id=floor["south"].pk))["contacts"] == 0
    assert reports.totals(reports.Period.last_weeks(8, team_id=floor["north"].pk))["contacts"] == 3


def test_the_reports_page_draws_svg_charts_in_a_bounded_number_of_queries(
    supervisor_client, floor, django_assert_max_num_queries
):
    with django_assert_max_num_queries(15):
        response = supervisor_client.get("/admin/crm/interaction/reports/", {"weeks": 8})

    page = response.content.decode()
    assert response.status_code == 200
    for chart in ("chart-quality", "chart-csat", "chart-nps", "chart-reasons", "chart-recognitions"):
        assert f'id="{chart}"' in page
    assert page.count('class="gf-series"') == 4 and page.count('class="gf-bar"') == 4
    assert "<script" not in page.split('id="reports"')[1]  # server-side SVG, nothing fetched


def test_the_report_query_count_does_not_grow_with_the_data(supervisor_client, floor, django_assert_max_num_queries):
    customer = CustomerFactory()
    now = timezone.now()
    models.Interaction.objects.bulk_create(
        [
            models.Interaction(
                customer=customer, reason=reason("outage"), started_at=now - dt.timedelta(hours=i * 7), source="t"
            )
            for i in range(500)
        ]
    )

    with django_assert_max_num_queries(15):
        assert supervisor_client.get("/admin/crm/interaction/reports/", {"weeks": 26}).status_code == 200


# --- issue 13: reports that do not mislead ---------------------------------------------------------


def test_the_report_covers_complete_weeks_only_and_says_so_with_this_weeks_n_apart(supervisor_client, floor):
    customer = CustomerFactory()
    now = timezone.now()
    InteractionFactory(customer=customer, reason=reason("billing"), started_at=now - dt.timedelta(minutes=5))

    period = reports.Period.complete_weeks(8)
    response = supervisor_client.get("/admin/crm/interaction/reports/", {"weeks": 8})

    assert period.end <= now and period.end.weekday() == 0 and (period.end - period.start).days == 56
    assert response.context["totals"]["contacts"] == 3  # the contact of a few minutes ago is not in it
    page = response.content.decode()
    assert "8 complete weeks" in page and 'id="partial-week"' in page
    assert "This week so far" in page and "1 contact with a reason" in page
    assert "n = 3" in page


def test_every_line_chart_spans_the_same_weeks_and_each_rate_carries_its_sample_size(supervisor_client, floor):
    response = supervisor_client.get("/admin/crm/interaction/reports/", {"weeks": 8})
    context = response.context

    spans = {
        name: [label["label"] for label in context[name]["x_labels"]]
        for name in ("quality_chart", "csat_chart", "nps_chart")
    }
    assert spans["quality_chart"] == spans["csat_chart"] == spans["nps_chart"]
    assert spans["quality_chart"][-1] == reports.Period.complete_weeks(8).week_starts()[-1].strftime("%d %b")
    csat = context["csat_chart"]["series"][0]
    assert csat["last"] == "66.7% (n=3)"
    assert all("(n=" in dot["title"] for chart in ("quality_chart", "csat_chart") for s in context[chart]["series"]
               for dot in s["dots"])  # fmt: skip


def test_the_report_exports_as_csv_one_row_per_complete_week(supervisor_client, floor):
    response = supervisor_client.get("/admin/crm/interaction/reports/", {"weeks": 8, "format": "csv"})

    assert response["Content-Type"].startswith("text/csv")
    lines = response.content.decode().strip().splitlines()
    assert lines[0] == "week_start,contacts,repeat_rate_pct,fcr_rate_pct,ratings,csat_pct,nps_scores,nps"
    assert len(lines) == 1 + 8
    assert sum(int(line.split(",")[1]) for line in lines[1:]) == 3
    assert sum(int(line.split(",")[4]) for line in lines[1:]) == 3


def test_the_recognitions_board_takes_the_reports_period(supervisor_client, floor):
    models.Recognition.objects.create(
        feedback=FeedbackFactory(customer=CustomerFactory()), staff=models.StaffProfile.objects.first().user
    )  # today: in no complete week

    board = supervisor_client.get("/admin/crm/recognition/", {"weeks": 8})
    everything = supervisor_client.get("/admin/crm/recognition/")

    assert board.context["cl"].result_count == 3 and everything.context["cl"].result_count == 4
    assert "8 complete weeks" in board.content.decode()
    report = supervisor_client.get("/admin/crm/interaction/reports/", {"weeks": 8}).content.decode()
    assert "/admin/crm/recognition/?weeks=8" in report


def test_a_long_reason_label_is_not_cut(supervisor_client, floor):
    models.ContactReason.objects.filter(code="billing").update(label="Billing question about a direct debit change")
    page = supervisor_client.get("/admin/crm/interaction/reports/", {"weeks": 8}).content.decode()
    assert "Billing question about a direct debit change<" in page
