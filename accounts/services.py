"""Writes for accounts and API keys."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from .models import Account, ApiKey

KEY_PREFIX = "ok_"
PREFIX_LENGTH = 11  # "ok_" and 8 characters of the secret
# last_used_at is a hint, not an audit log: write it at most once a minute
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_api_key(raw_key: str) -> str:
    """Keys are 32 random bytes, so a fast hash is enough (no dictionary to attack)."""
    return hashlib.sha256(raw_key.encode()).hexdigest()


@transaction.atomic
def account_get_or_create(*, name: str, monthly_limit: int | None = None) -> tuple[Account, bool]:
    """The account named `name`, made if missing; `monthly_limit` is set when given."""
    account, created = Account.objects.get_or_create(name=name, defaults={"monthly_limit": monthly_limit})
    if not created and monthly_limit is not None and account.monthly_limit != monthly_limit:
        account.monthly_limit = monthly_limit
        account.save(update_fields=["monthly_limit", "updated_at"])
    return account, created


@transaction.atomic
def api_key_create(*, account: Account, name: str = "") -> tuple[ApiKey, str]:
    """A new key for `account`. Returns the row and the raw key, which is never stored."""
    raw_key = KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(
        account=account, name=name, prefix=raw_key[:PREFIX_LENGTH], key_hash=hash_api_key(raw_key)
    )
    return api_key, raw_key


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    api_key.refresh_from_db(fields=["revoked_at"])
    return api_key


def api_key_touch(*, api_key: ApiKey) -> None:
    """Record use, at most once per LAST_USED_RESOLUTION so requests stay read-only."""
    now = timezone.now()
    if api_key.last_used_at and now - api_key.last_used_at < LAST_USED_RESOLUTION:
        return
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    api_key.last_used_at = now
