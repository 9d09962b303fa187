"""Contacts: a 100,000-row CSV import, and the contact list at depth.

- Import through the import service (validation, merge, upsert, links) vs a
  raw `COPY` of the same CSV into a plain table. Target: at most 4x.
- `GET /api/contacts` after 90,000 rows vs the first page. Target: within
  1.5x, with the same query count per page.
"""

from __future__ import annotations

import io
import random

from django.db import connection
from django.test.utils import CaptureQueriesContext

from bench.common import Result, median_seconds, timed
from contacts.importing import ImportRows
from contacts.models import Contact
from contacts.services import contact_import_create
from core.pagination import encode_cursor

ROWS = 100_000
DEPTH = 90_000


def _csv(rows: int) -> bytes:
    rng = random.Random(7)
    out = io.StringIO()
    out.write("email,first_name,last_name,company,plan\n")
    for n in range(rows):
        out.write(f"person{n}@domain{rng.randrange(5000)}.example.com,First{n},Last{n},Company {n % 997},tier{n % 3}\n")
    return out.getvalue().encode()


def _raw_copy(data: bytes) -> None:
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_plain_contacts")
        cursor.execute(
            "CREATE TABLE bench_plain_contacts (email text, first_name text, last_name text, company text, plan text)"
        )
        with cursor.copy("COPY bench_plain_contacts FROM STDIN WITH (FORMAT csv, HEADER true)") as copy:
            copy.write(data)
        cursor.execute("DROP TABLE bench_plain_contacts")


def run(ctx) -> list:
    data = _csv(ROWS)
    results = []

    baseline = median_seconds(lambda: _raw_copy(data), repeat=3)
    samples = []
    for attempt in range(3):
        account = ctx.fresh_account(f"bench-contacts-import-{attempt}")
        seconds, contact_import = timed(
            lambda account=account: contact_import_create(
                account=account, name="bench.csv", rows=ImportRows.from_csv(io.BytesIO(data))
            )
        )
        assert contact_import.created == ROWS, contact_import.created
        samples.append(seconds)
    samples.sort()
    value = samples[1]
    results.append(
        Result(
            "import 100k-row CSV (service) vs raw COPY",
            round(value, 3),
            "s",
            baseline=round(baseline, 3),
            target="<= 4x",
            ok=value <= 4 * baseline,
            extra={"rows_per_second": round(ROWS / value)},
        )
    )

    reimport_seconds, reimported = timed(
        lambda: contact_import_create(account=account, name="again.csv", rows=ImportRows.from_csv(io.BytesIO(data)))
    )
    assert reimported.updated == ROWS
    results.append(Result("re-import 100k rows (all updates)", round(reimport_seconds, 3), "s"))

    # The list at depth, on the last account (100,000 contacts, one created_at).
    # Statistics as autovacuum would have them after a bulk load.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE contacts_contact")
    client = ctx.api_client(account)
    row = Contact.objects.filter(account=account).order_by("created_at", "id")[DEPTH - 1 : DEPTH].get()
    deep_url = f"/api/contacts?limit=100&cursor={encode_cursor([row.created_at, row.id])}"
    first_url = "/api/contacts?limit=100"
    assert client.get(deep_url).status_code == 200
    first = median_seconds(lambda: client.get(first_url), repeat=15, warmup=3)
    deep = median_seconds(lambda: client.get(deep_url), repeat=15, warmup=3)
    with CaptureQueriesContext(connection) as first_queries:
        client.get(first_url)
    with CaptureQueriesContext(connection) as deep_queries:
        client.get(deep_url)
    results.append(
        Result(
            "GET /api/contacts at depth 90k vs first page",
            round(deep * 1000, 2),
            "ms",
            baseline=round(first * 1000, 2),
            target="<= 1.5x, same queries",
            ok=deep <= 1.5 * first and len(deep_queries) == len(first_queries),
            extra={"queries_first": len(first_queries), "queries_deep": len(deep_queries)},
        )
    )
    return results
