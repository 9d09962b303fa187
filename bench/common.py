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


# Bulky rows of an account, deleted set-based before the account itself. Foreign keys are deferred, so
# within one transaction the order is free; it is written children first all the same. The account's
# cascade cannot take its mailboxes (a campaign's SMTP credential PROTECTs its mailbox, and the
# collector refuses before it would reach the campaign's credentials), so the credentials, the rows
# pointing at them and the mailboxes with their days and sync states go here.
BULK_PURGE_SQL = [
    *(
        f"DELETE FROM {table} t USING enrollments_enrollment e, campaigns_campaign c "
        "WHERE t.enrollment_id = e.id AND e.campaign_id = c.id AND c.account_id = ANY(%s)"
        for table in ("inbound_trackingevent", "inbound_inboundmessage")
    ),
    "DELETE FROM inbound_inboundmessage m USING mailboxes_mailbox b "
    "WHERE m.mailbox_id = b.id AND b.account_id = ANY(%s)",
    "DELETE FROM inbound_inboundmessage m USING campaigns_smtpcredential k, campaigns_campaign c "
    "WHERE m.smtp_credential_id = k.id AND k.campaign_id = c.id AND c.account_id = ANY(%s)",
    "DELETE FROM inbound_providerevent WHERE account_id = ANY(%s)",
    "DELETE FROM mailing_scheduledsend s USING campaigns_campaign c "
    "WHERE s.campaign_id = c.id AND c.account_id = ANY(%s)",
    "DELETE FROM enrollments_enrollment e USING campaigns_campaign c "
    "WHERE e.campaign_id = c.id AND c.account_id = ANY(%s)",
    "DELETE FROM enrollments_enrollmentskip s USING campaigns_campaign c "
    "WHERE s.campaign_id = c.id AND c.account_id = ANY(%s)",
    "DELETE FROM contacts_contactimportmember m USING contacts_contactimport i "
    "WHERE m.contact_import_id = i.id AND i.account_id = ANY(%s)",
    "DELETE FROM contacts_contact WHERE account_id = ANY(%s)",
    "DELETE FROM mailing_smtpcredentialday d USING campaigns_smtpcredential k, campaigns_campaign c "
    "WHERE d.smtp_credential_id = k.id AND k.campaign_id = c.id AND c.account_id = ANY(%s)",
    "DELETE FROM campaigns_smtpcredential k USING campaigns_campaign c "
    "WHERE k.campaign_id = c.id AND c.account_id = ANY(%s)",
    "DELETE FROM mailboxes_mailboxday d USING mailboxes_mailbox b WHERE d.mailbox_id = b.id AND b.account_id = ANY(%s)",
    "DELETE FROM inbound_imapsyncstate s USING mailboxes_mailbox b "
    "WHERE s.mailbox_id = b.id AND b.account_id = ANY(%s)",
    "DELETE FROM mailboxes_mailbox WHERE account_id = ANY(%s)",
]


def purge_accounts(account_ids: list) -> None:
    """Delete the accounts' bulky rows, credentials and mailboxes (`BULK_PURGE_SQL`), keeping the accounts
    and their campaigns, in one transaction."""
    from django.db import connection, transaction

    if not account_ids:
        return
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in BULK_PURGE_SQL:
            cursor.execute(statement, [account_ids])


class BenchContext:
    """Shared helpers; each group seeds and cleans up its own data."""

    def fresh_account(self, name: str):
        """A new, empty account (an older one of the same name is deleted first)."""
        from django.db import transaction

        from accounts.models import Account
        from accounts.services import account_get_or_create

        old = list(Account.objects.filter(name=name).values_list("id", flat=True))
        if old:
            # Set-based deletes of the bulky rows first (the ORM cascade would walk
            # them one by one), then the rest by the account's cascade.
            with transaction.atomic():
                purge_accounts(old)
                Account.objects.filter(id__in=old).delete()
        return account_get_or_create(name=name)[0]

    def api_client(self, account):
        from rest_framework.test import APIClient

        from accounts.services import api_key_create

        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(account=account)[1]}")
        return client
