"""Days in an account's time zone: daily limits, `sent_today`, forecasts all count from local midnight."""

from __future__ import annotations

import datetime
import zoneinfo

from .models import Account


def account_zone(account: Account) -> datetime.tzinfo:
    """The account's zone; UTC when its name is empty or unknown to this machine."""
    try:
        return zoneinfo.ZoneInfo(account.timezone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return datetime.UTC


def local_day(zone: datetime.tzinfo, at: datetime.datetime) -> datetime.date:
    return at.astimezone(zone).date()


def day_start(zone: datetime.tzinfo, day: datetime.date) -> datetime.datetime:
    """Midnight of `day` in `zone`, as an aware datetime (DST-safe)."""
    return datetime.datetime.combine(day, datetime.time(), tzinfo=zone)
