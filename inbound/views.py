"""Public endpoints for what comes back after a send: pixel, click, unsubscribe, SMTP2GO webhook.

The /t/ and /u/ views are plain Django views at the top level (they are hit
by mail clients, not API clients). Each reads a signed token
(`mailing.tracking`, which also makes them for the sender), calls one
service, and answers:

- `/t/o/<token>.gif`: always the same 1x1 GIF with no-cache headers, whatever
  the token (valid, tampered, expired, unknown): it never reveals validity.
- `/t/c/<token>`: 302 to the URL signed into the token (an expired but
  authentic token still redirects, without counting); a token that is not
  ours is a 404 page, never a redirect, so this is no open redirect.
- `/u/<token>`: GET shows a confirmation page and changes nothing (link
  scanners follow GETs); POST, including RFC 8058's one-click POST
  (`List-Unsubscribe=One-Click`), unsubscribes and answers 200, also when
  repeated. A tampered token is 400, an expired one 410, nothing changed.

Provider webhooks share one base view, `ProviderWebhookView`.
"""

from __future__ import annotations

import base64
from typing import Any

from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_view, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Account
from core.errors import ApplicationError
from core.schema import error_responses
from mailing import tracking

from . import open_queue, services, smtp2go
from .tasks import apply_provider_event_task

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_CACHE = "no-store, no-cache, must-revalidate, max-age=0, private"


def _client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def _pixel_response() -> HttpResponse:
    response = HttpResponse(PIXEL, content_type="image/gif")
    response["Cache-Control"] = NO_CACHE
    response["Pragma"] = "no-cache"
    response["Expires"] = "0"
    return response


def open_pixel(request: HttpRequest, token: str) -> HttpResponse:
    try:
        send_id = tracking.read_open_token(token)
    except Exception:  # bad, expired or odd tokens all get the same GIF
        return _pixel_response()
    user_agent, ip, at = request.META.get("HTTP_USER_AGENT", "")[:512], _client_ip(request), timezone.now()
    # The hottest endpoint: no database work in the request (see inbound/open_queue.py); without
    # Redis, or when it refuses the push, the hit is applied here instead (slower, not lost).
    try:
        queued = open_queue.open_hit_push(send_id=send_id, user_agent=user_agent, ip=ip, at=at)
    except Exception:  # redis.RedisError, OSError: whatever the client raises, the open must not be lost
        queued = False
    if not queued:
        services.tracking_open_record(send_id=send_id, user_agent=user_agent, ip=ip, at=at)
    return _pixel_response()


def _safe_destination(url: str) -> bool:
    return url.lower().startswith(("http://", "https://")) and not any(c in url for c in "\r\n")


def click(request: HttpRequest, token: str) -> HttpResponse:
    try:
        target = tracking.read_click_token(token)
        counted = True
    except tracking.TokenExpired as expired:
        target, counted = expired.payload, False
    except Exception:  # anything that is not our signature
        raise Http404("Unknown link") from None
    if not _safe_destination(target.url):
        raise Http404("Unknown link")
    if counted:
        services.tracking_click_record(
            send_id=target.send_id,
            url=target.url,
            user_agent=request.META.get("HTTP_USER_AGENT", ""),
            ip=_client_ip(request),
        )
    response = HttpResponseRedirect(target.url)
    response["Cache-Control"] = NO_CACHE
    response["Referrer-Policy"] = "no-referrer"
    return response


@csrf_exempt  # the signed token is the credential; mail providers' one-click POST carries no CSRF token
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    try:
        send_id = tracking.read_unsubscribe_token(token)
    except tracking.TokenExpired:
        return render(request, "inbound/unsubscribe.html", {"state": "expired"}, status=410)
    except Exception:  # tampered or malformed
        return render(request, "inbound/unsubscribe.html", {"state": "invalid"}, status=400)
    if request.method == "GET":
        return render(request, "inbound/unsubscribe.html", {"state": "confirm"})
    one_click = request.POST.get("List-Unsubscribe") == "One-Click"
    # None (a genuine token whose send is gone with its campaign) also answers 200: nothing is left to stop.
    services.tracking_unsubscribe_record(send_id=send_id, source="one-click" if one_click else "page")
    return render(request, "inbound/unsubscribe.html", {"state": "done"})


# --- provider webhooks ---------------------------------------------------------------------------------

BAD_TOKEN = (401, "unauthorized", "The account token or the Authorization header is wrong; nothing was stored.")
UNPARSEABLE = (400, "invalid_payload", "The body is neither a JSON object nor a form with an `event`.")


class ProviderWebhookView(APIView):
    """Every provider's webhook, as django-anymail's tracking views: validate, normalize, store, hand off.

    Authenticate (secrets compared in constant time) → parse → normalize into
    our own event constants with the provider's mapping tables → store once
    per provider event identity (`provider_event_store`) → hand the event to
    `apply_provider_event_task` once that has committed → answer 200 at once.
    What an event changes is decided where it is applied
    (`inbound.services.provider_event_apply`), never here. Answers 200
    `accepted` (unknown events too: stored raw, changing nothing) or
    `duplicate`, 401 `unauthorized` and 400 `invalid_payload` with nothing
    stored; a database failure is a 5xx, which providers retry.

    A subclass says how its provider is recognised and read: `account`,
    `parse` (raises `smtp2go.UnparseableBody`) and `normalize`.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def account(self, request, **kwargs) -> Account | None:
        raise NotImplementedError

    def parse(self, request) -> dict[str, Any]:
        raise NotImplementedError

    def normalize(self, payload: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def post(self, request, **kwargs):
        account = self.account(request, **kwargs)
        if account is None:
            raise ApplicationError("Unknown account token or bad credentials.", code="unauthorized", status_code=401)
        try:
            payload = self.parse(request)
        except smtp2go.UnparseableBody as exc:
            raise ApplicationError(f"Unparseable body: {exc}.", code="invalid_payload", status_code=400) from None
        event, created = services.provider_event_store(account_id=account.pk, fields=self.normalize(payload))
        if created and event.awaits_applying:
            transaction.on_commit(lambda: apply_provider_event_task.delay(str(event.pk)))
        return Response({"status": "accepted" if created else "duplicate"})


@extend_schema_view(
    post=extend_schema(
        summary="SMTP2GO webhook (bounces, spam reports, unsubscribes, …)",
        description=(
            "Configure `<PUBLIC_BASE_URL>/api/inbound/smtp2go/<account_token>` in SMTP2GO (the token is on the "
            "account's admin page). Accepts SMTP2GO's form-encoded (default) or JSON bodies. Hard bounces and "
            "`reject` bounce the enrollment, `spam` bounces it and unsubscribes the contact, `unsubscribe` "
            "unsubscribes; soft bounces and other events are stored only. Redeliveries (same `email_id`, "
            "`event`, `rcpt`, `time`) and unknown events answer 200 and change nothing."
        ),
        tags=["inbound"],
        auth=[],
        request={
            "application/x-www-form-urlencoded": OpenApiTypes.OBJECT,
            "application/json": OpenApiTypes.OBJECT,
        },
        responses={
            200: inline_serializer(
                "InboundWebhookAccepted",
                {"status": serializers.ChoiceField(choices=["accepted", "duplicate"])},
            ),
            **error_responses(BAD_TOKEN, UNPARSEABLE, auth=False),
        },
    )
)
class Smtp2goWebhookView(ProviderWebhookView):
    """SMTP2GO: the account by the token in the URL, plus the Authorization value the account may require."""

    def account(self, request, account_token: str) -> Account | None:
        account = smtp2go.account_for_token(account_token)
        if account is None or not smtp2go.authorization_ok(account, request.META.get("HTTP_AUTHORIZATION")):
            return None
        return account

    def parse(self, request) -> dict[str, Any]:
        return smtp2go.parse_body(request.body, request.META.get("CONTENT_TYPE", ""))

    def normalize(self, payload: dict[str, Any]) -> dict[str, Any]:
        return smtp2go.normalize(payload)
