"""The project runs as `make run` runs it: the embedded PostgreSQL of requirements-dev.txt
(started by scripts/local_postgres.py), a filesystem broker and no other environment; and it is
clean under `check --deploy` with production values."""

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT_VARIABLES = ("DATABASE_URL", "REDIS_URL", "DEBUG", "SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "PUBLIC_BASE_URL")

pytestmark = pytest.mark.slow


def _manage(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _local_postgres(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "scripts/local_postgres.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip()


@pytest.fixture(scope="module")
def embedded_postgres(tmp_path_factory):
    """The server `make run` starts, in a folder and on a port of this module's own."""
    data, port = tmp_path_factory.mktemp("postgres") / "data", str(_free_port())
    _local_postgres("start", "--data", str(data), "--port", port, "--database", "postgres")
    yield port, data
    _local_postgres("stop", "--data", str(data))


@pytest.fixture
def bare_env(tmp_path, embedded_postgres):
    """No product variable but a fresh database on the embedded server (its default URL names the
    port `make run` uses; this server runs on another one, beside any `make run`)."""
    port, _ = embedded_postgres
    database = f"embedded_{uuid.uuid4().hex[:12]}"
    env = {k: v for k, v in os.environ.items() if k not in PRODUCT_VARIABLES and not k.startswith("DJANGO_")}
    env["DATABASE_URL"] = _local_postgres("start", "--data", str(embedded_postgres[1]), "--port", port,
                                          "--database", database)  # fmt: skip
    env["VAR_DIR"] = str(tmp_path / "var")
    return env


def test_the_default_database_is_the_embedded_server_make_run_starts():
    env = {k: v for k, v in os.environ.items() if k not in PRODUCT_VARIABLES and not k.startswith("DJANGO_")}
    code = "from django.conf import settings; d = settings.DATABASES['default']; print(*(d[k] for k in KEYS))"
    code = code.replace("KEYS", "('ENGINE', 'HOST', 'PORT', 'NAME')")
    shown = _manage(env, "shell", "-v", "0", "-c", code)
    assert shown.stdout.split() == ["django.db.backends.postgresql", "127.0.0.1", "54329", "outreach"], shown.stderr
    assert _local_postgres("url") == "postgres://postgres@127.0.0.1:54329/outreach"


def test_a_database_url_that_is_not_postgresql_is_refused_by_name(bare_env, tmp_path):
    result = _manage({**bare_env, "DATABASE_URL": f"sqlite:///{tmp_path / 'db'}"}, "check")
    assert result.returncode != 0
    assert "DATABASE_URL must point at PostgreSQL" in result.stderr


def test_make_run_defaults_migrate_bootstrap_and_import(bare_env, tmp_path):
    assert _manage(bare_env, "migrate", "--noinput").returncode == 0
    demo = _manage(bare_env, "bootstrap_demo")
    assert demo.returncode == 0, demo.stderr
    assert "API key:" in demo.stdout and "/admin/" in demo.stdout and "var/mail" in demo.stdout
    again = _manage(bare_env, "bootstrap_demo")
    assert again.stdout == demo.stdout  # made once, printed every time

    csv_path = tmp_path / "people.csv"
    csv_path.write_text("email,first_name\nada@example.com,Ada\ngrace@example.com,Grace\nbad,X\n")
    first = _manage(bare_env, "import_contacts", str(csv_path), "--account", "Demo")
    assert first.returncode == 0, first.stderr
    assert "3 rows, 2 created, 0 updated, 1 invalid" in first.stdout
    second = _manage(bare_env, "import_contacts", str(csv_path), "--account", "Demo")
    assert "3 rows, 0 created, 2 updated, 1 invalid" in second.stdout


def test_check_deploy_is_clean_with_production_values(bare_env):
    env = {
        **bare_env,
        "DEBUG": "false",
        "SECRET_KEY": "x7#kq2!v9w@p4m%z8r^t6y&u3i*o1e(a5s)d0f-g=h+j~lQ8vN2bX5",
        "FIELD_ENCRYPTION_KEYS": "hR1ah3wCmYlzMPw1lNfqx7IBNnrkZLzuhztsbjyVo9A=",
        "PUBLIC_BASE_URL": "https://outreach.example.com",
        "ALLOWED_HOSTS": "outreach.example.com",
    }
    result = _manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_warns_about_the_embedded_development_keys(bare_env):
    env = {**bare_env, "DEBUG": "false", "SECRET_KEY": "x7#kq2!v9w@p4m%z8r^t6y&u3i*o1e(a5s)d0f-g=h+j~l"}
    result = _manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0
    assert "outreach.W001" in result.stderr + result.stdout


def test_a_malformed_variable_names_itself(bare_env):
    result = _manage({**bare_env, "DEBUG": "perhaps"}, "check")
    assert result.returncode != 0
    assert "DEBUG" in result.stderr


DEMO = """
from rest_framework.test import APIClient
from accounts.services import account_get_or_create, api_key_create
from contacts.importing import ImportRows
from contacts.services import contact_import_create

account = account_get_or_create(name="Demo")[0]
client = APIClient()
client.credentials(HTTP_AUTHORIZATION="Bearer " + api_key_create(account=account)[1])
created = client.post("/api/campaigns", {"campaign": {
    "name": "Demo", "min_wait_seconds": 0, "max_wait_seconds": 0,
    "smtp_credentials": [{"label": "sink", "smtp_host": "127.0.0.1", "smtp_port": 2525,
                          "smtp_username": "demo@example.com", "smtp_password": "x", "daily_limit": 50}],
    "sequence_steps": [{"position": 1, "subject": "Hi {{first_name|there}}", "body_html": "<p>Hi</p>"}],
}}, format="json")
assert created.status_code == 201, created.content
campaign_id = created.json()["id"]
rows = ImportRows.from_records([{"email": "a@example.com"}, {"email": "b@example.com"}])
contact_import = contact_import_create(account=account, name="demo", rows=rows)
enrolled = client.post(f"/api/campaigns/{campaign_id}/enroll",
                       {"contact_import_id": str(contact_import.pk), "batch_size": 1}, format="json")
assert enrolled.status_code == 200, enrolled.content
again = client.post(f"/api/campaigns/{campaign_id}/enroll",
                    {"contact_import_id": str(contact_import.pk)}, format="json")
listed = client.get(f"/api/campaigns/{campaign_id}/enrollments").json()
dispatched = client.post(f"/api/campaigns/{campaign_id}/dispatch", {}, format="json").json()
assert dispatched["sends"] == 1 and dispatched["first_send_at"] and dispatched["by_day"][0]["count"] == 1, dispatched
shown = client.get(f"/api/campaigns/{campaign_id}").json()
print("RESULT", enrolled.json()["enrolled"], enrolled.json()["batches"], len(again.json()["skipped"]),
      len(listed), shown["totals"]["pending"])
"""


def test_a_campaign_can_be_created_and_enrolled(bare_env):
    assert _manage(bare_env, "migrate", "--noinput").returncode == 0
    result = _manage(bare_env, "shell", "-c", DEMO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "RESULT 2 2 2 2 2" in result.stdout


SENDING = DEMO.replace(
    '"smtp_port": 2525', '"smtp_port": int(__import__("os").environ["SINK_PORT"]), "smtp_security": "none"'
)
SENT = """
from enrollments.models import Enrollment
from mailboxes.models import MailboxDay
from mailing.models import ScheduledSend, SmtpCredentialDay
from webhooks.models import WebhookEvent
print("STATE", sorted(Enrollment.objects.values_list("status", flat=True)),
      sorted(ScheduledSend.objects.values_list("status", "outcome_pending")),
      list(SmtpCredentialDay.objects.values_list("reserved", "sent")),
      list(MailboxDay.objects.values_list("reserved", "sent")),
      sorted(WebhookEvent.objects.values_list("type", flat=True)))
"""


def test_a_campaign_goes_out_to_the_mail_folder_as_make_run_sends_it(bare_env, tmp_path):
    """The README's demo: a credential on the local sink (`manage.py smtp_sink`), two senders at once
    (the threaded worker and a `send_due`), and the message lands once in the sink's folder."""
    port, folder = str(_free_port()), tmp_path / "mail"
    sink = subprocess.Popen(
        [sys.executable, "manage.py", "smtp_sink", "--port", port, "--dir", str(folder)],
        cwd=ROOT, env=bare_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", int(port)), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        env = {**bare_env, "SINK_PORT": port}
        assert _manage(env, "migrate", "--noinput").returncode == 0
        prepared = _manage(env, "shell", "-c", SENDING)
        assert prepared.returncode == 0, prepared.stdout + prepared.stderr
        workers = [
            subprocess.Popen(
                [sys.executable, "manage.py", "send_due", "--until-idle", "--idle-seconds", "1"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        outputs = [worker.communicate(timeout=120) for worker in workers]
        assert [worker.returncode for worker in workers] == [0, 0], outputs
        assert sorted(out for out, _ in outputs) == ["sent 0\n", "sent 1\n"], outputs
        state = _manage(env, "shell", "-c", SENT)
    finally:
        sink.terminate()
        sink.wait(timeout=10)
    assert state.returncode == 0, state.stdout + state.stderr
    delivered = list(folder.glob("*.eml"))
    assert len(delivered) == 1
    assert b"Subject: Hi there" in delivered[0].read_bytes()
    assert (
        "STATE ['pending', 'sent'] [('sent', False)] [(1, 1)] [(1, 1)] ['enrollment.completed', 'enrollment.sent']"
        in state.stdout
    ), state.stdout
