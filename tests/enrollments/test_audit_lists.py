import datetime

import pytest
from django.utils import timezone

from enrollments.models import EnrollmentSkip
from tests.campaigns.factories import CampaignFactory, EnrollmentFactory
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign(owner):
    return CampaignFactory(account=owner)


def test_enrollments_list_filters_by_status_and_batch(api, campaign):
    now = timezone.now()
    EnrollmentFactory(campaign=campaign, batch_number=1)
    sent = EnrollmentFactory(campaign=campaign, batch_number=1, status="sent", sent_at=now)
    EnrollmentFactory(campaign=campaign, batch_number=2, status="sent", sent_at=now)
    body = api.get(f"/api/campaigns/{campaign.pk}/enrollments?status=sent&batch_number=1").json()
    assert [e["id"] for e in body] == [str(sent.uuid)]
    item = body[0]
    assert set(item) >= {
        "id", "contact_id", "smtp_credential_id", "status", "batch_number",
        "sent_at", "opened_at", "replied_at", "bounce_reason",
    }  # fmt: skip
    assert item["status"] == "sent" and item["sent_at"].endswith("Z")


def test_unknown_status_filter_is_422(api, campaign):
    response = api.get(f"/api/campaigns/{campaign.pk}/enrollments?status=archived")
    assert response.status_code == 422
    assert "status" in response.json()["error"]["details"]


def test_enrollments_pages_follow_the_link_with_constant_queries(api, campaign, django_assert_max_num_queries):
    for _ in range(5):
        EnrollmentFactory(campaign=campaign)
    api.get(f"/api/campaigns/{campaign.pk}/enrollments?limit=1")  # key's first use
    url, seen = f"/api/campaigns/{campaign.pk}/enrollments?limit=2", []
    while url:
        with django_assert_max_num_queries(3):  # key, campaign, page
            response = api.get(url)
        seen += [e["id"] for e in response.json()]
        link = response.headers.get("Link")
        url = link[1 : link.index(">")] if link else None
    assert len(seen) == len(set(seen)) == 5


def test_replies_are_newest_first_with_hours_to_reply(api, campaign):
    sent = timezone.now() - datetime.timedelta(days=2)
    older = EnrollmentFactory(
        campaign=campaign, status="replied", sent_at=sent, replied_at=sent + datetime.timedelta(hours=5)
    )
    newer = EnrollmentFactory(
        campaign=campaign, status="replied", sent_at=sent, replied_at=sent + datetime.timedelta(hours=26, minutes=30)
    )
    EnrollmentFactory(campaign=campaign, status="sent", sent_at=sent)
    body = api.get(f"/api/campaigns/{campaign.pk}/replies?limit=100").json()
    assert [(r["id"], r["hours_to_reply"]) for r in body] == [(str(newer.uuid), 26.5), (str(older.uuid), 5.0)]


def test_skips_filter_by_kind_and_refuse_an_unknown_kind(api, campaign, owner):
    contact = ContactFactory(account=owner)
    EnrollmentSkip.objects.create(campaign=campaign, contact=contact, email=contact.email, kind="mx_invalid")
    EnrollmentSkip.objects.create(campaign=campaign, contact=contact, email=contact.email, kind="already_enrolled")
    body = api.get(f"/api/campaigns/{campaign.pk}/skips?kind=mx_invalid&limit=100").json()
    assert [s["kind"] for s in body] == ["mx_invalid"]
    assert body[0]["email"] == contact.email
    assert api.get(f"/api/campaigns/{campaign.pk}/skips?kind=typo").status_code == 422
    assert len(api.get(f"/api/campaigns/{campaign.pk}/skips").json()) == 2


@pytest.mark.parametrize("path", ["enrollments", "replies", "skips"])
def test_another_accounts_campaign_lists_are_404(api, outsider, path):
    campaign = CampaignFactory(account=outsider)
    response = api.get(f"/api/campaigns/{campaign.pk}/{path}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "campaign_not_found"
