from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny, IsAuthenticated

from crm import api, feedback_api, health, imports_api, metrics, verification_api  # verification_api: issue 12

# crm's own routes; the site's root URLconf (context.urls) adds the lookup, call events
# and the agent page, so the lower layer never imports the upper one.

api_v1 = [
    path("auth/token", api.TokenApi.as_view(), name="auth-token"),
    path("customers", api.CustomerListCreateApi.as_view(), name="customer-list"),
    path("customers/<uuid:customer_id>", api.CustomerDetailApi.as_view(), name="customer-detail"),
    path(
        "customers/<uuid:customer_id>/identities", api.CustomerIdentityCreateApi.as_view(), name="customer-identities"
    ),
    path("customers/<uuid:customer_id>/timeline", api.CustomerTimelineApi.as_view(), name="customer-timeline"),
    path("customers/<uuid:customer_id>/merge", api.CustomerMergeApi.as_view(), name="customer-merge"),
    # issue 13
    path("customers/<uuid:customer_id>/unmerge", api.CustomerUnmergeApi.as_view(), name="customer-unmerge"),
    path("customers/<uuid:customer_id>/export", api.CustomerExportApi.as_view(), name="customer-export"),
    path("interactions", api.InteractionCreateApi.as_view(), name="interaction-list"),
    path("interactions/<uuid:interaction_id>", api.InteractionDetailApi.as_view(), name="interaction-detail"),
    path("reasons", api.ReasonListApi.as_view(), name="reason-list"),
    # issue 12: "Verified on this call"
    path(
        "interactions/<uuid:interaction_id>/verify",
        verification_api.ContactVerifyApi.as_view(),
        name="interaction-verify",
    ),
    path("feedback", feedback_api.FeedbackCreateApi.as_view(), name="feedback-list"),
    path("feedback/<uuid:feedback_id>", feedback_api.FeedbackDetailApi.as_view(), name="feedback-detail"),
    path("recognitions", feedback_api.RecognitionListApi.as_view(), name="recognition-list"),
    path("follow-ups", feedback_api.FollowUpListApi.as_view(), name="follow-up-list"),
    path("follow-ups/<uuid:follow_up_id>", feedback_api.FollowUpDetailApi.as_view(), name="follow-up-detail"),
    path("recurring-problems", feedback_api.RecurringProblemListApi.as_view(), name="recurring-problem-list"),
    # issue 15: bulk import
    path("imports", imports_api.ImportCreateApi.as_view(), name="import-list"),
    path("imports/<uuid:import_id>", imports_api.ImportDetailApi.as_view(), name="import-detail"),
    path("imports/<uuid:import_id>/errors", imports_api.ImportErrorFileApi.as_view(), name="import-errors"),
    # The contract does not mark the API's description public: any signed-in account reads
    # it. The docs page is only Swagger UI's shell; it loads the schema with the session.
    path("schema/", SpectacularAPIView.as_view(permission_classes=[IsAuthenticated]), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema", permission_classes=[AllowAny]), name="docs"),
]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),  # issue 17
    path("api/v1/", include(api_v1)),
    path("admin/", admin.site.urls),
    path("feedback/", feedback_api.feedback_form, name="feedback-form"),
    path("feedback/thanks/", feedback_api.feedback_thanks, name="feedback-thanks"),
]

# Issue 11: an oversized body is a JSON 413, not Django's HTML 400.
handler400 = "crm.exceptions.bad_request"
handler404 = "crm.exceptions.not_found"
handler500 = "crm.exceptions.server_error"
