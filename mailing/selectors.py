"""Reads over the send outbox: the forecasts (a campaign's, a mailbox's), a mailbox's usage, and unknown sends."""

from __future__ import annotations

import datetime
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from campaigns.models import Campaign
from enrollments.models import Enrollment
from mailboxes.models import Mailbox, MailboxDay

from . import limits
from .models import ScheduledSend, SmtpCredentialDay

Status = ScheduledSend.Status
FORECAST_STATUSES = (Status.SCHEDULED, Status.QUEUED)


def send_forecast(*, campaign: Campaign, days: int, now: datetime.datetime | None = None) -> list[dict[str, Any]]:
    """Exactly `days` daily buckets from today (the account's time zone) of the sends still to go.

    Each bucket: `{"date", "total", "by_step": {"<position>": n}, "by_credential": {"<id>": n}}`.
    One GROUP BY over the campaign's scheduled and queued rows (index
    `send_campaign_status`); a row overdue (a paused campaign's) counts today.
    """
    zone = limits.account_zone(campaign.account)
    today = limits.local_day(zone, now or timezone.now())
    end = limits.day_start(zone, today + datetime.timedelta(days=days))
    buckets = {
        today + datetime.timedelta(days=i): {"total": 0, "by_step": {}, "by_credential": {}} for i in range(days)
    }
    rows = (
        ScheduledSend.objects.filter(campaign=campaign, status__in=FORECAST_STATUSES, send_at__lt=end)
        .annotate(day=TruncDate("send_at", tzinfo=zone))
        .values("day", "step__position", "smtp_credential_id")
        .annotate(n=Count("*"))
        .order_by()
    )
    for row in rows:
        bucket = buckets[max(row["day"], today)]
        bucket["total"] += row["n"]
        step = str(row["step__position"])
        bucket["by_step"][step] = bucket["by_step"].get(step, 0) + row["n"]
        credential = str(row["smtp_credential_id"]) if row["smtp_credential_id"] else "none"
        bucket["by_credential"][credential] = bucket["by_credential"].get(credential, 0) + row["n"]
    return [{"date": day, **bucket} for day, bucket in buckets.items()]


def unknown_sends(*, campaign: Campaign) -> QuerySet[ScheduledSend]:
    """The campaign's sends whose outcome is unknown (a worker died mid-send), oldest first."""
    return (
        ScheduledSend.objects.filter(campaign=campaign, status=Status.UNKNOWN)
        .select_related("enrollment__contact", "step")
        .order_by("send_at", "id")
    )


def smtp_credentials_messages_sent(*, credential_ids: list[Any]) -> dict[Any, int]:
    """Messages handed to the server through each credential, all steps (one grouped query).

    The per-day outcome counters (`sent` + `bounced`: a 5xx is a message sent
    too) are the bounce rate's denominator, here and in the bounce-rate guard.
    """
    rows = (
        SmtpCredentialDay.objects.filter(smtp_credential_id__in=credential_ids)
        .values("smtp_credential_id")
        .annotate(sent=Sum("sent"), bounced=Sum("bounced"))
        .order_by()
    )
    return {row["smtp_credential_id"]: (row["sent"] or 0) + (row["bounced"] or 0) for row in rows}


def mailbox_forecast(*, mailbox: Mailbox, days: int = 14, now: datetime.datetime | None = None) -> list[dict[str, Any]]:
    """The mailbox's sends still to go, over every campaign and journey using it: `days` daily buckets.

    Each bucket: `{"date", "total", "first_messages", "daily_limit", "by_campaign": {"<id>": n}}`;
    `first_messages` (step 1) are what the daily limit counts, so it is at most `daily_limit` on
    every day dispatch planned. One GROUP BY; a row overdue (a paused campaign's) counts today.
    """
    zone = limits.account_zone(mailbox.account)
    today = limits.local_day(zone, now or timezone.now())
    end = limits.day_start(zone, today + datetime.timedelta(days=days))
    buckets = {
        today + datetime.timedelta(days=i): {
            "total": 0,
            "first_messages": 0,
            "daily_limit": mailbox.daily_limit,
            "by_campaign": {},
        }
        for i in range(days)
    }
    rows = (
        ScheduledSend.objects.filter(
            smtp_credential__mailbox_id=mailbox.pk, status__in=FORECAST_STATUSES, send_at__lt=end
        )
        .annotate(day=TruncDate("send_at", tzinfo=zone))
        .values("day", "campaign_id")
        .annotate(n=Count("*"), first=Count("pk", filter=Q(step__position=1)))
        .order_by()
    )
    for row in rows:
        bucket = buckets[max(row["day"], today)]
        bucket["total"] += row["n"]
        bucket["first_messages"] += row["first"]
        campaign = str(row["campaign_id"])
        bucket["by_campaign"][campaign] = bucket["by_campaign"].get(campaign, 0) + row["n"]
    return [{"date": day, **bucket} for day, bucket in buckets.items()]


def mailbox_usage(*, mailbox: Mailbox, now: datetime.datetime | None = None) -> dict[str, Any]:
    """What the mailbox did, over every campaign and journey using it (four queries).

    `sent_today`: first messages sent since midnight (the account's time
    zone), `reserved_today` what the daily limit has counted (sent, and
    reserved by a worker sending right now), `remaining_today` what it still
    allows; `messages_sent` and `bounces` over its whole life, and their
    `bounce_rate` (%).
    """
    zone = limits.account_zone(mailbox.account)
    today = limits.local_day(zone, now or timezone.now())
    reserved = MailboxDay.objects.filter(mailbox=mailbox, day=today).values_list("reserved", flat=True).first() or 0
    totals = MailboxDay.objects.filter(mailbox=mailbox).aggregate(sent=Sum("sent"), bounced=Sum("bounced"))
    messages = (totals["sent"] or 0) + (totals["bounced"] or 0)
    messages += ScheduledSend.objects.filter(smtp_credential__mailbox=mailbox, outcome_pending=True).count()
    through = Enrollment.objects.filter(smtp_credential__mailbox=mailbox)
    counts = through.aggregate(
        sent_today=Count("pk", filter=Q(sent_at__gte=limits.day_start(zone, today))),
        bounces=Count("pk", filter=Q(status=Enrollment.Status.BOUNCED)),
    )
    return {
        "sent_today": counts["sent_today"],
        "reserved_today": reserved,
        "remaining_today": max(mailbox.daily_limit - reserved, 0),
        "messages_sent": messages,
        "bounces": counts["bounces"],
        "bounce_rate": round(100.0 * counts["bounces"] / messages, 2) if messages else 0.0,
    }
