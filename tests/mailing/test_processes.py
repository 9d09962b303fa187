"""Crash and concurrency safety with real processes: racing workers, a SIGKILL, a wiped broker, two beats.

Workers here are real OS processes on the pytest test database
(`transaction=True`, so they see committed rows): `manage.py send_due`
(the claim + send code of the Celery tasks, run in a loop, which makes
"two workers race on one batch" and "kill it mid-send" deterministic), and
real `celery worker` / `celery beat` processes on Redis where the broker is
the point (its loss, two schedulers). Redis: the test's own db (REDIS_URL);
it is wiped with FLUSHDB, not FLUSHALL, because other projects' databases
share the server - for our broker the effect is the same.
"""

from __future__ import annotations

import datetime
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone

from enrollments.models import Enrollment
from mailboxes.models import MailboxDay
from mailing.claiming import sends_reap_expired_leases
from mailing.models import ScheduledSend, SmtpCredentialDay
from webhooks.models import WebhookEvent

from .conftest import enroll_contacts, make_campaign, run_until_idle

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def _env(**extra) -> dict[str, str]:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    url = f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings", "CONN_MAX_AGE": "0"}
    return {**env, **{k: str(v) for k, v in extra.items()}}


def _spawn(*args: str, **env) -> subprocess.Popen:
    return subprocess.Popen(
        list(args), env=_env(**env), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )


def _send_due(*args: str, **env) -> subprocess.Popen:
    return _spawn(sys.executable, "manage.py", "send_due", "--until-idle", "--idle-seconds", "1.5", *args, **env)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def _wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting")


def _delivered_once(server, expected: int) -> None:
    counts = Counter(server.recipients())
    assert len(counts) == expected and set(counts.values()) == {1}, counts.most_common(3)


def _dispatch_due_now(api, campaign) -> None:
    assert api.post(f"/api/campaigns/{campaign.pk}/dispatch", {}, format="json").status_code == 200
    ScheduledSend.objects.filter(campaign=campaign).update(send_at=timezone.now() - datetime.timedelta(seconds=1))


def test_two_workers_on_one_due_batch_deliver_each_message_once_within_the_limits(api, owner, smtp_server):
    campaign = make_campaign(owner, smtp_server, credentials=2, daily_limit=15)
    enroll_contacts(campaign, 40)
    _dispatch_due_now(api, campaign)  # 30 fit today, 10 rolled to tomorrow: all made due now

    workers = [_send_due(MAILING_CHUNK_SIZE=4) for _ in range(2)]
    for worker in workers:
        assert worker.wait(120) == 0, worker.stderr.read().decode()[-2000:]

    _delivered_once(smtp_server, 30)
    for day in MailboxDay.objects.filter(mailbox__credentials__campaign=campaign):
        assert day.reserved <= 15 and day.sent <= 15
    for day in SmtpCredentialDay.objects.filter(smtp_credential__campaign=campaign):
        assert day.reserved <= 15 and day.sent <= 15
    assert ScheduledSend.objects.filter(campaign=campaign, status="sent").count() == 30
    waiting = ScheduledSend.objects.filter(campaign=campaign, status="scheduled")
    assert waiting.count() == 10
    assert all(timezone.localdate(s.send_at) > timezone.localdate() for s in waiting)


def test_a_threaded_worker_delivers_each_message_once_and_applies_what_each_thread_sent(api, owner, smtp_server):
    campaign = make_campaign(owner, smtp_server, credentials=2, daily_limit=15)
    enroll_contacts(campaign, 40)
    _dispatch_due_now(api, campaign)  # 30 fit today

    worker = _send_due("--threads", "3", MAILING_CHUNK_SIZE=3)
    assert worker.wait(120) == 0, worker.stderr.read().decode()[-2000:]

    _delivered_once(smtp_server, 30)
    sent = ScheduledSend.objects.filter(campaign=campaign, status="sent")
    assert sent.count() == 30 and not sent.filter(outcome_pending=True).exists()
    assert len(set(sent.values_list("claimed_by", flat=True))) > 1  # the chunks were shared among the threads
    assert set(Enrollment.objects.filter(campaign=campaign, status="sent").values_list("id", flat=True)) == set(
        sent.values_list("enrollment_id", flat=True)
    )
    events = Counter(WebhookEvent.objects.filter(type="enrollment.sent").values_list("data__id", flat=True))
    assert len(events) == 30 and set(events.values()) == {1}
    for day in MailboxDay.objects.filter(mailbox__credentials__campaign=campaign):
        assert day.reserved == day.sent == 15
    for day in SmtpCredentialDay.objects.filter(smtp_credential__campaign=campaign):
        assert day.reserved == day.sent == 15


def test_send_due_refuses_fewer_than_one_thread():
    worker = _send_due("--threads", "0")
    assert worker.wait(60) != 0 and "--threads must be at least 1" in worker.stderr.read().decode()


def test_a_worker_killed_mid_batch_sends_nothing_twice_and_accounts_for_every_send(api, owner, smtp_server):
    campaign = make_campaign(owner, smtp_server)
    enroll_contacts(campaign, 12)
    _dispatch_due_now(api, campaign)
    import threading

    smtp_server.hold, smtp_server.hold_after = threading.Event(), 5
    worker = _send_due(MAILING_CHUNK_SIZE=8)
    try:
        assert smtp_server.arrived.wait(60), "the worker never reached the sixth message"
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)
    finally:
        smtp_server.hold.set()  # the server now takes the message that was in flight
        _stop(worker)
    statuses = Counter(ScheduledSend.objects.filter(campaign=campaign).values_list("status", flat=True))
    assert set(statuses) <= {"sent", "sending", "queued", "scheduled"} and statuses["sending"] == 1

    smtp_server.hold = None
    sends_reap_expired_leases(now=timezone.now() + datetime.timedelta(hours=1))  # the leases run out
    run_until_idle()
    statuses = Counter(ScheduledSend.objects.filter(campaign=campaign).values_list("status", flat=True))
    assert statuses == {"sent": 11, "unknown": 1}
    _delivered_once(smtp_server, 12)  # the unknown one arrived once and was never re-sent
    # What the killed worker marked sent but had not applied yet, the reaper applied: once each.
    assert not ScheduledSend.objects.filter(campaign=campaign, outcome_pending=True).exists()
    sent = set(ScheduledSend.objects.filter(campaign=campaign, status="sent").values_list("enrollment_id", flat=True))
    assert set(Enrollment.objects.filter(campaign=campaign, status="sent").values_list("id", flat=True)) == sent
    events = Counter(WebhookEvent.objects.filter(type="enrollment.sent").values_list("data__id", flat=True))
    assert len(events) == 11 and set(events.values()) == {1}
    assert SmtpCredentialDay.objects.get(smtp_credential__campaign=campaign).sent == 11
    assert MailboxDay.objects.get(mailbox__credentials__campaign=campaign).sent == 11


def _celery_worker() -> subprocess.Popen:
    return _spawn(
        sys.executable, "-m", "celery", "-A", "config", "worker", "-c", "2", "--without-mingle", "--without-gossip",
        "--without-heartbeat", "-l", "warning",
    )  # fmt: skip


def test_wiping_the_broker_mid_campaign_still_delivers_every_message_once(api, owner, smtp_server, settings):
    from mailing.tasks import claim_due_sends_task

    settings.MAILING_CHUNK_SIZE, settings.MAILING_TICK_MAX_CHUNKS = 5, 2
    campaign = make_campaign(owner, smtp_server)
    enroll_contacts(campaign, 20)
    _dispatch_due_now(api, campaign)
    broker = redis.Redis.from_url(settings.REDIS_URL)
    worker = _celery_worker()
    try:
        claim_due_sends_task()  # 10 claimed, two tasks for the worker
        _wait_for(lambda: len(smtp_server.messages) == 10)
        os.killpg(worker.pid, signal.SIGSTOP)  # the worker can take nothing while the next tasks wait in Redis
        claim_due_sends_task()
        broker.flushdb()  # ...and the broker loses them
        os.killpg(worker.pid, signal.SIGCONT)
        time.sleep(2)
        assert ScheduledSend.objects.filter(campaign=campaign, status="queued").exists()
        # The lost rows' leases run out; the next tick claims them again.
        sends_reap_expired_leases(now=timezone.now() + datetime.timedelta(seconds=settings.MAILING_LEASE_SECONDS + 1))
        for _ in range(3):
            claim_due_sends_task()
        _wait_for(lambda: ScheduledSend.objects.filter(campaign=campaign, status="sent").count() == 20)
    finally:
        _stop(worker)
    _delivered_once(smtp_server, 20)


def test_two_beat_processes_never_send_a_message_twice(api, owner, smtp_server, tmp_path):
    campaign = make_campaign(owner, smtp_server, credentials=2)
    enroll_contacts(campaign, 30)
    _dispatch_due_now(api, campaign)
    processes = [_celery_worker()]
    for name in ("a", "b"):
        processes.append(
            _spawn(
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "beat",
                "-s",
                str(tmp_path / f"beat-{name}"),
                "-l",
                "warning",
                MAILING_TICK_SECONDS=0.3,
                MAILING_CHUNK_SIZE=3,
            )
        )
    try:
        _wait_for(lambda: ScheduledSend.objects.filter(campaign=campaign, status="sent").count() == 30, timeout=90)
        time.sleep(1.5)  # a few more ticks from both: nothing is claimed twice
    finally:
        for process in processes:
            _stop(process)
    _delivered_once(smtp_server, 30)
    assert settings.CELERY_BEAT_SCHEDULE["mailing-claim-due-sends"]["task"] == "mailing.claim_due_sends"
