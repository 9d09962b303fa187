"""What every benchmark group shares: timing, results, a throwaway account."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Result:
    """One figure. `ratio` is value / baseline (lower is better unless `higher_is_better`)."""

    name: str
    value: float | int | None
    unit: str
    baseline: float | int | None = None
    target: str = ""
    ok: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    group: str = ""

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.baseline:
            return None
        return round(self.value / self.baseline, 3)

    def verdict(self) -> str:
        return "-" if self.ok is None else ("yes" if self.ok else "NO")

    def line(self) -> str:
        parts = [f"{self.name}: {self.value} {self.unit}"]
        if self.baseline is not None:
            parts.append(f"baseline {self.baseline} (ratio {self.ratio})")
        if self.target:
            parts.append(f"target {self.target}: {self.verdict()}")
        if self.extra:
            parts.append(str(self.extra))
        return "; ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ratio"] = self.ratio
        return data


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, return value) of one call."""
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def median_seconds(fn: Callable[[], Any], *, repeat: int = 5, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


# Bulky rows of an account, deleted set-based before the account itself.
BULK_PURGE_SQL = [
    "DELETE FROM enrollments_enrollment e USING campaigns_campaign c "
    "WHERE e.campaign_id = c.id AND c.account_id = ANY(%s)",
    "DELETE FROM enrollments_enrollmentskip s USING campaigns_campaign c "
    "WHERE s.campaign_id = c.id AND c.account_id = ANY(%s)",
    "DELETE FROM contacts_contactimportmember m USING contacts_contactimport i "
    "WHERE m.contact_import_id = i.id AND i.account_id = ANY(%s)",
    "DELETE FROM contacts_contact WHERE account_id = ANY(%s)",
]


class BenchContext:
    """Shared helpers; each group seeds and cleans up its own data."""

    def fresh_account(self, name: str):
        """A new, empty account (an older one of the same name is deleted first)."""
        from django.db import connection, transaction

        from accounts.models import Account
        from accounts.services import account_get_or_create

        old = list(Account.objects.filter(name=name).values_list("id", flat=True))
        if old:
            # Set-based deletes of the bulky rows first (the ORM cascade would walk
            # them one by one); foreign keys are deferred, so the order is free.
            with transaction.atomic(), connection.cursor() as cursor:
                for statement in BULK_PURGE_SQL:
                    cursor.execute(statement, [old])
                Account.objects.filter(id__in=old).delete()
        return account_get_or_create(name=name)[0]

    def api_client(self, account):
        from rest_framework.test import APIClient

        from accounts.services import api_key_create

        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(account=account)[1]}")
        return client
