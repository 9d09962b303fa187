"""`make bench`: run every benchmark group, print a table, write bench/results/latest.json.

Each group is a module `bench/bench_<group>.py` with `run(ctx) -> list[Result]`.
It seeds its own data in the bench database (DATABASE_URL, a database of its
own: `make bench` points it at `…/outreach_bench`), measures, and reports each
figure beside a raw baseline measured in the same run.

    python -m bench.run [--only GROUP ...]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"


def _ensure_database() -> None:
    """Create the bench database if it does not exist yet, then migrate it."""
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        sys.exit("make bench needs PostgreSQL: set DATABASE_URL (make bench sets BENCH_DATABASE_URL).")
    conninfo = {"host": db["HOST"] or "127.0.0.1", "port": db["PORT"] or 5432, "user": db["USER"] or "postgres"}
    if db.get("PASSWORD"):
        conninfo["password"] = db["PASSWORD"]
    with psycopg.connect(dbname="postgres", autocommit=True, **conninfo) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{db["NAME"]}"')
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def _groups() -> list[str]:
    here = Path(__file__).resolve().parent
    return sorted(
        m.name.removeprefix("bench_") for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_")
    )


def _format(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3f}" if value < 100 else f"{value:,.0f}"
    return str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="group names (default: all)")
    args = parser.parse_args(argv)

    import django

    django.setup()
    _ensure_database()
    from bench.common import BenchContext

    selected = args.only or _groups()
    ctx = BenchContext()
    results, started = [], time.perf_counter()
    for group in selected:
        module = importlib.import_module(f"bench.bench_{group}")
        print(f"== {group}", flush=True)
        for result in module.run(ctx):
            result.group = group
            results.append(result)
            print("   " + result.line(), flush=True)

    print()
    header = ("benchmark", "value", "unit", "baseline", "ratio", "target", "ok")
    rows = [
        (r.name, _format(r.value), r.unit, _format(r.baseline), _format(r.ratio), r.target or "-", r.verdict())
        for r in results
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    for row in (header, *rows):
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
                "seconds": round(time.perf_counter() - started, 1),
                "results": [r.as_dict() for r in results],
            },
            indent=2,
        )
    )
    print(f"\nwrote {RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
