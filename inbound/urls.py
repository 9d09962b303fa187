"""Routes of inbound events: /t/ and /u/ at the top level, the SMTP2GO webhook under /api/."""

from django.urls import re_path

from . import views

# Included at the top level (config/urls.py): links in emails must stay short and outside /api/.
public_urlpatterns = [
    re_path(r"^t/o/(?P<token>[^/]+)\.gif$", views.open_pixel, name="tracking-open"),
    re_path(r"^t/c/(?P<token>[^/]+)/?$", views.click, name="tracking-click"),
    re_path(r"^u/(?P<token>[^/]+)/?$", views.unsubscribe, name="unsubscribe"),
]

# Included under /api/.
api_urlpatterns = [
    re_path(
        r"^inbound/smtp2go/(?P<account_token>[^/]+)/?$",
        views.Smtp2goWebhookView.as_view(),
        name="inbound-smtp2go",
    ),
]
