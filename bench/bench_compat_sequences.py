"""GET /api/sequences/v1/enrollments at depth 900,000 of 1,000,000 vs the first page.

Reuses the enrollments group's 1,000,000-enrollment account (one campaign,
half of it sent; `bench_enrollments._seed_list_campaign`, seeded only when
missing) rather than seeding another million. The deep page follows a
cursor built for the enrollment at position 900,000 in the list's order, as
a client paging that far would hold. Target: within 1.5x of the first page.
"""

from __future__ import annotations

from django.db import connection

from bench.bench_enrollments import _seed_list_campaign
from bench.common import Result, median_seconds
from core.pagination import encode_cursor
from enrollments.models import Enrollment

DEPTH = 900_000
URL = "/api/sequences/v1/enrollments?limit=100"


def _page_figure(ctx) -> Result:
    account, campaign = _seed_list_campaign(ctx)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE enrollments_enrollment")
    client = ctx.api_client(account)
    position = Enrollment.objects.filter(campaign=campaign).order_by("id").values_list("id", flat=True)[DEPTH - 1]
    deep = f"{URL}&cursor={encode_cursor([position])}"
    first_page, deep_page = client.get(URL), client.get(deep)
    assert first_page.status_code == deep_page.status_code == 200
    assert len(first_page.json()["enrollments"]) == len(deep_page.json()["enrollments"]) == 100
    first_seconds = median_seconds(lambda: client.get(URL), repeat=15, warmup=3)
    deep_seconds = median_seconds(lambda: client.get(deep), repeat=15, warmup=3)
    return Result(
        "GET /api/sequences/v1/enrollments at depth 900k of 1M vs first page",
        round(deep_seconds * 1000, 2),
        "ms",
        baseline=round(first_seconds * 1000, 2),
        target="<= 1.5x",
        ok=deep_seconds <= 1.5 * first_seconds,
        extra={"depth": DEPTH, "rows_per_page": 100},
    )


def run(ctx) -> list:
    return [_page_figure(ctx)]
