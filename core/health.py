"""`GET /healthz`: 200 when the database and the broker answer, 503 naming which does not."""

import logging

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from kombu import Connection

logger = logging.getLogger(__name__)


def _database_ok() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True, "ok"
    except Exception as exc:  # any failure means "not reachable"
        return False, str(exc) or exc.__class__.__name__


def _broker_ok() -> tuple[bool, str]:
    try:
        with Connection(
            settings.CELERY_BROKER_URL,
            transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS,
            connect_timeout=2,
        ) as conn:
            conn.ensure_connection(max_retries=0, timeout=2)
        return True, "ok"
    except Exception as exc:
        return False, str(exc) or exc.__class__.__name__


def healthz(request):
    checks = {}
    for name, probe in (("database", _database_ok), ("broker", _broker_ok)):
        ok, detail = probe()
        checks[name] = {"ok": ok}
        if not ok:
            # the error text can name hosts and users: logged for the operator, never shown publicly
            logger.error("healthz: %s unreachable: %s", name, detail)
    failing = [name for name, result in checks.items() if not result["ok"]]
    body = {"status": "ok" if not failing else "unavailable", "checks": checks}
    if failing:
        body["failing"] = failing
    return JsonResponse(body, status=503 if failing else 200)
