"""The message as a receiving server reads it: encodings, line lengths, structure, no header injection."""

import pytest

from contacts.models import Contact
from mailboxes.models import Mailbox

from .conftest import dispatch, enroll_contacts, make_campaign, run_until_idle
from .smtp_server import SmtpServer

pytestmark = pytest.mark.django_db


def _send_one(api, owner, smtp_server, later, *, subject, body_html, from_name="", first_name="Ann", body_text=""):
    campaign = make_campaign(owner, smtp_server)
    campaign.sequence_steps.update(subject=subject, body_html=body_html, body_text=body_text)
    Mailbox.objects.filter(credentials__campaign=campaign).update(from_name=from_name)
    (enrollment,) = enroll_contacts(campaign, 1)
    Contact.objects.filter(pk=enrollment.contact_id).update(first_name=first_name)
    dispatch(api, campaign)
    run_until_idle(now=later)
    ((_, _, message),) = smtp_server.messages
    return message, smtp_server.raw[0]


def _parts(message):
    text, html = message.get_payload()
    return text.get_content(), html.get_content()


def test_non_ascii_headers_and_bodies_arrive_encoded_and_read_back_intact(api, owner, smtp_server, later):
    message, raw = _send_one(
        api,
        owner,
        smtp_server,
        later,
        subject="Grüße, {{first_name}} — ça va ?",
        body_html="<p>Hallo {{first_name}}, schöne Grüße aus Köln 🌷</p>",
        from_name="Zoë Ångström",
        first_name="Jürgen",
    )
    assert raw.isascii()  # every non-ASCII octet is encoded (RFC 2047 headers, quoted-printable bodies)
    assert message["Subject"] == "Grüße, Jürgen — ça va ?"
    assert message["From"].addresses[0].display_name == "Zoë Ångström"
    assert message.get_content_type() == "multipart/alternative"
    text, html = _parts(message)
    assert "schöne Grüße aus Köln 🌷" in html and "Hallo Jürgen" in html
    assert "schöne Grüße aus Köln 🌷" in text


def test_long_lines_are_wrapped_and_a_leading_dot_survives_smtp(api, owner, smtp_server, later):
    long_line = "word " * 600  # 3,000 characters on one line
    message, raw = _send_one(
        api,
        owner,
        smtp_server,
        later,
        subject="Hello {{first_name}}",
        body_html=f"<p>{long_line}</p>",
        body_text=f"{long_line}\n.\n..dots\nend",
    )
    headers, _, body = raw.partition(b"\r\n\r\n")
    assert max(len(line) for line in headers.split(b"\r\n")) <= 998  # SMTP's limit (a long URL may pass 78)
    assert max(len(line) for line in body.split(b"\r\n")) <= 76  # quoted-printable's
    assert b"\n" not in raw.replace(b"\r\n", b"")  # CRLF line ends only
    text, html = _parts(message)
    assert long_line.strip() in html
    assert "\n.\n..dots\nend" in text.replace("\r\n", "\n")


def test_a_merge_field_cannot_inject_a_header(api, owner, smtp_server, later):
    message, raw = _send_one(
        api,
        owner,
        smtp_server,
        later,
        subject="Hi {{first_name}}",
        body_html="<p>Hi</p>",
        first_name="Ann\r\nBcc: victim@example.org\r\n\r\nInjected body",
    )
    assert message["Bcc"] is None and b"\r\nBcc:" not in raw
    assert message["Subject"].startswith("Hi Ann") and "Bcc: victim@example.org" in message["Subject"]
    assert message.get_content_type() == "multipart/alternative"


def test_a_word_too_long_for_any_line_is_encoded_across_lines(api, owner, smtp_server, later):
    token = "x" * 980  # with the merge value, one word of 1,010 characters
    message, raw = _send_one(
        api, owner, smtp_server, later, subject=token + "{{first_name}}", body_html="<p>Hi</p>", first_name="y" * 30
    )
    headers, _, _ = raw.partition(b"\r\n\r\n")
    assert max(len(line) for line in headers.split(b"\r\n")) <= 998
    assert message["Subject"] == token + "y" * 30


@pytest.mark.parametrize("smtputf8", [True, False])
def test_a_non_ascii_address_goes_out_over_smtputf8_or_bounces_without_stopping_the_chunk(api, owner, later, smtputf8):
    server = SmtpServer(smtputf8=smtputf8).start()
    try:
        campaign = make_campaign(owner, server)
        first, second = enroll_contacts(campaign, 2)
        Contact.objects.filter(pk=first.contact_id).update(email="jürgen@bücher.example")
        dispatch(api, campaign)
        run_until_idle(now=later)
    finally:
        server.stop()
    first.refresh_from_db()
    second.refresh_from_db()
    assert second.status == "sent"  # the rest of the chunk goes out either way
    if smtputf8:
        assert first.status == "sent" and "jürgen@bücher.example" in server.recipients()
    else:
        assert first.status == "bounced" and first.bounce_reason.startswith("553 5.6.7")
        assert server.recipients() == [second.contact.email]
