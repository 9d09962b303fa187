"""A journey from end to end on real servers: PostgreSQL, an SMTP server (aiosmtpd), Dovecot (IMAPS).

Nothing of ours is mocked. People enter through `journey_enroll`; its
after-commit dispatch runs in process (Celery eager), the sends go out
through the real claim and send code (`sends_claim_due` + `chunks_send`,
what `manage.py send_due` runs), and a reply is found by the real IMAP poll.
Time moves forward the way the sending tests move it: a row that should be
due later is made due now by setting its `send_at`, and a completion is
dated back by setting its `completed_at`.
"""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from campaigns.models import SmtpCredential
from config.celery import app as celery_app
from core.errors import ApplicationError
from inbound.imap import ReplyDetectionJob
from journeys.models import Journey, JourneyEnrollment
from journeys.services import journey_create, journey_enroll, journey_turn_off, journey_turn_on, journey_update
from journeys.tasks import dispatch_journeys_task
from mailing.claiming import sends_claim_due
from mailing.models import ScheduledSend
from mailing.sending import chunks_send
from tests.factories import ContactFactory
from tests.inbound import mail
from tests.inbound.dovecot import PASSWORD, USER, DovecotServer
from tests.mailing.smtp_server import SmtpServer
from webhooks.models import WebhookEvent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

DELAY = datetime.timedelta(minutes=60)


@pytest.fixture(autouse=True)
def eager_tasks():
    """The enroll's and the turn-on's after-commit dispatch task runs right here, as a worker would run it."""
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager = False
    celery_app.conf.task_eager_propagates = False


@pytest.fixture
def smtp_server():
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def dovecot(settings):
    server = DovecotServer()
    settings.IMAP_CA_BUNDLE = str(server.cert)
    yield server
    server.stop()


def _journey(owner, smtp_server, **imap) -> Journey:
    """A journey that is on: step 1 at once, step 2 an hour later, one credential on `smtp_server`."""
    journey = journey_create(
        account=owner,
        name="Welcome journey",
        steps=[
            {"position": 1, "subject": "Welcome, {{first_name}}", "body_html": "<p>Hello {{first_name}}</p>"},
            {
                "position": 2,
                "subject": "Still there, {{first_name}}?",
                "body_html": "<p>Following up</p>",
                "delay_minutes": 60,
            },
        ],
        smtp_credentials=[
            {
                "smtp_host": "127.0.0.1",
                "smtp_port": smtp_server.port,
                "smtp_security": "none",
                "smtp_username": "sender@example.com",
                "smtp_password": "smtp-password",
                "daily_limit": 100,
                **imap,
            }
        ],
        min_wait_seconds=0,
        max_wait_seconds=0,
    )
    return journey_turn_on(journey=journey)


def _people(owner, *names: str) -> list[str]:
    return [ContactFactory(account=owner, email=f"{name.lower()}@example.org", first_name=name).email for name in names]


def _send_due(*, now: datetime.datetime | None = None) -> int:
    """What `manage.py send_due --until-idle` does, without the waiting: claim due rows and send them until
    a tick claims nothing. Returns how many messages went out."""
    sent = 0
    while True:
        report = sends_claim_due(enqueue=lambda *chunk: None, now=now)
        if not report.claimed:
            return sent
        sent += chunks_send(report.chunks)


def _subjects(server: SmtpServer, *, since: int = 0) -> list[tuple[str, str]]:
    """(recipient, subject) of the messages the server accepted, from the `since`-th on, sorted."""
    return sorted((rcpts[0], str(message["Subject"])) for _, rcpts, message in server.messages[since:])


def _enrollment(journey, email: str, round: int = 1) -> JourneyEnrollment:
    return JourneyEnrollment.objects.with_journey_status().get(campaign=journey, contact__email=email, round=round)


def _sends(enrollment) -> list[ScheduledSend]:
    return list(ScheduledSend.objects.filter(enrollment_id=enrollment.pk).order_by("step__position"))


def _make_step_2_due(journey) -> None:
    ScheduledSend.objects.filter(campaign=journey, step__position=2, status="scheduled").update(
        send_at=timezone.now() - datetime.timedelta(seconds=1)
    )


def _events(journey, type_: str) -> list[dict]:
    return [e.data for e in WebhookEvent.objects.filter(type=type_, data__journey_id=str(journey.pk))]


def test_a_journey_delivers_its_steps_at_their_delays_completes_and_takes_people_again_after_12_hours(
    owner, smtp_server
):
    journey = _journey(owner, smtp_server)
    ann, bob = _people(owner, "Ann", "Bob")

    result = journey_enroll(journey=journey, contact_email_addresses=[ann, f"  {bob.upper()} "])

    assert result.enrolled_count == 2
    assert dispatch_journeys_task() == 0  # beat's sweep finds nothing left: the enroll's own task scheduled it
    # The after-commit dispatch scheduled both steps: step 1 now, step 2 its delay later.
    for email in (ann, bob):
        first, second = _sends(_enrollment(journey, email))
        assert first.send_at <= timezone.now() and second.send_at - first.send_at == DELAY

    assert _send_due() == 2  # step 2 is not due yet: only step 1 goes out
    assert _subjects(smtp_server) == [(ann, "Welcome, Ann"), (bob, "Welcome, Bob")]
    assert _enrollment(journey, ann).journey_status == "active"
    assert not _events(journey, "journey_enrollment.completed")

    _make_step_2_due(journey)  # an hour passes
    assert _send_due() == 2
    assert _subjects(smtp_server, since=2) == [(ann, "Still there, Ann?"), (bob, "Still there, Bob?")]
    for email in (ann, bob):
        enrollment = _enrollment(journey, email)
        assert enrollment.journey_status == "completed" and enrollment.completed_at is not None
        assert enrollment.exit_reason is None
    completed = _events(journey, "journey_enrollment.completed")
    assert sorted((e["contact_email"], e["status"]) for e in completed) == [(ann, "completed"), (bob, "completed")]
    assert all(e["completed_at"] and e["exit_reason"] is None for e in completed)

    # Just completed: not taken again.
    again = journey_enroll(journey=journey, contact_email_addresses=[ann, bob])
    assert (again.enrolled_count, again.recently_completed) == (0, [ann, bob])

    # Ann completed 13 hours ago, Bob 2 hours ago: Ann enters again (round 2), Bob is recently_completed.
    now = timezone.now()
    JourneyEnrollment.objects.filter(campaign=journey, contact__email=ann).update(
        completed_at=now - datetime.timedelta(hours=13)
    )
    JourneyEnrollment.objects.filter(campaign=journey, contact__email=bob).update(
        completed_at=now - datetime.timedelta(hours=2)
    )
    later = journey_enroll(journey=journey, contact_email_addresses=[ann, bob])
    assert (later.enrolled_count, later.recently_completed, later.already_enrolled) == (1, [bob], [])
    assert _enrollment(journey, ann, round=2).journey_status == "active"
    assert not JourneyEnrollment.objects.filter(campaign=journey, contact__email=bob, round=2).exists()

    assert _send_due() == 1  # Ann's second round starts with step 1 again
    assert _subjects(smtp_server).count((ann, "Welcome, Ann")) == 2


def test_a_reply_found_over_imap_exits_the_enrollment_and_cancels_its_next_step(owner, smtp_server, dovecot):
    journey = _journey(
        owner, smtp_server, imap_host="127.0.0.1", imap_port=dovecot.port, imap_username=USER, imap_password=PASSWORD
    )
    lead, other = _people(owner, "Lead", "Other")
    assert journey_enroll(journey=journey, contact_email_addresses=[lead, other]).enrolled_count == 2
    assert _send_due() == 2
    first, second = _sends(_enrollment(journey, lead))
    assert first.status == "sent" and first.message_id

    dovecot.deliver(mail.reply(lead, in_reply_to=first.message_id, subject="Re: Welcome, Lead"))
    credential = SmtpCredential.objects.select_related("mailbox").get(campaign=journey)
    assert ReplyDetectionJob(credential.mailbox).run().replies == 1  # one poll of the journey's mailbox

    enrollment = _enrollment(journey, lead)
    assert (enrollment.journey_status, enrollment.exit_reason) == ("exited", "replied")
    assert enrollment.exited_at == enrollment.replied_at is not None
    second.refresh_from_db()
    assert second.status == "canceled"
    (exited,) = _events(journey, "journey_enrollment.exited")
    assert (exited["contact_email"], exited["status"], exited["exit_reason"]) == (lead, "exited", "replied")

    _make_step_2_due(journey)
    assert _send_due() == 1  # only the one who did not reply gets step 2
    assert [rcpt for rcpt, subject in _subjects(smtp_server) if subject.startswith("Still")] == [other]
    assert _enrollment(journey, other).journey_status == "completed"
    assert len(_events(journey, "journey_enrollment.exited")) == 1  # and nothing more for the lead
    # A contact who replied is not active any more: the journey may take them again.
    assert journey_enroll(journey=journey, contact_email_addresses=[lead]).enrolled_count == 1


def test_turning_a_journey_off_holds_its_sends_and_turning_it_on_releases_them_with_the_gaps_kept(owner, smtp_server):
    journey = _journey(owner, smtp_server)
    ann, bob = _people(owner, "Ann", "Bob")
    assert journey_enroll(journey=journey, contact_email_addresses=[ann, bob]).enrolled_count == 2

    journey_turn_off(journey=journey)
    assert Journey.objects.get(pk=journey.pk).state == "off"
    # Step 1 is due, and even hours from now nothing of an off journey is claimed.
    assert sends_claim_due(enqueue=lambda *chunk: None).claimed == 0
    assert sends_claim_due(enqueue=lambda *chunk: None, now=timezone.now() + 3 * DELAY).claimed == 0
    assert smtp_server.messages == []
    assert set(ScheduledSend.objects.filter(campaign=journey).values_list("status", flat=True)) == {"scheduled"}
    # People cannot enter an off journey meanwhile.
    with pytest.raises(ApplicationError, match="Current state: off"):
        journey_enroll(journey=journey, contact_email_addresses=[ann])

    turned_on_at = timezone.now()
    journey_turn_on(journey=journey)

    for email in (ann, bob):
        first, second = _sends(_enrollment(journey, email))
        assert first.send_at >= turned_on_at  # re-timed from the moment it was turned on
        assert second.send_at - first.send_at == DELAY  # the gap between the steps is kept
    assert _send_due() == 2
    assert _subjects(smtp_server) == [(ann, "Welcome, Ann"), (bob, "Welcome, Bob")]
    _make_step_2_due(journey)
    assert _send_due() == 2
    assert {_enrollment(journey, email).journey_status for email in (ann, bob)} == {"completed"}


def test_a_step_added_to_a_running_journey_does_not_hold_back_the_people_already_in_it(owner, smtp_server):
    """Their schedule is the one they were given: they complete with their own last step, and can enter again."""
    journey = _journey(owner, smtp_server)
    (ann,) = _people(owner, "Ann")
    journey_enroll(journey=journey, contact_email_addresses=[ann])
    steps = [{"id": str(step.pk), "position": step.position} for step in journey.sequence_steps.order_by("position")]
    journey_update(
        journey=journey,
        data={},
        steps=[*steps, {"position": 3, "subject": "Last one", "body_html": "<p>Bye</p>", "delay_minutes": 60}],
    )

    assert _send_due() == 1
    _make_step_2_due(journey)
    assert _send_due() == 1

    enrollment = _enrollment(journey, ann)
    assert enrollment.journey_status == "completed"
    assert [e["contact_email"] for e in _events(journey, "journey_enrollment.completed")] == [ann]
