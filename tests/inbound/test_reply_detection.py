"""Reply detection against a real Dovecot (IMAPS on 127.0.0.1), started per test by the `dovecot` fixture."""

import datetime

import pytest
from django.utils import timezone

from inbound.imap import ReplyDetectionJob, mailboxes_due_for_poll
from inbound.models import ImapSyncState, InboundMessage
from inbound.tasks import poll_imap_mailboxes_task
from mailboxes.models import Mailbox
from mailing.models import ScheduledSend

from . import mail
from .factories import sent_enrollment
from .helpers import event_types

pytestmark = pytest.mark.django_db(transaction=False)


def poll(credential):
    """One poll of the credential's mailbox, read afresh from the database."""
    return ReplyDetectionJob(Mailbox.objects.get(pk=credential.mailbox_id)).run()


@pytest.fixture
def lead(campaign, imap_credential):
    return sent_enrollment(campaign, imap_credential, email="lead@example.org")


def test_a_reply_naming_our_message_id_marks_the_enrollment_replied_and_stops_later_steps(
    dovecot, imap_credential, lead, owner
):
    enrollment, sends = lead
    dovecot.deliver(mail.reply("someone-else@example.net", in_reply_to=sends[0].message_id))

    result = poll(imap_credential)

    assert result.ok and result.replies == 1
    enrollment.refresh_from_db()
    assert enrollment.status == "replied" and enrollment.replied_at is not None
    assert ScheduledSend.objects.get(pk=sends[1].pk).status == "canceled"
    assert event_types(owner) == ["enrollment.replied"]
    stored = InboundMessage.objects.get()
    assert (stored.kind, stored.matched_by, stored.applied, stored.enrollment_id) == (
        "reply",
        "headers",
        True,
        enrollment.pk,
    )
    assert (stored.mailbox_id, stored.smtp_credential_id) == (imap_credential.mailbox_id, imap_credential.pk)
    assert stored.snippet == "Sounds good, call me."  # the quoted original is left out
    assert stored.subject == "Re: Quick question" and stored.from_email == "someone-else@example.net"


def test_a_reply_found_through_references_only(dovecot, imap_credential, lead):
    _enrollment, sends = lead
    dovecot.deliver(mail.reply("lead@example.org", references=f"<other@x.example> {sends[0].message_id}"))
    assert poll(imap_credential).replies == 1
    assert InboundMessage.objects.get().matched_by == "headers"


def test_a_reply_without_thread_headers_is_matched_by_its_sender(dovecot, imap_credential, lead, owner):
    enrollment, _ = lead
    dovecot.deliver(mail.reply("Lead@Example.org", subject="About your email"))

    result = poll(imap_credential)

    assert result.replies == 1
    enrollment.refresh_from_db()
    assert enrollment.status == "replied"
    assert InboundMessage.objects.get().matched_by == "sender"


def test_mail_that_concerns_no_send_is_neither_stored_nor_fetched_in_full(dovecot, imap_credential, lead):
    dovecot.deliver(mail.reply("stranger@example.net", subject="Newsletter"))
    dovecot.deliver(mail.reply("stranger@example.net", in_reply_to="<not-ours@example.net>"))

    result = poll(imap_credential)

    assert (result.scanned, result.bodies, result.replies) == (2, 0, 0)
    assert not InboundMessage.objects.exists()


@pytest.mark.parametrize(
    ("headers", "subject", "body"),
    [
        ({"Auto-Submitted": "auto-replied"}, "Re: Quick question", "Thanks for your message."),
        ({"X-Autoreply": "yes"}, "Re: Quick question", "Thanks for your message."),
        ({"Precedence": "auto_reply"}, "Re: Quick question", "Thanks."),
        # Exchange/Outlook out-of-office: none of the RFC 3834 headers
        ({"X-Auto-Response-Suppress": "All"}, "Automatic reply: Quick question", "I am out of the office."),
        ({}, "Out of Office: Quick question", "Back on Monday."),
        ({}, "Re: Quick question", "I am currently out of the office until 3 December with limited access."),
    ],
)
def test_an_auto_reply_is_stored_and_flagged_but_does_not_count(
    dovecot, imap_credential, lead, owner, headers, subject, body
):
    enrollment, sends = lead
    dovecot.deliver(
        mail.reply("lead@example.org", in_reply_to=sends[0].message_id, subject=subject, body=body, headers=headers)
    )

    result = poll(imap_credential)

    assert (result.replies, result.auto_replies) == (0, 1)
    enrollment.refresh_from_db()
    assert enrollment.status == "sent"
    assert ScheduledSend.objects.get(pk=sends[1].pk).status == "scheduled"
    stored = InboundMessage.objects.get()
    assert stored.kind == "auto_reply" and stored.auto_reply_reason and not stored.applied
    assert event_types(owner) == []


@pytest.mark.parametrize("returned", ["headers", "message"])
def test_a_dsn_bounce_is_applied_from_its_report_parts(dovecot, imap_credential, lead, owner, returned):
    enrollment, sends = lead
    # another of our sends to a different contact: the DSN must not be matched by its top-level headers
    dovecot.deliver(mail.dsn("lead@example.org", original_message_id=sends[0].message_id, returned=returned))

    result = poll(imap_credential)

    assert result.bounces == 1
    enrollment.refresh_from_db()
    assert enrollment.status == "bounced"
    assert enrollment.bounce_reason.startswith("5.1.1 550 5.1.1 <lead@example.org>")
    assert ScheduledSend.objects.get(pk=sends[1].pk).status == "canceled"
    stored = InboundMessage.objects.get()
    assert (stored.kind, stored.matched_by, stored.dsn_status, stored.dsn_recipient) == (
        "bounce",
        "headers",
        "5.1.1",
        "lead@example.org",
    )
    assert event_types(owner) == ["enrollment.bounced"]


def test_a_transient_dsn_is_recorded_only(dovecot, imap_credential, lead):
    enrollment, sends = lead
    dovecot.deliver(
        mail.dsn(
            "lead@example.org",
            original_message_id=sends[0].message_id,
            status="4.2.2",
            action="delayed",
            diagnostic="smtp; 452 4.2.2 Mailbox full",
        )
    )

    result = poll(imap_credential)

    assert (result.bounces, result.delays) == (0, 1)
    enrollment.refresh_from_db()
    assert enrollment.status == "sent"
    assert InboundMessage.objects.get().kind == "delay"


def test_a_dsn_without_our_message_id_is_matched_by_its_failed_recipient(dovecot, imap_credential, lead):
    _enrollment, _ = lead
    dovecot.deliver(mail.dsn("lead@example.org", original_message_id="<lost@elsewhere.example>"))
    assert poll(imap_credential).bounces == 1
    assert InboundMessage.objects.get().matched_by == "recipient"


def test_a_second_poll_fetches_only_new_mail_and_counts_nothing_twice(dovecot, imap_credential, lead, owner):
    _enrollment, sends = lead
    dovecot.deliver(mail.reply("lead@example.org", in_reply_to=sends[0].message_id))
    first = poll(imap_credential)

    second = poll(imap_credential)

    assert (first.scanned, first.replies) == (1, 1)
    assert (second.scanned, second.bodies, second.replies) == (0, 0, 0)
    state = ImapSyncState.objects.get(mailbox=imap_credential.mailbox)
    assert state.last_uid == 1 and state.uidvalidity

    # Even a forced full re-read stores and counts nothing again.
    ImapSyncState.objects.filter(pk=state.pk).update(last_uid=0)
    third = poll(imap_credential)
    assert (third.scanned, third.duplicates, third.replies) == (1, 1, 0)
    assert InboundMessage.objects.count() == 1
    assert event_types(owner) == ["enrollment.replied"]


def test_a_uidvalidity_change_resyncs_without_counting_twice(dovecot, imap_credential, campaign, lead, owner):
    _enrollment, sends = lead
    other, other_sends = sent_enrollment(campaign, imap_credential, email="second@example.org")
    dovecot.deliver(mail.reply("lead@example.org", in_reply_to=sends[0].message_id))
    poll(imap_credential)
    before = ImapSyncState.objects.get(mailbox=imap_credential.mailbox).uidvalidity

    dovecot.reset_uidvalidity()
    dovecot.deliver(mail.reply("second@example.org", in_reply_to=other_sends[0].message_id))
    result = poll(imap_credential)

    state = ImapSyncState.objects.get(mailbox=imap_credential.mailbox)
    assert result.resynced and state.uidvalidity != before
    assert (result.scanned, result.replies, result.duplicates) == (2, 1, 1)
    other.refresh_from_db()
    assert other.status == "replied"
    assert event_types(owner) == ["enrollment.replied", "enrollment.replied"]


def test_a_login_failure_is_recorded_and_retried_with_backoff(dovecot, imap_credential, lead):
    mailbox = imap_credential.mailbox
    Mailbox.objects.filter(pk=mailbox.pk).update(imap_password="wrong")  # stored encrypted
    mailbox.imap_password = "wrong"
    mailbox.save()

    result = poll(imap_credential)

    assert not result.ok and "login failed" in result.error.lower()
    state = ImapSyncState.objects.get(mailbox=imap_credential.mailbox)
    assert state.consecutive_failures == 1 and "login failed" in state.last_error.lower()
    first_wait = state.next_attempt_at - state.last_error_at
    assert datetime.timedelta(seconds=55) < first_wait <= datetime.timedelta(seconds=65)
    assert mailbox.pk not in set(mailboxes_due_for_poll().values_list("pk", flat=True))

    poll(imap_credential)
    state.refresh_from_db()
    assert state.consecutive_failures == 2
    assert state.next_attempt_at - state.last_error_at > first_wait * 1.9

    # Fixed password and the backoff over: the next poll succeeds and clears the error.
    mailbox.imap_password = "imap-secret-password"
    mailbox.save()
    assert mailbox.pk in set(
        mailboxes_due_for_poll(now=timezone.now() + datetime.timedelta(hours=1)).values_list("pk", flat=True)
    )
    assert poll(imap_credential).ok
    state.refresh_from_db()
    assert (state.consecutive_failures, state.last_error, state.next_attempt_at) == (0, "", None)


def test_an_unreachable_server_is_a_recorded_failure_not_an_exception(imap_credential, dovecot):
    dovecot.stop()
    result = poll(imap_credential)
    assert not result.ok
    assert ImapSyncState.objects.get(mailbox=imap_credential.mailbox).consecutive_failures == 1


def test_the_beat_task_polls_each_mailbox_in_use_with_imap(dovecot, imap_credential, lead, eager_tasks):
    enrollment, sends = lead
    dovecot.deliver(mail.reply("lead@example.org", in_reply_to=sends[0].message_id))

    assert poll_imap_mailboxes_task() == 1

    enrollment.refresh_from_db()
    assert enrollment.status == "replied"


def test_an_imap_host_on_our_own_network_is_refused_in_production(campaign, settings):
    from tests.campaigns.factories import SmtpCredentialFactory

    settings.MAILING_ALLOW_PRIVATE_HOSTS = False
    credential = SmtpCredentialFactory(
        campaign=campaign, imap_host="169.254.169.254", imap_port=993, imap_username="u", imap_password="p"
    )
    poll(credential)
    state = ImapSyncState.objects.get(mailbox=credential.mailbox)
    assert state.consecutive_failures == 1 and "refused" in state.last_error


def test_one_reply_seen_in_two_of_our_mailboxes_counts_for_each(dovecot, imap_credential, lead, outsider):
    """The same message (one Message-ID) is a reply in two accounts whose mailboxes read one INBOX."""
    from tests.campaigns.factories import CampaignFactory, SequenceStepFactory, SmtpCredentialFactory

    other = CampaignFactory(account=outsider, status="active")
    SequenceStepFactory(campaign=other, position=1)
    SequenceStepFactory(campaign=other, position=2)
    other_credential = SmtpCredentialFactory(
        campaign=other,
        imap_host=imap_credential.mailbox.imap_host,
        imap_port=imap_credential.mailbox.imap_port,
        imap_username=imap_credential.mailbox.imap_username,
        imap_password=imap_credential.mailbox.imap_password,
    )
    other_enrollment, _ = sent_enrollment(other, other_credential, email="lead@example.org")
    dovecot.deliver(mail.reply("lead@example.org", subject="About your email"))

    assert poll(imap_credential).replies == 1
    assert poll(other_credential).replies == 1
    other_enrollment.refresh_from_db()
    assert other_enrollment.status == "replied"
    assert InboundMessage.objects.count() == 2
    assert poll(imap_credential).replies == 0  # and a re-poll still counts nothing twice
