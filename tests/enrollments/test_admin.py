import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from tests.campaigns.factories import CampaignFactory, EnrollmentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(get_user_model().objects.create_superuser("op", "op@example.com", "pw-for-tests-only"))
    return client


def test_operator_filters_enrollments_by_campaign_status_and_batch(staff_client, owner):
    campaign = CampaignFactory(account=owner)
    wanted = EnrollmentFactory(campaign=campaign, batch_number=2, status="sent", sent_at=timezone.now())
    EnrollmentFactory(campaign=campaign, batch_number=1, status="sent", sent_at=timezone.now())
    EnrollmentFactory(campaign=campaign, batch_number=2)
    response = staff_client.get(
        "/admin/enrollments/enrollment/",
        {"campaign__id__exact": str(campaign.pk), "status__exact": "sent", "batch_number": "2"},
    )
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [wanted]
    assert b"Batch 1" in response.content and b"Batch 2" in response.content


def test_an_enrollments_status_and_timestamps_are_read_only(staff_client, owner):
    enrollment = EnrollmentFactory(campaign=CampaignFactory(account=owner), status="sent", sent_at=timezone.now())
    page = staff_client.get(f"/admin/enrollments/enrollment/{enrollment.pk}/change/").content.decode()
    assert 'name="status"' not in page
    assert 'name="sent_at"' not in page
    assert 'name="batch_number"' not in page  # only a pending enrollment may change batch
