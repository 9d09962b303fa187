"""URLs: the admin, /healthz, and everything of the API under /api/.

Each app contributes its routes through its own `api/urls.py`; paths work with
and without a trailing slash.
"""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView

from core.health import healthz
from core.views import DocsView, api_not_found
from inbound.urls import api_urlpatterns as inbound_api_patterns
from inbound.urls import public_urlpatterns as inbound_public_patterns
from mailboxes.views import oauth_callback

api_patterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", DocsView.as_view(url_name="schema"), name="docs"),
    path("", include("contacts.api.urls")),
    path("", include("enrollments.api.urls")),
    path("", include("mailing.api.urls")),
    path("", include("mailboxes.api.urls")),
    path("", include("campaigns.api.urls")),
    path("", include("journeys.api.urls")),
    path("", include("webhooks.api.urls")),
    path("", include(inbound_api_patterns)),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("", include(inbound_public_patterns)),  # /t/ (tracking) and /u/ (unsubscribe) links in emails
    path("oauth/callback", oauth_callback, name="mailbox-oauth-callback"),  # back from Google or Microsoft
    path("api/", include(api_patterns)),
    re_path(r"^api/", api_not_found),
]

admin.site.site_header = "Outreach admin"
admin.site.site_title = "Outreach"
