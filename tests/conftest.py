"""Shared fixtures: an `owner` and an `outsider` account, each with an API client.

Tests run against real PostgreSQL and Redis (DATABASE_URL / REDIS_URL, set by
`make test`). Each xdist worker gets its own test database from pytest-django.
"""

import os

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from accounts.services import account_get_or_create, api_key_create


def pytest_configure(config):
    """Give each xdist worker a Redis database of its own (broker, cache, open-hit queue).

    Some tests wipe their Redis database or run real Celery workers on it; with
    one database shared by both pytest processes they would take each other's
    tasks and cached values. Subprocesses inherit the URL through the environment.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw") or not settings.REDIS_URL:
        return
    base, _, first = settings.REDIS_URL.rpartition("/")
    # Database N of the URL gives workers N+8, N+9: two suites run side by side with /0 and /2.
    url = f"{base}/{8 + int(first or 0) + int(worker[2:])}"
    os.environ["REDIS_URL"] = url
    settings.REDIS_URL = settings.CELERY_BROKER_URL = url
    settings.CACHES = {**settings.CACHES, "default": {**settings.CACHES["default"], "LOCATION": url}}
    from config.celery import app

    app.conf.broker_url = url


def _client_for(raw_key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


@pytest.fixture
def owner(db):
    account, _ = account_get_or_create(name="Owner Inc")
    return account


@pytest.fixture
def outsider(db):
    account, _ = account_get_or_create(name="Outsider LLC")
    return account


@pytest.fixture
def owner_key(owner):
    return api_key_create(account=owner)[1]


@pytest.fixture
def api(owner_key):
    """An API client authenticated as the owner."""
    return _client_for(owner_key)


@pytest.fixture
def outsider_api(outsider):
    return _client_for(api_key_create(account=outsider)[1])


@pytest.fixture
def anon_api():
    return APIClient()
