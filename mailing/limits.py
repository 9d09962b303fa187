"""Daily and monthly limits: days in the account's time zone, and reservations.

A limit is reserved before a message is handed to the server, never counted
after it (DESIGN.md). The counters are the mailbox's per-day row
(`MailboxDay.reserved`, first messages only, shared by every campaign using
the mailbox), the campaign's own per-day row for it
(`SmtpCredentialDay.reserved`, against the credential's optional
`campaign_daily_limit`) and the account's per-month row
(`AccountMonth.reserved`, every message); they only move by conditional
UPDATEs under row locks (mailbox day, then credential day, then month), so
any number of concurrent workers and campaigns can never overshoot.

A worker reserves for the chunk it sends (`Allowance`): a block of up to
`RESERVATION_BLOCK` messages at a time, used one message at a time, and what
it did not use is given back when the chunk ends. One transaction per block
instead of one per message; the price is that a worker killed mid-chunk
leaves at most a block's unused reservations counted for that day (the
safe direction: fewer messages, never more than the limit).
`limits_release` gives a used reservation back when the message is known
not to have gone out (4xx, connection lost before DATA).
"""

from __future__ import annotations

import datetime
from typing import Any

from django.db import transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from accounts.models import Account
from accounts.timezones import account_zone, day_start, local_day  # noqa: F401 (used as limits.*)
from campaigns.models import SmtpCredential
from mailboxes.models import MailboxDay

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


RESERVATION_BLOCK = 25


def _reserve_up_to(rows, *, wanted: int, limit: int | None) -> int:
    """Reserve up to `wanted` on the counter row of `rows`, locking it; returns how many it got (0 at the limit).

    Call inside a transaction.
    """
    reserved = rows.select_for_update().values_list("reserved", flat=True).first()
    if reserved is None:
        return 0
    granted = wanted if limit is None else max(0, min(wanted, limit - reserved))
    if granted:
        rows.update(reserved=F("reserved") + granted)
    return granted


class Allowance:
    """A worker's reservations for one chunk of one credential (module docstring).

    `today` for the day a message counts against (its counter rows created
    on first sight); `take` before each sending commit; `give_back` when the
    message then did not go out after all; `close` when the chunk ends.
    """

    def __init__(self, *, credential: SmtpCredential, account: Account) -> None:
        self.credential, self.account = credential, account
        self.zone = account_zone(account)
        self.ensured: set[datetime.date] = set()  # days whose counter rows exist
        self.days: dict[datetime.date, int] = {}  # reserved and not used yet, per day
        self.months: dict[datetime.date, int] = {}

    def today(self) -> datetime.date:
        """The account's current day (its time zone), with its counter rows (`limits_ensure_rows`)."""
        day = local_day(self.zone, timezone.now())
        if day not in self.ensured:
            limits_ensure_rows(credential=self.credential, account=self.account, day=day)
            self.ensured.add(day)
        return day

    def _day_rows(self, day: datetime.date):
        return SmtpCredentialDay.objects.filter(smtp_credential=self.credential, day=day)

    def _mailbox_day_rows(self, day: datetime.date):
        return MailboxDay.objects.filter(mailbox_id=self.credential.mailbox_id, day=day)

    def _reserve_day(self, day: datetime.date, wanted: int) -> int:
        """Reserve up to `wanted` first messages of `day` on the mailbox's row and the campaign's, alike."""
        mailbox_reserved = self._mailbox_day_rows(day).select_for_update().values_list("reserved", flat=True).first()
        own_reserved = self._day_rows(day).select_for_update().values_list("reserved", flat=True).first()
        if mailbox_reserved is None or own_reserved is None:
            return 0
        granted = min(wanted, self.credential.mailbox.daily_limit - mailbox_reserved)
        if self.credential.campaign_daily_limit is not None:
            granted = min(granted, self.credential.campaign_daily_limit - own_reserved)
        granted = max(granted, 0)
        if granted:
            self._mailbox_day_rows(day).update(reserved=F("reserved") + granted)
            self._day_rows(day).update(reserved=F("reserved") + granted)
        return granted

    def _month_rows(self, month: datetime.date):
        return AccountMonth.objects.filter(account=self.account, month=month)

    def take(self, *, day: datetime.date, first_message: bool, firsts_left: int = 1, left: int = 1) -> str | None:
        """Use one message of `day` (and of its month). None when taken, else `DAILY_LIMIT` or `PLAN_LIMIT`.

        The mailbox's daily limit (and the campaign's own cap on it) counts first messages (step 1) only, as the
        dispatcher plans them (the seed: "step 2/3 don't count against today");
        the account's monthly plan limit counts every message. `firsts_left` and
        `left`: the first messages and the messages the chunk may still send,
        this one included, so a block never holds what the chunk will not use.
        """
        month = month_of(day)
        need_day = first_message and not self.days.get(day)
        need_month = not self.months.get(month)
        if need_day or need_month:
            day_got = month_got = 0
            with transaction.atomic():  # one commit for both counters
                if need_day:
                    day_got = self._reserve_day(day, max(1, min(firsts_left, RESERVATION_BLOCK)))
                if need_month and (day_got or not need_day):
                    month_got = _reserve_up_to(
                        self._month_rows(month),
                        wanted=max(1, min(left, RESERVATION_BLOCK)),
                        limit=self.account.monthly_limit,
                    )
            # Counted only once committed: a rollback must not leave reservations we would give back.
            if need_day:
                self.days[day] = day_got
            if need_month:
                self.months[month] = month_got
        if first_message and not self.days.get(day):
            return DAILY_LIMIT
        if not self.months.get(month):
            return PLAN_LIMIT
        if first_message:
            self.days[day] -= 1
        self.months[month] -= 1
        return None

    def give_back(self, *, day: datetime.date, first_message: bool) -> None:
        """The message taken for `day` did not go out: its reservation serves the next one."""
        if first_message:
            self.days[day] = self.days.get(day, 0) + 1
        self.months[month_of(day)] = self.months.get(month_of(day), 0) + 1

    def close(self) -> None:
        """Give back every reservation not used (one UPDATE per day and month)."""
        with transaction.atomic():
            for day, unused in self.days.items():
                if unused:
                    self._mailbox_day_rows(day).update(reserved=Greatest(F("reserved") - unused, 0))
                    self._day_rows(day).update(reserved=Greatest(F("reserved") - unused, 0))
            for month, unused in self.months.items():
                if unused:
                    self._month_rows(month).update(reserved=Greatest(F("reserved") - unused, 0))
        self.days, self.months = {}, {}


def _credential_day_ensure(credential_id: Any, day: datetime.date) -> None:
    SmtpCredentialDay.objects.bulk_create(
        [SmtpCredentialDay(smtp_credential_id=credential_id, day=day)], ignore_conflicts=True
    )


def _mailbox_day_ensure(mailbox_id: Any, day: datetime.date) -> None:
    MailboxDay.objects.bulk_create([MailboxDay(mailbox_id=mailbox_id, day=day)], ignore_conflicts=True)


def _mailbox_of(credential_id: Any) -> Any:
    return SmtpCredential.objects.filter(pk=credential_id).values_list("mailbox_id", flat=True).first()


def limits_ensure_rows(*, credential: SmtpCredential, account: Account, day: datetime.date) -> None:
    """Create the mailbox's and the credential's rows for `day` and the account's for its month, if missing."""
    _mailbox_day_ensure(credential.mailbox_id, day)
    _credential_day_ensure(credential.pk, day)
    AccountMonth.objects.bulk_create([AccountMonth(account=account, month=month_of(day))], ignore_conflicts=True)


def limits_release(*, credential_id: Any, account_id: Any, day: datetime.date, first_message: bool = True) -> None:
    """Give back one reservation used for `day` (the message did not go out)."""
    if first_message:
        MailboxDay.objects.filter(mailbox_id=_mailbox_of(credential_id), day=day, reserved__gt=0).update(
            reserved=F("reserved") - 1
        )
        SmtpCredentialDay.objects.filter(smtp_credential_id=credential_id, day=day, reserved__gt=0).update(
            reserved=F("reserved") - 1
        )
    AccountMonth.objects.filter(account_id=account_id, month=month_of(day), reserved__gt=0).update(
        reserved=F("reserved") - 1
    )


def count_outcome(
    *, credential_id: Any, day: datetime.date, sent: int = 0, bounced: int = 0, mailbox_id: Any = None
) -> None:
    """Add messages the server took (`sent`) or refused with a 5xx (`bounced`) to the day's counters.

    Counted on its mailbox's row (the mailbox's health, over every campaign) and on the campaign's,
    in the order the reservations lock them (mailbox day, then credential day), so a worker counting
    and another reserving never wait on each other in a cycle. The day's rows are created when
    missing: a message reserved before midnight may be counted after it.
    """
    counted = {"sent": F("sent") + sent, "bounced": F("bounced") + bounced}
    mailbox_id = mailbox_id or _mailbox_of(credential_id)  # callers that know it save the lookup
    if mailbox_id is not None:
        mailbox_rows = MailboxDay.objects.filter(mailbox_id=mailbox_id, day=day)
        if not mailbox_rows.update(**counted):
            _mailbox_day_ensure(mailbox_id, day)
            mailbox_rows.update(**counted)
    rows = SmtpCredentialDay.objects.filter(smtp_credential_id=credential_id, day=day)
    if not rows.update(**counted):
        _credential_day_ensure(credential_id, day)
        rows.update(**counted)
