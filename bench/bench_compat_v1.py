"""GET /api/v1/enrollments?page=N with 1,000,000 enrollments in the account: the curve of page depth.

Reuses the enrollments group's 1,000,000-enrollment account
(`bench_enrollments._seed_list_campaign`, seeded only when missing) rather
than seeding another million. The seed's pages are offsets (page N at limit
100 skips (N - 1) x 100 rows), so a deep page costs a scan to its offset: the
figures report how far that degrades, each page beside page 1. `total` is
summed from the enrollment tally, so it costs the same on every page.
No target: the curve is reported (issue 14).
"""

from __future__ import annotations

from django.db import connection

from bench.bench_enrollments import _seed_list_campaign
from bench.common import Result, median_seconds

URL = "/api/v1/enrollments?limit=100"
PAGES = (1, 10, 100, 1000, 10000)


def _curve(ctx) -> list[Result]:
    account, _ = _seed_list_campaign(ctx)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE enrollments_enrollment")  # the visibility map lets the offset skip the heap
    client = ctx.api_client(account)
    seconds = {}
    for page in PAGES:
        response = client.get(f"{URL}&page={page}")
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["pagination"]["total"] == 1_000_000, body["pagination"]
        assert len(body["enrollments"]) == 100
        seconds[page] = median_seconds(lambda page=page: client.get(f"{URL}&page={page}"), repeat=9, warmup=2)
    first = seconds[1]
    curve = [
        Result(
            f"GET /api/v1/enrollments?page={page}&limit=100 (offset {(page - 1) * 100:,}) of 1M vs page 1",
            round(seconds[page] * 1000, 2),
            "ms",
            baseline=round(first * 1000, 2),
            extra={"offset": (page - 1) * 100},
        )
        for page in PAGES
    ]
    # A `completed` filter: its total is a COUNT over the account's enrollments, not the tally.
    filtered = median_seconds(lambda: client.get(f"{URL}&completed=false"), repeat=9, warmup=2)
    return [
        *curve,
        Result(
            "GET /api/v1/enrollments?completed=false&limit=100 (page 1; total by COUNT) of 1M vs page 1",
            round(filtered * 1000, 2),
            "ms",
            baseline=round(first * 1000, 2),
        ),
    ]


def run(ctx) -> list:
    return _curve(ctx)
