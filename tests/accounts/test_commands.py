import io

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from accounts.models import Account

pytestmark = pytest.mark.django_db


def _run(*args) -> list[str]:
    out = io.StringIO()
    call_command("create_api_key", *args, stdout=out)
    return out.getvalue().strip().splitlines()


def test_create_api_key_creates_the_account_and_prints_a_working_key_last():
    lines = _run("--account", "Acme", "--monthly-limit", "5000")
    account = Account.objects.get(name="Acme")
    assert account.monthly_limit == 5000
    raw_key = lines[-1]
    assert raw_key.startswith("ok_") and " " not in raw_key
    client = APIClient()
    assert client.get("/api/contacts", HTTP_AUTHORIZATION=f"Bearer {raw_key}").status_code == 200


def test_create_api_key_reuses_an_existing_account_and_keeps_its_limit():
    _run("--account", "Acme", "--monthly-limit", "10")
    first, second = _run("--account", "Acme")[-1], _run("--account", "Acme")[-1]
    assert first != second
    assert Account.objects.filter(name="Acme").count() == 1
    assert Account.objects.get(name="Acme").monthly_limit == 10


def test_create_api_key_refuses_a_negative_limit():
    with pytest.raises(CommandError):
        _run("--account", "Acme", "--monthly-limit", "-1")
    assert not Account.objects.filter(name="Acme").exists()
