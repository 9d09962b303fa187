"""SMTP2GO webhook: real payload shapes (form and JSON), each posted twice; auth; bad bodies; the bounce guard."""

import base64
import json
from urllib.parse import urlencode

import pytest

from inbound.models import ProviderEvent
from mailing.models import ScheduledSend, SmtpCredentialDay

from .factories import sent_enrollment
from .helpers import event_types

pytestmark = pytest.mark.django_db


def hard_bounce(send, rcpt):
    # SMTP2GO's default: form-encoded, with the configured Message-Id header passed along.
    return "form", {
        "event": "bounce",
        "time": "2026-11-20T10:15:02Z",
        "sendtime": "2026-11-20T10:14:58Z",
        "sender": "sender@example.com",
        "from": "sender@example.com",
        "rcpt": rcpt,
        "recipients": rcpt,
        "auth": "smtp-user",
        "email_id": "1rUxUc-4o5NDgrgrdf-Q3jA",
        "bounce": "hard",
        "host": "mx.example.org [203.0.113.7]",
        "message": f"550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown",
        "subject": "Quick question",
        "Message-Id": send.message_id,
    }


def soft_bounce(send, rcpt):
    return "json", {
        "event": "bounce",
        "time": "2026-11-20T10:16:00Z",
        "sendtime": "2026-11-20T10:14:58Z",
        "rcpt": rcpt,
        "email_id": "1rUxUc-4o5NDgrgrdf-Q3jB",
        "bounce": "soft",
        "host": "mx.example.org",
        "message": "452 4.2.2 Mailbox full",
        "subject": "Quick question",
    }


def spam(send, rcpt):
    return "form", {
        "event": "spam",
        "time": "2026-11-21T08:00:00Z",
        "sendtime": "2026-11-20T10:14:58Z",
        "rcpt": rcpt,
        "email_id": "1rUxUc-4o5NDgrgrdf-Q3jC",
        "subject": "Quick question",
        "message-id": send.message_id.strip("<>"),
    }


def unsubscribe(send, rcpt):
    return "json", {
        "event": "unsubscribe",
        "time": "2026-11-21T09:00:00Z",
        "sendtime": "2026-11-20T10:14:58Z",
        "rcpt": rcpt,
        "email_id": "1rUxUc-4o5NDgrgrdf-Q3jD",
        "subject": "Quick question",
    }


def post(client, account, kind, payload, **extra):
    url = f"/api/inbound/smtp2go/{account.inbound_webhook_token}"
    if kind == "form":
        return client.post(url, data=urlencode(payload), content_type="application/x-www-form-urlencoded", **extra)
    return client.post(url, data=json.dumps(payload), content_type="application/json", **extra)


@pytest.fixture
def hook(anon_api, eager_tasks, django_capture_on_commit_callbacks):
    def call(account, kind, payload, **extra):
        with django_capture_on_commit_callbacks(execute=True):
            return post(anon_api, account, kind, payload, **extra)

    return call


@pytest.fixture
def sent(campaign, credential):
    enrollment, sends = sent_enrollment(campaign, credential, email="lead@example.org")
    return enrollment, sends


def test_a_hard_bounce_posted_twice_bounces_once_and_cancels_later_steps(hook, owner, sent):
    enrollment, sends = sent
    kind, payload = hard_bounce(sends[0], "lead@example.org")

    first, second = hook(owner, kind, payload), hook(owner, kind, payload)

    assert (first.status_code, first.json()) == (200, {"status": "accepted"})
    assert (second.status_code, second.json()) == (200, {"status": "duplicate"})
    enrollment.refresh_from_db()
    assert enrollment.status == "bounced"
    assert "5.1.1" in enrollment.bounce_reason
    assert event_types(owner) == ["enrollment.bounced"]
    assert ScheduledSend.objects.get(pk=sends[1].pk).status == "canceled"
    event = ProviderEvent.objects.get()
    assert (event.event_type, event.outcome, event.scheduled_send_id) == ("bounced", "bounced", sends[0].pk)
    assert event.raw["host"] == "mx.example.org [203.0.113.7]"


def test_a_soft_bounce_posted_twice_is_recorded_without_a_state_change(hook, owner, sent):
    enrollment, sends = sent
    kind, payload = soft_bounce(sends[0], "lead@example.org")

    responses = [hook(owner, kind, payload), hook(owner, kind, payload)]

    assert [r.json()["status"] for r in responses] == ["accepted", "duplicate"]
    enrollment.refresh_from_db()
    assert enrollment.status == "sent"
    assert event_types(owner) == []
    event = ProviderEvent.objects.get()
    # matched by recipient (no Message-Id in this payload), recorded only
    assert (event.event_type, event.outcome, event.scheduled_send_id) == ("deferred", "recorded", sends[0].pk)


def test_a_spam_report_posted_twice_bounces_and_unsubscribes_the_contact_once(hook, owner, sent):
    enrollment, sends = sent
    kind, payload = spam(sends[0], "lead@example.org")

    responses = [hook(owner, kind, payload), hook(owner, kind, payload)]

    assert [r.json()["status"] for r in responses] == ["accepted", "duplicate"]
    enrollment.refresh_from_db()
    enrollment.contact.refresh_from_db()
    assert enrollment.status == "bounced" and enrollment.bounce_reason.startswith("spam complaint")
    assert enrollment.contact.subscribed is False
    assert sorted(event_types(owner)) == ["enrollment.bounced", "enrollment.unsubscribed"]


def test_an_unsubscribe_posted_twice_unsubscribes_once(hook, owner, sent):
    enrollment, sends = sent
    kind, payload = unsubscribe(sends[0], "lead@example.org")

    responses = [hook(owner, kind, payload), hook(owner, kind, payload)]

    assert [r.json()["status"] for r in responses] == ["accepted", "duplicate"]
    enrollment.refresh_from_db()
    assert enrollment.unsubscribed_at is not None and enrollment.status == "sent"
    assert event_types(owner) == ["enrollment.unsubscribed"]
    assert ScheduledSend.objects.get(pk=sends[1].pk).status == "canceled"


def test_without_the_configured_authorization_it_is_401_and_nothing_is_stored(hook, owner, sent):
    enrollment, sends = sent
    owner.inbound_webhook_authorization = "Basic " + base64.b64encode(b"smtp2go:hook-pass").decode()
    owner.save()
    kind, payload = hard_bounce(sends[0], "lead@example.org")

    missing = hook(owner, kind, payload)
    wrong = hook(owner, kind, payload, HTTP_AUTHORIZATION="Basic " + base64.b64encode(b"smtp2go:nope").decode())
    bearer = hook(owner, kind, payload, HTTP_AUTHORIZATION="Bearer hook-pass")

    assert [r.status_code for r in (missing, wrong, bearer)] == [401, 401, 401]
    assert missing.json()["error"]["code"] == "unauthorized"
    assert not ProviderEvent.objects.exists()
    enrollment.refresh_from_db()
    assert enrollment.status == "sent"

    good = hook(owner, kind, payload, HTTP_AUTHORIZATION="basic " + base64.b64encode(b"smtp2go:hook-pass").decode())
    assert good.status_code == 200
    enrollment.refresh_from_db()
    assert enrollment.status == "bounced"


def test_a_bearer_credential_may_be_configured_instead(hook, owner, sent):
    _, sends = sent
    owner.inbound_webhook_authorization = "Bearer s3cret-token"
    owner.save()
    kind, payload = soft_bounce(sends[0], "lead@example.org")
    assert hook(owner, kind, payload, HTTP_AUTHORIZATION="Bearer s3cret-token").status_code == 200


def test_a_wrong_or_another_accounts_token_is_401(anon_api, owner, outsider, sent):
    _, sends = sent
    kind, payload = hard_bounce(sends[0], "lead@example.org")
    base = "/api/inbound/smtp2go/"
    forged = owner.id.hex + outsider.inbound_webhook_secret
    for token in (forged, owner.id.hex + "x" * 43, "short", outsider.inbound_webhook_token[:-1] + "?"):
        response = anon_api.post(
            base + token, data=urlencode(payload), content_type="application/x-www-form-urlencoded"
        )
        assert response.status_code == 401, token
    # the outsider's own valid token finds nothing of the owner's to change
    response = post(anon_api, outsider, kind, payload)
    assert response.status_code == 200
    assert ProviderEvent.objects.get().account_id == outsider.id


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", "{not json"),
        ("application/json", "[1, 2]"),
        ("application/json", '{"rcpt": "x@example.org"}'),
        ("application/x-www-form-urlencoded", "rcpt=x%40example.org"),
        ("text/plain", "event=bounce"),
        ("application/json", '{"event": "bounce", "rcpt": "x\\u0000@example.org"}'),
        ("application/x-www-form-urlencoded", "event=bounce&rcpt=x%00%40example.org"),
        ("application/json", "[" * 100_000 + "]" * 100_000),
    ],
)
def test_an_unparseable_body_is_400_and_nothing_is_stored(anon_api, owner, content_type, body):
    response = anon_api.post(
        f"/api/inbound/smtp2go/{owner.inbound_webhook_token}", data=body, content_type=content_type
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_payload"
    assert not ProviderEvent.objects.exists()


def test_an_unknown_event_is_stored_raw_and_answered_200(hook, owner):
    payload = {"event": "teleported", "rcpt": "x@example.org", "email_id": "e1", "time": "2026-11-20T10:00:00Z"}
    response = hook(owner, "json", payload)
    assert response.status_code == 200
    event = ProviderEvent.objects.get()
    assert (event.event_type, event.raw, event.outcome) == ("unknown", payload, "stored")


def test_an_event_that_changes_nothing_is_stored_applied_and_hands_no_work_to_a_task(
    anon_api, owner, sent, django_capture_on_commit_callbacks
):
    payload = {"event": "delivered", "rcpt": "lead@example.org", "email_id": "e2", "time": "2026-11-20T10:15:00Z"}

    with django_capture_on_commit_callbacks() as callbacks:
        response = post(anon_api, owner, "json", payload)

    assert (response.status_code, response.json()) == (200, {"status": "accepted"})
    assert callbacks == []
    event = ProviderEvent.objects.get()
    assert (event.event_type, event.outcome, event.awaits_applying) == ("delivered", "stored", False)


def test_a_bounce_for_an_unknown_recipient_is_stored_unmatched(hook, owner):
    kind, payload = soft_bounce(None, "stranger@example.org")
    assert hook(owner, kind, payload).status_code == 200
    assert ProviderEvent.objects.get().outcome == "unmatched"


def test_an_async_bounce_runs_the_bounce_rate_guard_for_the_sending_mailbox(hook, owner, campaign, credential):
    campaign.bounce_rate_threshold = 5.0
    campaign.save()
    _enrollment, sends = sent_enrollment(campaign, credential, email="bad@example.org")
    # The sender's counters: 20 messages handed over through this credential today.
    SmtpCredentialDay.objects.create(smtp_credential=credential, day=sends[0].sent_at.date(), reserved=20, sent=20)
    kind, payload = hard_bounce(sends[0], "bad@example.org")

    hook(owner, kind, payload)

    mailbox = credential.mailbox
    mailbox.refresh_from_db()
    assert mailbox.disabled_at is not None
    assert "Bounce rate 5.0%" in mailbox.disabled_reason


def test_a_pending_event_whose_task_was_lost_is_applied_by_the_sweeper(anon_api, owner, sent, settings):
    from inbound.tasks import apply_pending_provider_events_task

    enrollment, sends = sent
    kind, payload = hard_bounce(sends[0], "lead@example.org")
    post(anon_api, owner, kind, payload)  # on-commit enqueue never runs here: as if Redis lost it
    settings.PROVIDER_EVENT_GRACE_SECONDS = 0

    assert apply_pending_provider_events_task() == 1
    assert apply_pending_provider_events_task() == 0
    enrollment.refresh_from_db()
    assert enrollment.status == "bounced"


def test_the_latest_send_to_the_recipient_is_matched_when_no_message_id_is_given(hook, owner, campaign, credential):
    _enrollment, sends = sent_enrollment(campaign, credential, email="lead@example.org")
    ScheduledSend.objects.filter(pk=sends[1].pk).update(status="sent", sent_at=sends[0].sent_at.replace(year=2030))
    kind, payload = hard_bounce(sends[0], "LEAD@example.org")
    del payload["Message-Id"]

    hook(owner, kind, payload)

    assert ProviderEvent.objects.get().scheduled_send_id == sends[1].pk
