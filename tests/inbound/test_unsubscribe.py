"""Unsubscribe links: GET page, POST and RFC 8058 one-click POST; account-wide; repeated; bad tokens."""

import pytest
from django.test import Client

from inbound.models import TrackingEvent
from mailing import tracking
from mailing.models import ScheduledSend
from tests.campaigns.factories import CampaignFactory, SequenceStepFactory, SmtpCredentialFactory, enroll

from .factories import ScheduledSendFactory, sent_enrollment
from .helpers import event_types, expired_unsubscribe_token, path_of, tamper

pytestmark = pytest.mark.django_db


@pytest.fixture
def client():
    return Client(enforce_csrf_checks=True)


@pytest.fixture
def two_campaigns(campaign, credential, owner):
    """The same contact enrolled in two campaigns of the account, each with a step still scheduled."""
    enrollment, sends = sent_enrollment(campaign, credential)
    other = CampaignFactory(account=owner, status="active")
    step = SequenceStepFactory(campaign=other, position=1)
    other_enrollment = enroll(other, "pending", contact=enrollment.contact)
    ScheduledSendFactory(
        campaign=other,
        enrollment=other_enrollment,
        step=step,
        smtp_credential=SmtpCredentialFactory(campaign=other),
        status="scheduled",
        sent_at=None,
        message_id=None,
    )
    return enrollment, other_enrollment, sends[0]


def test_the_headers_offer_the_url_and_one_click(two_campaigns):
    _, _, send = two_campaigns
    headers = tracking.list_unsubscribe_headers(send)
    assert headers["List-Unsubscribe"] == f"<{tracking.unsubscribe_url(send)}>"
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_get_shows_a_confirmation_page_and_changes_nothing(client, two_campaigns):
    enrollment, _, send = two_campaigns

    response = client.get(path_of(tracking.unsubscribe_url(send)))

    assert response.status_code == 200
    assert b'<form method="post">' in response.content
    enrollment.contact.refresh_from_db()
    assert enrollment.contact.subscribed is True


def test_post_unsubscribes_the_contact_account_wide_and_stops_every_enrollment(client, two_campaigns, owner):
    enrollment, other_enrollment, send = two_campaigns

    response = client.post(path_of(tracking.unsubscribe_url(send)))

    assert response.status_code == 200
    assert b"You are unsubscribed" in response.content
    contact = enrollment.contact
    contact.refresh_from_db()
    assert contact.subscribed is False and contact.unsubscribed_at is not None
    for e in (enrollment, other_enrollment):
        e.refresh_from_db()
        assert e.unsubscribed_at is not None
    assert event_types(owner) == ["enrollment.unsubscribed", "enrollment.unsubscribed"]
    assert not ScheduledSend.objects.filter(status="scheduled").exists()
    assert ScheduledSend.objects.filter(status="canceled").count() == 2
    assert ScheduledSend.objects.get(pk=send.pk).status == "sent"


def test_a_repeated_unsubscribe_answers_200_and_changes_nothing_more(client, two_campaigns, owner):
    _, _, send = two_campaigns
    url = path_of(tracking.unsubscribe_url(send))

    responses = [client.post(url), client.post(url), client.get(url)]

    assert [r.status_code for r in responses] == [200, 200, 200]
    assert event_types(owner).count("enrollment.unsubscribed") == 2
    assert TrackingEvent.objects.filter(kind="unsubscribe").count() == 1


def test_the_rfc8058_one_click_post_unsubscribes(client, two_campaigns, owner):
    enrollment, _, send = two_campaigns

    response = client.post(
        path_of(tracking.unsubscribe_url(send)),
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 200
    enrollment.contact.refresh_from_db()
    assert enrollment.contact.subscribed is False
    assert TrackingEvent.objects.get(kind="unsubscribe").url == "one-click"


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_tampered_token_is_400_and_an_expired_one_410_with_nothing_changed(client, two_campaigns, owner, method):
    enrollment, _, send = two_campaigns
    call = getattr(client, method)

    tampered = call(f"/u/{tamper(tracking.make_unsubscribe_token(send.id))}")
    wrong_kind = call(f"/u/{tracking.make_open_token(send.id)}")
    expired = call(f"/u/{expired_unsubscribe_token(send)}")

    assert (tampered.status_code, wrong_kind.status_code, expired.status_code) == (400, 400, 410)
    assert b"expired" in expired.content
    enrollment.contact.refresh_from_db()
    assert enrollment.contact.subscribed is True
    assert event_types(owner) == []


def test_only_get_and_post_are_allowed(client, two_campaigns):
    _, _, send = two_campaigns
    assert client.put(path_of(tracking.unsubscribe_url(send))).status_code == 405
