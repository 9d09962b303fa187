"""Values in and out of raw SQL that runs on PostgreSQL and on SQLite (`make run`).

The ORM converts these itself; a raw statement must. PostgreSQL takes and
answers UUIDs and aware datetimes as they are; SQLite stores UUIDs as 32 hex
digits and datetimes as naive UTC text.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from django.db import connection, models
from django.utils import timezone
from django.utils.dateparse import parse_datetime

_UUID_FIELD = models.UUIDField()


def to_db(value: Any) -> Any:
    """A parameter as the backend stores it (UUIDs and datetimes converted; anything else as it is)."""
    if isinstance(value, uuid.UUID):
        return _UUID_FIELD.get_db_prep_value(value, connection)
    if isinstance(value, datetime.datetime):
        return connection.ops.adapt_datetimefield_value(value)
    return value


def uuid_from_db(value: Any) -> uuid.UUID | None:
    """A UUID a raw query answered."""
    return None if value is None else value if isinstance(value, uuid.UUID) else uuid.UUID(value)


def datetime_from_db(value: Any) -> datetime.datetime | None:
    """An aware datetime from what a raw query answered."""
    if value is None:
        return None
    if isinstance(value, str):
        value = parse_datetime(value)
    return value if timezone.is_aware(value) else timezone.make_aware(value, datetime.UTC)
