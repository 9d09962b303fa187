"""A Redis list of pixel loads, so the pixel endpoint answers without touching the database.

The pixel is the hottest endpoint (every image-loading client, every
proxy): the view verifies the signed token and RPUSHes one small JSON item
(about 0.1 ms); `apply_open_hits_task` (beat, every 2 s) pops them in batches
and applies each through `tracking_open_record` (the state machine's
transition, its webhook event, the prefetch rule). A Celery task per hit
cost 2 ms of the request in kombu; a database insert would cost a round trip
and a WAL write per load.

The key names the database, so several databases sharing one Redis (tests
in parallel, staging) never apply each other's hits. Without REDIS_URL
(`make run`), or when Redis refuses the push, the view applies the hit
inline instead. A Redis wipe loses the hits not yet applied (at most a few
seconds of opens); nothing else depends on them. A load of a message still
`sending` (the server took it a moment ago; the worker writes `sent` with its
next message) is pushed back for a later round.
"""

from __future__ import annotations

import datetime
import json
import logging
import threading
import uuid

from django.conf import settings
from django.db import DatabaseError

from .services import tracking_open_record

logger = logging.getLogger(__name__)
_local = threading.local()
BATCH = 500


def _key() -> str:
    # The prefix predates the inbound app; kept, so hits a web process of the previous release
    # queued during a deploy are still applied.
    return f"mailing:open-hits:{settings.DATABASES['default']['NAME']}"


def _client():
    if not settings.REDIS_URL:
        return None
    client = getattr(_local, "client", None)
    if client is None or getattr(_local, "url", None) != settings.REDIS_URL:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1.0, socket_connect_timeout=1.0)
        _local.client, _local.url = client, settings.REDIS_URL
    return client


def open_hit_push(*, send_id: uuid.UUID, user_agent: str, ip: str | None, at: datetime.datetime) -> bool:
    """Queue one pixel load; False when there is no Redis to queue it in (the caller applies it inline)."""
    client = _client()
    if client is None:
        return False
    client.rpush(_key(), json.dumps([str(send_id), user_agent, ip, at.isoformat()]))
    return True


def open_hits_apply(*, limit: int = 20_000) -> int:
    """Apply up to `limit` queued loads, oldest first; returns how many were popped."""
    client = _client()
    if client is None:
        return 0
    done = 0
    in_flight: list[str] = []  # loads of messages the worker has not recorded as sent yet: next time
    while done < limit:
        items = client.lpop(_key(), BATCH) or []
        for index, raw in enumerate(items):
            try:
                send_id, user_agent, ip, at = json.loads(raw)
                hit = {"send_id": uuid.UUID(send_id), "user_agent": user_agent, "ip": ip}
                hit["at"] = datetime.datetime.fromisoformat(at)
            except (ValueError, TypeError):
                logger.warning("open_queue: dropping an unreadable hit %r", raw[:200])
                continue
            try:
                if tracking_open_record(**hit) is None:
                    in_flight.append(raw)
            except DatabaseError:
                # The database is away: give this hit and the rest of the batch back, oldest first.
                client.lpush(_key(), *reversed(items[index:]))
                raise
        done += len(items)
        if len(items) < BATCH:
            break
    if in_flight:
        client.rpush(_key(), *in_flight)
    return done
