"""The site's root URLconf (settings.ROOT_URLCONF): crm's routes, then the top layer's.

context sits above crm, so the site's URLs are put together here: crm/urls.py
lists the customer memory's own routes and never imports context.
"""

from django.urls import include, path

from context import agent_urls, landing
from context.api import LookupApi
from crm import urls as crm_urls

api_v1 = agent_urls.api_urlpatterns

urlpatterns = [
    # The screen pop first: every call resolves it, and Django tries the patterns in order
    # (issue 14: behind the admin's and crm's patterns it cost about 4 % of a lookup's CPU).
    path("api/v1/context/lookup", LookupApi.as_view(), name="context-lookup"),
    *crm_urls.urlpatterns,
    path("api/v1/", include(api_v1)),
    path("agent/", include(agent_urls.agent_urlpatterns)),
    # issue 13: `/` routes each role to its desk; the favicon every browser asks for
    path("", landing.landing, name="landing"),
    path("favicon.ico", landing.favicon, name="favicon"),
]

handler400 = crm_urls.handler400  # issue 11
handler404 = crm_urls.handler404
handler500 = crm_urls.handler500
