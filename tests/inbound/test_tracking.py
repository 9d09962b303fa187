"""Open pixel and click tracking through their public URLs: valid, tampered, expired, repeated."""

import re

import pytest
from django.test import Client

from enrollments.models import Enrollment
from inbound.models import TrackingEvent
from inbound.tasks import apply_open_hits_task
from mailing import tracking

from .factories import sent_enrollment
from .helpers import event_types, expired_click_token, expired_open_token, path_of, tamper

pytestmark = pytest.mark.django_db
BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"


class TrackedClient(Client):
    """A mail client; after each request the beat task applies the pixel loads the view queued in Redis."""

    def get(self, *args, **kwargs):
        response = super().get(*args, **kwargs)
        apply_open_hits_task()
        return response


@pytest.fixture
def client():
    return TrackedClient(HTTP_USER_AGENT=BROWSER)


@pytest.fixture
def sent(campaign, credential):
    enrollment, sends = sent_enrollment(campaign, credential)
    return enrollment, sends[0]


def assert_pixel(response):
    assert response.status_code == 200
    assert response["Content-Type"] == "image/gif"
    assert response.content.startswith(b"GIF89a")
    assert "no-store" in response["Cache-Control"] and "no-cache" in response["Cache-Control"]


def test_the_pixel_of_a_sent_email_opens_its_enrollment_once(client, sent, owner):
    enrollment, send = sent
    url = path_of(tracking.open_pixel_url(send))
    assert re.fullmatch(r"/t/o/[^/]+\.gif", url) and str(send.id) not in url

    first, second = client.get(url), client.get(url)

    assert_pixel(first)
    assert_pixel(second)
    assert first.content == second.content
    enrollment.refresh_from_db()
    assert enrollment.status == "opened" and enrollment.opened_at is not None
    assert event_types(owner).count("enrollment.opened") == 1
    assert TrackingEvent.objects.filter(kind="open", counted=True).count() == 1


@pytest.mark.parametrize("kind", ["tampered", "expired", "garbage", "other_kind"])
def test_a_bad_pixel_token_gets_the_same_gif_and_changes_nothing(client, sent, owner, kind):
    enrollment, send = sent
    token = {
        "tampered": lambda: tamper(tracking.make_open_token(send.id)),
        "expired": lambda: expired_open_token(send),
        "garbage": lambda: "not-a-token",
        "other_kind": lambda: tracking.make_unsubscribe_token(send.id),  # another salt: not an open token
    }[kind]()
    good = client.get(path_of(tracking.open_pixel_url(send)).replace(tracking.make_open_token(send.id), "x"))

    response = client.get(f"/t/o/{token}.gif")

    assert_pixel(response)
    assert response.content == good.content and response["Cache-Control"] == good["Cache-Control"]
    enrollment.refresh_from_db()
    assert enrollment.status == "sent"
    assert event_types(owner) == []
    assert not TrackingEvent.objects.exists()


def test_an_image_proxy_prefetch_right_after_sending_is_recorded_but_not_an_open(campaign, credential, owner):
    enrollment, sends = sent_enrollment(campaign, credential, sent_minutes_ago=0)
    proxy = TrackedClient(
        HTTP_USER_AGENT="Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
    )

    assert_pixel(proxy.get(path_of(tracking.open_pixel_url(sends[0]))))

    enrollment.refresh_from_db()
    assert enrollment.status == "sent"
    assert list(TrackingEvent.objects.values_list("kind", "counted")) == [("open", False)]


def test_the_same_proxy_later_counts_as_an_open(campaign, credential):
    enrollment, sends = sent_enrollment(campaign, credential, sent_minutes_ago=30)
    proxy = TrackedClient(HTTP_USER_AGENT="Mozilla/5.0 (via ggpht.com GoogleImageProxy)")

    proxy.get(path_of(tracking.open_pixel_url(sends[0])))

    enrollment.refresh_from_db()
    assert enrollment.status == "opened"


def test_a_pixel_after_a_reply_changes_nothing(client, campaign, credential, owner):
    enrollment, sends = sent_enrollment(campaign, credential, status="replied")

    assert_pixel(client.get(path_of(tracking.open_pixel_url(sends[0]))))

    enrollment.refresh_from_db()
    assert enrollment.status == "replied"
    assert event_types(owner) == []


# --- clicks ---------------------------------------------------------------------------------------------


def test_links_are_rewritten_only_when_the_campaign_tracks_clicks(sent, campaign):
    _, send = sent
    html = '<p><a href="https://example.org/a?x=1&amp;y=2">go</a> <a href="mailto:x@example.org">mail</a></p>'
    assert tracking.rewrite_links(html, send) == html

    campaign.track_clicks = True
    campaign.save()
    send.campaign.refresh_from_db()
    rewritten = tracking.rewrite_links(html, send)

    assert "https://example.org" not in rewritten and 'href="mailto:x@example.org"' in rewritten
    token = re.search(r'/t/c/([^"]+)"', rewritten).group(1)
    assert tracking.read_click_token(token).url == "https://example.org/a?x=1&y=2"


def test_a_click_redirects_to_the_signed_url_and_counts_as_the_open(client, sent, owner):
    enrollment, send = sent
    url = path_of(tracking.click_url(send, "https://example.org/pricing?plan=pro"))

    first, second = client.get(url), client.get(url)

    for response in (first, second):
        assert response.status_code == 302
        assert response["Location"] == "https://example.org/pricing?plan=pro"
    enrollment.refresh_from_db()
    assert enrollment.status == "opened"
    assert event_types(owner) == ["enrollment.opened"]
    assert TrackingEvent.objects.filter(kind="click", counted=True).count() == 2


def test_a_tampered_click_token_is_a_404_and_never_redirects(client, sent):
    enrollment, send = sent
    token = tracking.make_click_token(send.id, "https://example.org/")
    forged = tracking.make_click_token(send.id, "https://evil.example/").split(":")[0] + ":" + token.split(":", 1)[1]

    for bad in (tamper(token), forged, "garbage"):
        response = client.get(f"/t/c/{bad}")
        assert response.status_code == 404
        assert "Location" not in response
    enrollment.refresh_from_db()
    assert enrollment.status == "sent"
    assert not TrackingEvent.objects.exists()


def test_an_expired_click_token_still_redirects_but_counts_nothing(client, sent):
    enrollment, send = sent

    response = client.get(f"/t/c/{expired_click_token(send, 'https://example.org/old')}")

    assert response.status_code == 302 and response["Location"] == "https://example.org/old"
    enrollment.refresh_from_db()
    assert enrollment.status == "sent"
    assert not TrackingEvent.objects.exists()


def test_a_signed_non_http_destination_is_refused(client, sent):
    _, send = sent
    response = client.get(path_of(tracking.click_url(send, "javascript:alert(1)")))
    assert response.status_code == 404


def test_a_scanner_clicking_right_after_the_send_is_recorded_but_not_counted(campaign, credential):
    enrollment, sends = sent_enrollment(campaign, credential, sent_minutes_ago=0)
    scanner = Client(HTTP_USER_AGENT="Mimecast URL Protect")

    response = scanner.get(path_of(tracking.click_url(sends[0], "https://example.org/")))

    assert response.status_code == 302
    enrollment.refresh_from_db()
    assert enrollment.status == "sent"
    assert list(TrackingEvent.objects.values_list("kind", "counted")) == [("click", False)]


def test_an_open_for_a_pending_enrollment_is_ignored(client, campaign, credential):
    enrollment, sends = sent_enrollment(campaign, credential, status="pending")
    client.get(path_of(tracking.open_pixel_url(sends[0])))
    assert Enrollment.objects.get(pk=enrollment.pk).status == "pending"


def test_the_pixel_queues_the_load_and_answers_before_any_database_work(sent, django_assert_num_queries):
    enrollment, send = sent
    plain = Client(HTTP_USER_AGENT=BROWSER)

    with django_assert_num_queries(0):
        assert_pixel(plain.get(path_of(tracking.open_pixel_url(send))))
    enrollment.refresh_from_db()
    assert enrollment.status == "sent"

    assert apply_open_hits_task() == 1
    enrollment.refresh_from_db()
    assert enrollment.status == "opened"


def test_without_redis_the_pixel_applies_the_open_inline(sent, settings):
    enrollment, send = sent
    settings.REDIS_URL = ""

    assert_pixel(Client(HTTP_USER_AGENT=BROWSER).get(path_of(tracking.open_pixel_url(send))))

    enrollment.refresh_from_db()
    assert enrollment.status == "opened"


def test_an_unreadable_queued_hit_is_dropped_and_the_rest_of_the_batch_still_applies(client, sent):
    from inbound import open_queue

    enrollment, send = sent
    redis_client = open_queue._client()
    redis_client.rpush(open_queue._key(), b"not json at all")
    client.get(path_of(tracking.open_pixel_url(send)))  # queues a real hit behind it, then applies the queue
    enrollment.refresh_from_db()
    assert enrollment.status == "opened"
    assert redis_client.llen(open_queue._key()) == 0
