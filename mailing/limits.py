"""Daily and monthly limits: days in the account's time zone, and reservations.

A limit is reserved before a message is handed to the server, never counted
after it (DESIGN.md): `limits_reserve` increments the credential's per-day
row and the account's per-month row with conditional UPDATEs
(`WHERE reserved < limit`), so any number of concurrent workers can never
overshoot; `limits_release` gives a reservation back when the message is
known not to have gone out (4xx, connection lost before DATA).
"""

from __future__ import annotations

import datetime
from typing import Any

from django.db.models import F
from django.utils import timezone

from accounts.models import Account
from accounts.timezones import account_zone, day_start, local_day  # noqa: F401 (used as limits.*)
from campaigns.models import SmtpCredential

from .models import AccountMonth, SmtpCredentialDay

DAILY_LIMIT = "daily_limit"
PLAN_LIMIT = "plan_limit"


def month_of(day: datetime.date) -> datetime.date:
    return day.replace(day=1)


def next_month(month: datetime.date) -> datetime.date:
    return (month + datetime.timedelta(days=32)).replace(day=1)


def month_reserved(*, account: Account, at: datetime.datetime | None = None) -> int:
    """Messages reserved by the account in the calendar month of `at` (its time zone)."""
    month = month_of(local_day(account_zone(account), at or timezone.now()))
    row = AccountMonth.objects.filter(account=account, month=month).values_list("reserved", flat=True).first()
    return row or 0


def plan_limit_reached(*, account: Account, at: datetime.datetime | None = None) -> bool:
    return account.monthly_limit is not None and month_reserved(account=account, at=at) >= account.monthly_limit


def limits_reserve(
    *,
    credential: SmtpCredential,
    account: Account,
    day: datetime.date,
    ensure_rows: bool = True,
    first_message: bool = True,
) -> str | None:
    """Reserve one message of the credential's `day` and of the account's month.

    The credential's daily limit counts first messages (step 1) only, as the
    dispatcher plans them: follow-ups (`first_message=False`) do not count
    against the day (the seed: "step 2/3 don't count against today") but do
    count against the account's monthly plan limit, which counts every send.

    Call inside the transaction that marks the send `sending`, so a rollback
    gives both back. Returns None when reserved, else `DAILY_LIMIT` or
    `PLAN_LIMIT` (nothing reserved: the caller rolls back or defers).
    `ensure_rows=False` when the caller already created the day's and the
    month's rows (`limits_ensure_rows`), saving two statements per message.
    """
    if ensure_rows:
        limits_ensure_rows(credential=credential, account=account, day=day)
    if first_message:
        got_day = SmtpCredentialDay.objects.filter(
            smtp_credential=credential, day=day, reserved__lt=credential.daily_limit
        ).update(reserved=F("reserved") + 1)
        if not got_day:
            return DAILY_LIMIT
    month = month_of(day)
    if account.monthly_limit is not None:
        got_month = AccountMonth.objects.filter(
            account=account, month=month, reserved__lt=account.monthly_limit
        ).update(reserved=F("reserved") + 1)
        if not got_month:
            if first_message:
                SmtpCredentialDay.objects.filter(smtp_credential=credential, day=day).update(reserved=F("reserved") - 1)
            return PLAN_LIMIT
    else:
        AccountMonth.objects.filter(account=account, month=month).update(reserved=F("reserved") + 1)
    return None


def limits_ensure_rows(*, credential: SmtpCredential, account: Account, day: datetime.date) -> None:
    """Create the credential's row for `day` and the account's for its month, if missing."""
    SmtpCredentialDay.objects.bulk_create(
        [SmtpCredentialDay(smtp_credential=credential, day=day)], ignore_conflicts=True
    )
    AccountMonth.objects.bulk_create([AccountMonth(account=account, month=month_of(day))], ignore_conflicts=True)


def limits_release(*, credential_id: Any, account_id: Any, day: datetime.date, first_message: bool = True) -> None:
    """Give back one reservation made by `limits_reserve` for `day` (the message did not go out)."""
    if first_message:
        SmtpCredentialDay.objects.filter(smtp_credential_id=credential_id, day=day, reserved__gt=0).update(
            reserved=F("reserved") - 1
        )
    AccountMonth.objects.filter(account_id=account_id, month=month_of(day), reserved__gt=0).update(
        reserved=F("reserved") - 1
    )


def count_outcome(*, credential_id: Any, day: datetime.date, sent: int = 0, bounced: int = 0) -> None:
    """Add messages the server took (`sent`) or refused with a 5xx (`bounced`) to the day's counters."""
    SmtpCredentialDay.objects.filter(smtp_credential_id=credential_id, day=day).update(
        sent=F("sent") + sent, bounced=F("bounced") + bounced
    )
