from django.urls import path

from context.api import LookupApi

urlpatterns = [
    path("context/lookup", LookupApi.as_view(), name="context-lookup"),
]
