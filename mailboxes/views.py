"""The OAuth2 redirect back from Google or Microsoft: a plain Django view at /oauth/callback.

The browser of the mailbox's owner lands here after granting (or refusing)
access; the signed `state` says which mailbox. An operator signed in to the
admin is taken back to the mailbox's admin page with a message; anyone else
gets a short page that says what happened.
"""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from core.errors import ApplicationError

from . import services


def _admin_user(request: HttpRequest) -> bool:
    return request.user.is_authenticated and request.user.is_staff


@require_GET
def oauth_callback(request: HttpRequest) -> HttpResponse:
    error = request.GET.get("error")
    if error:
        detail = request.GET.get("error_description") or error
        message = f"Access was not granted ({detail}). Start the connection again to retry."
        return render(request, "mailboxes/oauth_result.html", {"message": message}, status=400)
    try:
        mailbox = services.mailbox_oauth_complete(state=request.GET.get("state", ""), code=request.GET.get("code", ""))
    except ApplicationError as exc:
        return render(request, "mailboxes/oauth_result.html", {"message": exc.message}, status=exc.status_code)
    if _admin_user(request):
        messages.success(request, f"{mailbox.email} is connected: it can send and read replies.")
        return HttpResponseRedirect(reverse("admin:mailboxes_mailbox_change", args=[mailbox.pk]))
    return render(request, "mailboxes/oauth_result.html", {"mailbox": mailbox})
