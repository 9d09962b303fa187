import pytest

from campaigns.models import Campaign, SequenceStep, SmtpCredential
from campaigns.services import outreach_create
from enrollments.models import Enrollment, EnrollmentSkip, EnrollmentTally

from .factories import CampaignFactory, EnrollmentSkipFactory, SequenceStepFactory, SmtpCredentialFactory, enroll

pytestmark = pytest.mark.django_db


def test_patch_changes_the_updatable_fields(api, owner, create_campaign):
    campaign_id = create_campaign()
    outreach = outreach_create(account=owner, name="Spring")
    response = api.patch(
        f"/api/campaigns/{campaign_id}",
        {
            "campaign": {
                "name": "Renamed",
                "min_wait_seconds": 10,
                "max_wait_seconds": 20,
                "outreach_id": str(outreach.pk),
                "verify_email_mx": False,
                "bounce_rate_threshold": 10.0,
                "track_clicks": True,
            }
        },
        format="json",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "Renamed"
    assert (body["min_wait_seconds"], body["max_wait_seconds"]) == (10, 20)
    assert body["outreach_id"] == str(outreach.pk)
    assert body["verify_email_mx"] is False
    assert body["bounce_rate_threshold"] == 10.0
    assert body["track_clicks"] is True


def test_patch_accepts_a_plain_body_and_null_outreach_unlinks(api, owner, create_campaign):
    outreach = outreach_create(account=owner, name="Spring")
    campaign_id = create_campaign(outreach_id=str(outreach.pk))
    response = api.patch(f"/api/campaigns/{campaign_id}", {"outreach_id": None}, format="json")
    assert response.status_code == 200
    assert Campaign.objects.get(pk=campaign_id).outreach_id is None


@pytest.mark.parametrize("field", ["status", "smtp_credentials", "sequence_steps", "id", "created_at", "colour"])
def test_patch_of_a_field_that_is_not_updatable_is_a_422_naming_it(api, create_campaign, field):
    campaign_id = create_campaign()
    response = api.patch(f"/api/campaigns/{campaign_id}", {"campaign": {field: "x", "name": "New"}}, format="json")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_failed"
    assert list(error["details"]) == [field]
    assert Campaign.objects.get(pk=campaign_id).name == "Q2 launch"


def test_patch_validates_against_the_stored_values(api, create_campaign):
    campaign_id = create_campaign()  # min 120, max 420
    response = api.patch(f"/api/campaigns/{campaign_id}", {"campaign": {"min_wait_seconds": 500}}, format="json")
    assert response.status_code == 422
    assert "max_wait_seconds" in response.json()["error"]["details"]
    response = api.patch(f"/api/campaigns/{campaign_id}", {"campaign": {"bounce_rate_threshold": 0}}, format="json")
    assert "bounce_rate_threshold" in response.json()["error"]["details"]
    response = api.patch(f"/api/campaigns/{campaign_id}", {"campaign": {"name": ""}}, format="json")
    assert "name" in response.json()["error"]["details"]
    assert Campaign.objects.get(pk=campaign_id).min_wait_seconds == 120


def test_patch_refuses_another_accounts_outreach(api, outsider, create_campaign):
    campaign_id = create_campaign()
    foreign = outreach_create(account=outsider, name="Theirs")
    response = api.patch(f"/api/campaigns/{campaign_id}", {"outreach_id": str(foreign.pk)}, format="json")
    assert response.status_code == 422
    assert "outreach_id" in response.json()["error"]["details"]


def test_patch_and_delete_of_another_accounts_campaign_are_campaign_not_found(outsider_api, create_campaign):
    campaign_id = create_campaign()
    for response in (
        outsider_api.patch(f"/api/campaigns/{campaign_id}", {"name": "Mine now"}, format="json"),
        outsider_api.delete(f"/api/campaigns/{campaign_id}"),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "campaign_not_found"
    assert Campaign.objects.get(pk=campaign_id).name == "Q2 launch"


def test_delete_cascades_to_steps_credentials_enrollments_skips_and_the_tally(api, owner):
    campaign = CampaignFactory(account=owner)
    SequenceStepFactory(campaign=campaign, position=1)
    credential = SmtpCredentialFactory(campaign=campaign)
    enroll(campaign, "sent", credential=credential)
    enroll(campaign, "pending")
    EnrollmentSkipFactory(campaign=campaign)
    other = CampaignFactory(account=owner)
    enroll(other, "pending")

    response = api.delete(f"/api/campaigns/{campaign.pk}")
    assert response.status_code == 204
    assert not Campaign.objects.filter(pk=campaign.pk).exists()
    for model in (SequenceStep, SmtpCredential, Enrollment, EnrollmentSkip):
        assert not model.objects.filter(campaign_id=campaign.pk).exists()
    assert not EnrollmentTally.objects.filter(campaign_id=campaign.pk).exists()
    assert Enrollment.objects.filter(campaign=other).count() == 1
    assert api.get(f"/api/campaigns/{campaign.pk}").status_code == 404


def test_list_is_a_bare_array_of_the_callers_campaigns(api, owner, outsider):
    mine = CampaignFactory(account=owner, name="Mine")
    CampaignFactory(account=outsider, name="Theirs")
    response = api.get("/api/campaigns")
    assert response.status_code == 200
    body = response.json()
    assert isinstance(body, list)
    assert [c["id"] for c in body] == [str(mine.pk)]
    assert {"id", "name", "status", "created_at"} <= set(body[0])


def test_list_is_keyset_paginated_with_a_link_header(api, owner):
    ids = {str(CampaignFactory(account=owner).pk) for _ in range(5)}
    seen, url, pages = set(), "/api/campaigns?limit=2", 0
    while url:
        response = api.get(url)
        seen |= {c["id"] for c in response.json()}
        pages += 1
        link = response.headers.get("Link")
        url = link[1 : link.index(">")] if link else None
    assert seen == ids
    assert pages == 3


def test_list_filters_by_status(api, owner):
    CampaignFactory(account=owner, status="active", name="Running")
    CampaignFactory(account=owner, name="Waiting")
    assert [c["name"] for c in api.get("/api/campaigns?status=active").json()] == ["Running"]
    response = api.get("/api/campaigns?status=sleeping")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_failed"


def test_list_query_count_does_not_grow_with_the_page(api, owner, django_assert_max_num_queries):
    for _ in range(20):
        CampaignFactory(account=owner)
    with django_assert_max_num_queries(3):
        assert len(api.get("/api/campaigns").json()) == 20
