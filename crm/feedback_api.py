"""Feedback intake (public), the feedback form, and the supervisors' view of the workflows."""

from __future__ import annotations

import logging

from django.conf import settings
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from crm import api_schema as schema
from crm import audit, follow_ups
from crm import feedback as workflows
from crm import feedback_selectors as reads
from crm.api import StrictSerializer
from crm.exceptions import DomainError
from crm.forms import FeedbackForm
from crm.models import Feedback, FollowUpStatus
from crm.permissions import IsSupervisor
from crm.sentiment import classify
from crm.throttling import FeedbackThrottle

logger = logging.getLogger(__name__)


class FeedbackInput(StrictSerializer):
    interaction_id = serializers.UUIDField(required=False, allow_null=True)
    email = serializers.CharField(max_length=254, required=False, allow_blank=True)
    phone = serializers.CharField(max_length=64, required=False, allow_blank=True)
    account = serializers.CharField(max_length=64, required=False, allow_blank=True)
    rating = serializers.IntegerField(min_value=1, max_value=5, required=False, allow_null=True)
    nps = serializers.IntegerField(min_value=0, max_value=10, required=False, allow_null=True)
    text = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")
    staff = serializers.ListField(
        child=serializers.CharField(max_length=150), required=False, default=list, max_length=10
    )
    contact_consent = serializers.BooleanField(required=False, default=False)


class FeedbackCreateApi(APIView):
    """Public: a customer's feedback. Stored before the answer; the workflow runs afterwards."""

    permission_classes = [AllowAny]
    # No session authentication: a public JSON endpoint needs no CSRF token.
    authentication_classes: list = []
    throttle_classes = [FeedbackThrottle]

    @extend_schema(
        request=FeedbackInput,
        responses={
            202: inline_serializer(
                "FeedbackReceived", {"id": serializers.CharField(), "status": serializers.CharField()}
            )
        },
    )
    def post(self, request):
        data = FeedbackInput(data=request.data)
        data.is_valid(raise_exception=True)
        feedback = workflows.feedback_submit(**data.validated_data)
        return Response({"id": str(feedback.pk), "status": feedback.status}, status=status.HTTP_202_ACCEPTED)


class FeedbackDetailApi(APIView):
    permission_classes = [IsSupervisor]

    @extend_schema(responses={200: schema.FeedbackOut})
    def get(self, request, feedback_id):
        feedback = reads.feedback_get(feedback_id)
        audit.feedback_view(request.user, feedback)
        return Response(reads.feedback_detail(feedback))


class RecognitionListApi(APIView):
    permission_classes = [IsSupervisor]

    class RecognitionQuery(StrictSerializer):
        staff = serializers.CharField(max_length=150, required=False)

    @extend_schema(parameters=[RecognitionQuery], responses={200: schema.RecognitionListOut})
    def get(self, request):
        query = self.RecognitionQuery(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        results = reads.recognitions_list(**query.validated_data)
        feedback_ids = [r["feedback_id"] for r in results]
        audit.queue_view(
            request.user,
            Feedback.objects.filter(pk__in=feedback_ids).values_list("customer_id", flat=True),
            via="recognitions",
        )
        return Response({"results": results})


class FollowUpListApi(APIView):
    permission_classes = [IsSupervisor]

    class FollowUpQuery(StrictSerializer):
        status = serializers.ChoiceField(choices=FollowUpStatus.choices, required=False)
        owner = serializers.CharField(max_length=150, required=False)

    @extend_schema(parameters=[FollowUpQuery], responses={200: schema.FollowUpListOut})
    def get(self, request):
        query = self.FollowUpQuery(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        results = reads.follow_ups_list(**query.validated_data)
        audit.queue_view(request.user, (f["customer_id"] for f in results), via="follow_ups")
        return Response({"results": results})


class FollowUpDetailApi(APIView):
    permission_classes = [IsSupervisor]

    class FollowUpChange(StrictSerializer):
        status = serializers.ChoiceField(
            choices=[FollowUpStatus.OPEN, FollowUpStatus.DONE, FollowUpStatus.CANCELLED], required=False
        )
        owner = serializers.CharField(max_length=150, required=False)
        due_at = serializers.DateTimeField(required=False)
        note = serializers.CharField(required=False, allow_blank=True)

    @extend_schema(request=FollowUpChange, responses={200: schema.FollowUpOut})
    def patch(self, request, follow_up_id):
        data = self.FollowUpChange(data=request.data)
        data.is_valid(raise_exception=True)
        follow_up = follow_ups.follow_up_update(actor=request.user, follow_up_id=follow_up_id, **data.validated_data)
        return Response(reads.follow_up_out(follow_up))


class RecurringProblemListApi(APIView):
    """Customers who keep coming back about the same reason, and the reasons that bring people back most."""

    permission_classes = [IsSupervisor]

    @extend_schema(responses={200: schema.RecurringProblemsOut})
    def get(self, request):
        problems = reads.recurring_problems_list()
        audit.queue_view(request.user, (p["customer_id"] for p in problems), via="recurring_problems")
        return Response(
            {
                "results": problems,
                "top_reasons": reads.repeat_reasons_ranking(),
                "feedback_by_sentiment": reads.feedback_sentiment_counts(),
            }
        )


# --- the web form ----------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def feedback_form(request):
    """The public feedback form; CSRF-protected by the middleware, throttled like the API."""
    if request.method == "POST":
        form = FeedbackForm(request.POST)
        if not FeedbackThrottle().allow_request(request, None):
            return render(request, "feedback/form.html", {"form": form, "throttled": True}, status=429)
        if form.is_valid():
            submission = form.submission()
            try:
                workflows.feedback_submit(**submission)
            except DomainError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                # issue 13: a complaint's thank-you page says what happens next.
                sentiment, _ = classify(rating=submission["rating"], nps=submission["nps"], text=submission["text"])
                return redirect(reverse("feedback-thanks") + ("?sorry=1" if sentiment == "negative" else ""))
        return render(request, "feedback/form.html", {"form": form}, status=400)
    form = FeedbackForm(initial={"interaction_id": request.GET.get("interaction"), "staff": request.GET.get("staff")})
    return render(request, "feedback/form.html", {"form": form})


def feedback_thanks(request):
    return render(
        request,
        "feedback/thanks.html",
        {"sorry": request.GET.get("sorry") == "1", "hours": settings.CRM_RECOVERY_DEADLINE_HOURS},
    )
